"""Settings: flags beat ``KEYTURN_*`` beat the TOML file beat defaults; mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyturn.config import ScopeRule, Settings, SettingsError, load_settings, parse_rule

TOML = """
host = "0.0.0.0"
port = 9000
realm = "toml"
database_url = "sqlite:///from-toml.db"
allow_query = true
api_key_headers = ["X-Token", "x-api-key"]
prefixes = ["acme_live", "acme_test"]
cache_ttl = 2.5

[rules]
"/admin/" = ["admin"]
"POST /orders" = "orders:write, orders:read"
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "keyturn.toml"
    path.write_text(TOML)
    return str(path)


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.port == 8080 and settings.default_prefix == "kt_live"


def test_toml_file(config: str) -> None:
    settings = load_settings(config_file=config, environ={})
    assert (settings.host, settings.port, settings.realm) == ("0.0.0.0", 9000, "toml")
    assert settings.allow_query is True
    assert settings.api_key_headers == ("x-token", "x-api-key")
    assert settings.prefixes == ("acme_live", "acme_test")
    assert settings.default_prefix == "acme_live"
    assert settings.cache_ttl == 2.5
    assert settings.rules == (
        ScopeRule("/admin/", ("admin",)),
        ScopeRule("/orders", ("orders:write", "orders:read"), "POST"),
    )


def test_precedence_flags_env_file(config: str) -> None:
    env = {"KEYTURN_REALM": "env", "KEYTURN_PORT": "9100", "KEYTURN_ALLOW_QUERY": "no"}
    settings = load_settings({"realm": "flag", "port": None}, config_file=config, environ=env)
    assert settings.realm == "flag"  # flag beats env and file
    assert settings.port == 9100  # env beats file; an unset flag (None) does not count
    assert settings.allow_query is False
    assert settings.host == "0.0.0.0"  # file beats default


def test_config_file_from_environment(config: str) -> None:
    assert load_settings(environ={"KEYTURN_CONFIG": config}).realm == "toml"


def test_environment_forms() -> None:
    env = {
        "KEYTURN_API_KEY_HEADERS": "X-One, x-two",
        "KEYTURN_RULES": '{"/admin/": ["admin"], "GET /r": "a b"}',
        "KEYTURN_ACCESS_LOG": "off",
        "KEYTURN_SHUTDOWN_TIMEOUT": "2.5",
        "KEYTURN_PEPPER": "s3cret",
        "KEYTURN_SCOPES_HEADER": "",
        "KEYTURN_HTTP": "H11",
    }
    settings = load_settings(environ=env)
    assert settings.api_key_headers == ("x-one", "x-two")
    assert settings.rules[1] == ScopeRule("/r", ("a", "b"), "GET")
    assert settings.access_log is False
    assert settings.shutdown_timeout == 2.5
    assert settings.pepper == "s3cret"
    assert settings.scopes_header == ""
    assert settings.http == "h11"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KEYTURN_PORT": "http"}, "KEYTURN_PORT: expected an integer"),
        ({"KEYTURN_PORT": "70000"}, "KEYTURN_PORT: expected a port number"),
        ({"KEYTURN_ALLOW_QUERY": "maybe"}, "KEYTURN_ALLOW_QUERY: expected true or false"),
        ({"KEYTURN_RULES": "/admin=admin"}, "KEYTURN_RULES: expected a JSON object"),
        ({"KEYTURN_RULES": '{"admin": ["a"]}'}, "must start with '/'"),
        ({"KEYTURN_RULES": '{"get /a": ["a"]}'}, "METHOD /path/prefix"),
        ({"KEYTURN_RULES": '{"/a": ["two words"]}'}, "not a valid scope"),
        ({"KEYTURN_PREFIXES": "Bad-Prefix"}, "invalid key prefix"),
        ({"KEYTURN_PREFIXES": ""}, "at least one key prefix"),
        ({"KEYTURN_API_KEY_HEADERS": "x key"}, "not a valid HTTP header name"),
        ({"KEYTURN_LOG_LEVEL": "loud"}, "expected one of"),
        ({"KEYTURN_HTTP": "h2"}, "KEYTURN_HTTP: expected one of auto, h11, httptools"),
        ({"KEYTURN_DATABASE_URL": "keyturn.db"}, "expected a database URL"),
        ({"KEYTURN_CACHE_TTL": "-1"}, "expected seconds"),
    ],
)
def test_bad_environment_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env)
    assert message in str(caught.value)


def test_file_mistakes_are_named(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("alow_query = true\n")
    with pytest.raises(SettingsError, match="unknown setting 'alow_query'"):
        load_settings(config_file=str(typo), environ={})
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('port = "eighty"\n')
    with pytest.raises(SettingsError, match="setting 'port': expected an integer"):
        load_settings(config_file=str(wrong), environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config_file=str(broken), environ={})
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(config_file=str(tmp_path / "missing.toml"), environ={})


def test_rule_patterns() -> None:
    assert parse_rule("/a/", ["x"]) == ScopeRule("/a/", ("x",))
    assert parse_rule("DELETE /a", "x,y") == ScopeRule("/a", ("x", "y"), "DELETE")
    assert parse_rule("/open", []) == ScopeRule("/open", ())
    with pytest.raises(ValueError, match="list of scopes"):
        parse_rule("/a", 5)
