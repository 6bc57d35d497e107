"""``keyturn scan --verify``: found keys are checked with their providers, and only there.

The providers' APIs are the public internet, so they are a mock here: an httpx transport
that answers like GitHub (200 for a working token, 401 for a revoked one) and records every
request. The tests hold what a user relies on: nothing is sent without --verify, each key
goes only to its provider's documented API origin, in the way the catalogue says, and no
report holds the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner

from keyturn._providers import by_id
from keyturn.cli import main
from keyturn.scan import Options, scan_paths
from keyturn.scan.rules import RULES
from keyturn.scan.sarif import to_sarif
from tests.scan import keygen


class FakeGitHub:
    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in self.live:
            return httpx.Response(200, json={"login": "octocat"})
        return httpx.Response(401, json={"message": "Bad credentials"})


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, str, str]:
    live, revoked = keygen.github_checksummed("ghp_"), keygen.github_checksummed("ghp_")
    (tmp_path / "a.py").write_text(f'TOKEN = "{live}"\nOLD = "{revoked}"\n')
    (tmp_path / "b.env").write_text("SERVICE_TOKEN=" + keygen.draw("[a-zA-Z0-9]{32}") + "\n")
    return tmp_path, live, revoked


def test_found_keys_are_reported_live_or_revoked(tree) -> None:
    root, live, revoked = tree
    github = FakeGitHub({live})
    result = scan_paths([str(root)], Options(jobs=4, verify=True,
                                             verify_transport=httpx.MockTransport(github)))
    verdicts = {(f.path.rsplit("/", 1)[-1], f.line): f.verified for f in result.findings}
    assert verdicts[("a.py", 1)] == "live"
    assert verdicts[("a.py", 2)] == "revoked"
    assert verdicts[("b.env", 1)] == ""  # a generic value: no provider to ask
    # Only GitHub's API, over HTTPS, the token in the Authorization header and nowhere else.
    assert len(github.requests) == 2
    for request in github.requests:
        assert (request.url.scheme, request.url.host, request.url.path) == (
            "https", "api.github.com", "/user")
        assert request.method == "GET"
        assert live not in str(request.url) and revoked not in str(request.url)
    shown = json.dumps([f.as_dict() for f in result.findings]) + json.dumps(
        to_sarif(result.findings))
    assert live not in shown and revoked not in shown


def test_nothing_is_sent_without_verify(tree) -> None:
    root, live, _ = tree
    github = FakeGitHub({live})
    options = Options(jobs=1, verify_transport=httpx.MockTransport(github))
    result = scan_paths([str(root)], options)
    assert result.findings and github.requests == []
    assert all(f.verified == "" for f in result.findings)


def test_an_unanswered_check_is_unknown(tree) -> None:
    root, _, _ = tree

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    result = scan_paths([str(root)], Options(jobs=1, verify=True,
                                             verify_transport=httpx.MockTransport(down)))
    assert {f.verified for f in result.findings if f.path.endswith("a.py")} == {"unknown"}


@pytest.mark.parametrize("provider_id", sorted(RULES.verify))
def test_every_verify_url_is_on_its_providers_own_https_host(provider_id: str) -> None:
    provider = by_id(provider_id)
    assert provider is not None
    url = urlsplit(RULES.verify[provider_id])
    assert url.scheme == "https" and provider.serves(url.hostname or "")


class Recorder:
    """Every provider's API at once: records each request, answers 401."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return httpx.Response(401)


@pytest.mark.parametrize("jobs", [1, 4])
def test_a_key_below_min_confidence_is_neither_reported_nor_sent(tmp_path: Path,
                                                                jobs: int) -> None:
    # An Anthropic key of the exact shape that looks hand-typed (low), and a GitHub token
    # whose checksum verifies (certain): both providers can be asked.
    typed = keygen.typed_keys()[1]
    (tmp_path / "a.py").write_text(f'ANTHROPIC_API_KEY = "{typed}"\n'
                                   f'TOKEN = "{keygen.github_checksummed("ghp_")}"\n')
    seen = Recorder()
    everything = scan_paths([str(tmp_path)], Options(
        jobs=jobs, verify=True, verify_transport=httpx.MockTransport(seen)))
    assert sorted(f.confidence for f in everything.findings) == ["certain", "low"]
    assert sorted(seen.hosts) == ["api.anthropic.com", "api.github.com"]

    seen.hosts.clear()
    sure = scan_paths([str(tmp_path)], Options(
        jobs=jobs, min_confidence="medium", verify=True,
        verify_transport=httpx.MockTransport(seen)))
    assert [(f.provider_id, f.line) for f in sure.findings] == [("github", 2)]
    assert seen.hosts == ["api.github.com"]  # the typed key went nowhere


def test_the_command_sends_no_key_below_its_min_confidence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    typed, token = keygen.typed_keys()[1], keygen.github_checksummed("ghp_")
    (tmp_path / "a.py").write_text(f'ANTHROPIC_API_KEY = "{typed}"\nTOKEN = "{token}"\n')
    seen = Recorder()  # the providers' APIs: the public internet, so a mock
    monkeypatch.setattr(httpx, "HTTPTransport", lambda **_: httpx.MockTransport(seen))
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, ["scan", "--jobs", "1", "--verify", "--min-confidence",
                                     "medium", "--format", "json", "a.py"])
    assert done.exit_code == 1, done.output
    report = json.loads(done.stdout)
    assert [(f["line"], f["verified"]) for f in report["findings"]] == [(2, "revoked")]
    assert seen.hosts == ["api.github.com"]
