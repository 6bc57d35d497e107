"""Probes, Prometheus metrics and the JSON access log, over real HTTP."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keyturn.errors import Unavailable
from keyturn.keys import mask
from tests.service.conftest import Live, start_live


def test_healthz_and_readyz(live: Live) -> None:
    client = live.client()
    health = client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = client.get("/readyz")
    ready_body = {"status": "ready", "checks": {"store": "ok"}}
    assert (ready.status_code, ready.json()) == (200, ready_body)


def test_probes_answer_get_only(live: Live) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert live.client().head(path).status_code == 200
        answer = live.client().post(path)
        assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD"
        assert answer.json()["code"] == "method_not_allowed"


def test_readyz_fails_when_the_store_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for live in start_live(tmp_path):

        def broken(key_id: str) -> None:
            raise Unavailable("cannot read database: disk I/O error")

        monkeypatch.setattr(live.manager.store, "get", broken)
        answer = live.client().get("/readyz")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "store_unavailable"
        assert answer.json()["checks"] == {"store": "cannot read database: disk I/O error"}
        assert answer.headers["retry-after"] == "1"
        assert live.client().get("/healthz").status_code == 200


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        head, _, rest = metric.partition("{")
        found = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if head == name and found == wanted:
            return float(value)
    return 0.0


def test_metrics_count_outcomes_and_time_them(live: Live) -> None:
    client = live.client()
    before = client.get("/metrics").text
    key, _ = live.make_key()
    for _ in range(3):
        assert live.client(key).get("/auth").status_code == 204
    client.get("/auth")
    checker_key, _ = live.make_key("keys:verify")
    live.client(checker_key).post("/v1/keys/verify", json={"key": "nonsense"})
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    after = answer.text

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    outcomes = "keyturn_verify_outcomes_total"
    assert grew(outcomes, endpoint="forward_auth", code="valid") == 3
    assert grew(outcomes, endpoint="forward_auth", code="missing_credentials") == 1
    assert grew(outcomes, endpoint="verify_api", code="malformed_key") == 1
    assert grew(outcomes, endpoint="admin", code="valid") >= 3  # the root's make_key calls
    duration = "keyturn_verify_duration_seconds_count"
    assert grew(duration, endpoint="forward_auth") == 4
    assert sample(after, "keyturn_verify_duration_seconds_bucket", endpoint="forward_auth",
                  le="+Inf") >= 4


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Lines(io.StringIO):
    """An access log stream, read back as lines."""

    def lines(self, count: int) -> list[str]:
        wait_for(lambda: self.getvalue().count("\n") >= count)  # written in batches
        return self.getvalue().splitlines()


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[tuple[Live, Lines]]:
    stream = Lines()
    for live in start_live(tmp_path, log_stream=stream):
        yield live, stream


def test_access_log_is_json_and_masks_keys(logged: tuple[Live, Lines]) -> None:
    live, stream = logged
    key, record = live.make_key()
    stream.lines(1)
    stream.seek(0)
    stream.truncate()
    live.client(key).get("/auth", headers={"X-Forwarded-Uri": f"/data?api_key={key}&page=2"})
    nginx = {"X-Original-URI": "/orders/1", "X-Original-Method": "PUT"}
    live.client(key).get("/auth", headers=nginx)
    live.client(key).get(f"/v1/keys/{key}")  # a key pasted into a path
    live.client().get(f"/healthz?token={key}")
    live.client(**{"x-api-key": key}).get("/auth")
    access_lines = stream.lines(5)
    entries = [json.loads(line) for line in access_lines]
    assert len(entries) == 5
    assert key not in "\n".join(access_lines)
    everything = json.dumps(entries, ensure_ascii=False)
    assert key not in everything
    assert mask(key) in everything
    assert "authorization" not in everything.lower() and "x-api-key" not in everything.lower()
    query_denied, forwarded, pasted, health, plain = entries
    assert query_denied["outcome"] == "credentials_in_query"
    assert query_denied["status"] == 400
    assert query_denied["forwarded"] == f"GET /data?api_key={mask(key)}&page=2"
    assert forwarded["outcome"] == "valid" and forwarded["key_id"] == record["id"]
    assert forwarded["forwarded"] == "PUT /orders/1"
    assert forwarded["status"] == 204 and forwarded["method"] == "GET"
    assert forwarded["path"] == "/auth" and forwarded["client"] == "127.0.0.1"
    assert isinstance(forwarded["duration_ms"], float) and forwarded["time"].endswith("Z")
    assert pasted["status"] == 403 and mask(key) in pasted["path"]
    assert pasted["outcome"] == "insufficient_scope" and pasted["key_id"] == record["id"]
    assert health["path"] == f"/healthz?token={mask(key)}"
    assert plain["outcome"] == "valid"


def test_access_log_can_be_turned_off(tmp_path: Path) -> None:
    stream = Lines()
    for live in start_live(tmp_path, log_stream=stream, access_log=False):
        live.client().get("/auth")
    assert stream.getvalue() == ""  # the server has stopped: nothing is left to flush


def test_access_log_is_flushed_at_shutdown(tmp_path: Path) -> None:
    stream = Lines()
    for live in start_live(tmp_path, log_stream=stream):
        live.client().get("/healthz")
    assert json.loads(stream.getvalue())["path"] == "/healthz"
