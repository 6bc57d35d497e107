"""`pip install keyturn` alone, from the built wheel in a new virtual environment: what it
installs, that the core works on it, and that every part needing an extra says which in
one line."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.packaging.conftest import Env

HEAVY = {"uvicorn", "fastapi", "starlette", "pydantic", "jinja2", "prometheus-client",
         "psycopg", "redis", "httpx", "keyring", "python-dotenv", "rich", "flask", "django"}


def test_the_core_installs_at_most_five_packages(core: Env) -> None:
    installed = core.packages()
    assert len(installed) <= 5, installed
    assert not installed & HEAVY


CORE_PROGRAM = textwrap.dedent('''
    import asyncio, json, sys
    import keyturn
    from keyturn import KeyManager, generate_key, parse_key, lookup
    from keyturn.integrations.asgi import KeyturnMiddleware

    assert keyturn.__file__.startswith(sys.prefix), keyturn.__file__  # the wheel, not the tree
    assert parse_key(generate_key()).__class__.__name__ == "ParsedKey"
    assert lookup("unknown_key").status == 401

    manager = KeyManager("sqlite:///keys.db")
    issued = manager.create_key("app", scopes=["orders:read"], rate_limits=["2/minute"])
    codes = [manager.verify([("Authorization", "Bearer " + issued.key)]).code for _ in range(3)]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(headers):
        sent = []
        async def receive():
            return {"type": "http.request", "body": b""}
        async def send(message):
            sent.append(message)
        scope = {"type": "http", "method": "GET", "path": "/orders", "raw_path": b"/orders",
                 "query_string": b"", "headers": headers, "root_path": ""}
        await KeyturnMiddleware(app, manager, scopes={"/orders": ["orders:read"]})(
            scope, receive, send)
        return sent[0]["status"]

    plain = manager.create_key("plain", scopes=["orders:read"])
    statuses = asyncio.run(call([])), asyncio.run(
        call([(b"authorization", ("Bearer " + plain.key).encode())]))
    manager.close()
    heavy = sorted(m for m in ("httpx", "fastapi", "starlette", "pydantic", "uvicorn", "rich",
                               "jinja2", "redis", "psycopg", "keyring", "dotenv")
                   if m in sys.modules)
    print(json.dumps({"codes": codes, "statuses": statuses, "heavy": heavy}))
''')


def test_the_core_works_from_the_wheel(core: Env) -> None:
    """Key format, catalogue, SQLite store (its migrations are data files), the verifier with
    an in-memory rate limit, the ASGI middleware: none imports an extra."""
    done = core.python(CORE_PROGRAM)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["codes"] == ["valid", "valid", "rate_limited"]
    assert result["statuses"] == [401, 200]
    assert result["heavy"] == []


def test_the_key_commands_work_from_the_wheel(core: Env) -> None:
    db = {"KEYTURN_DATABASE_URL": "sqlite:///cli.db"}
    started = core.keyturn("init", "--format", "json", **db)
    assert started.returncode == 0, started.stderr
    made = core.keyturn("keys", "create", "--name", "ci", "--scope", "orders:read",
                        "--format", "json", **db)
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    listed = core.keyturn("keys", "list", **db)
    assert listed.returncode == 0 and "ci" in listed.stdout, listed.stderr
    checked = core.keyturn("check", "-H", f"Authorization: Bearer {key}", "--format", "json",
                           **db)
    assert checked.returncode == 0, checked.stderr
    assert core.keyturn("explain", "unknown_key").returncode == 0
    (core.work / "settings.py").write_text(f'API_KEY = "{key}"\n')
    scanned = core.keyturn("scan", "--", "settings.py")
    assert scanned.returncode == 1, scanned.stdout + scanned.stderr
    assert "settings.py" in scanned.stdout and key not in scanned.stdout


# (command, environment, the extra its one line names)
COMMANDS = [
    (["serve", "--port", "0"], {}, "serve"),
    (["doctor", "https://api.example.com/v1/me", "--key-env", "API_KEY"],
     {"API_KEY": "sk-unused"}, "doctor"),
    (["scan", "--verify", "--", "settings.py"], {}, "doctor"),
    (["scan", "--report", "https://keys.example", "--", "settings.py"], {}, "doctor"),
    (["keys", "list", "--db", "postgresql://keyturn@127.0.0.1:1/keyturn"], {}, "postgres"),
    (["keys", "create", "--name", "metered", "--db", "sqlite:///redis.db"],
     {"KEYTURN_REDIS_URL": "redis://127.0.0.1:6379/0"}, "redis"),
]


@pytest.mark.parametrize(("args", "environ", "extra"), COMMANDS, ids=lambda v: str(v)[:40])
def test_a_command_without_its_extra_says_which_in_one_line(
    core: Env, args: list[str], environ: dict[str, str], extra: str
) -> None:
    (core.work / "settings.py").write_text("x = 1\n")
    done = core.keyturn(*args, **environ)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and f"pip install 'keyturn[{extra}]'" in lines[0]


IMPORTS = [
    ("import keyturn.integrations.fastapi", "fastapi"),
    ("import keyturn.integrations.flask", "flask"),
    ("import keyturn.integrations.django", "django"),
    ("import keyturn.integrations.drf", "django"),
    ("import keyturn.doctor", "doctor"),
    ("from keyturn.scan.verify import verify_key", "doctor"),
    ("import keyturn.service", "serve"),
    ("import keyturn.ui", "serve"),
    ("from keyturn.app import create_app", "serve"),
    ("keyturn.open_store('postgresql://keyturn@127.0.0.1:1/keyturn')", "postgres"),
    ("keyturn.KeyManager('sqlite:///m.db', limiter='redis://127.0.0.1:6379/0')"
     ".limiter", "redis"),
]


@pytest.mark.parametrize(("statement", "extra"), IMPORTS, ids=lambda v: str(v)[:40])
def test_an_import_without_its_extra_is_an_import_error_naming_it(
    core: Env, statement: str, extra: str
) -> None:
    program = textwrap.dedent(f'''
        import keyturn
        try:
            {statement}
        except ImportError as exc:
            print(type(exc).__name__, "|", exc)
        else:
            print("imported")
    ''')
    done = core.python(program)
    assert done.returncode == 0, done.stderr
    kind, _, message = done.stdout.strip().partition(" | ")
    assert kind == "MissingExtra", done.stdout
    assert "\n" not in message and message.endswith(f"pip install 'keyturn[{extra}]'")


EVERY_MODULE = textwrap.dedent('''
    import importlib, json, pathlib
    import keyturn
    from keyturn._extras import MissingExtra
    root = pathlib.Path(keyturn.__file__).parent
    failures = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # `python -m keyturn`: runs the command line
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        try:
            importlib.import_module(name)
        except MissingExtra:
            pass  # one line naming the extra: what an extra's module must do
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(failures))
''')


def test_every_module_imports_on_the_core_or_names_its_extra(core: Env) -> None:
    """Each module of the package, imported on the bare core: it works, or it raises the one
    line naming its extra; never a bare ModuleNotFoundError from deep inside."""
    done = core.python(EVERY_MODULE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}
