"""The verify API's ``ip`` in IPv4-mapped IPv6 (``::ffff:10.1.2.3``), which is how a service
on a dual-stack socket sees an IPv4 client and so what it passes on: every other face reads
that address as the IPv4 one, but the verify API refused it as no address (422), so a
service could not check a key restricted by address for such a client at all."""

from __future__ import annotations

import pytest

from tests.service.conftest import Live


@pytest.mark.parametrize(
    ("ip", "code"),
    [("::ffff:10.1.2.3", "valid"), ("::FFFF:10.1.2.3", "valid"),
     ("0:0:0:0:0:ffff:10.1.2.3", "valid"), ("::ffff:192.0.2.1", "ip_not_allowed")],
)  # fmt: skip
def test_a_mapped_client_is_its_ipv4_address(engine_live: Live, ip: str, code: str) -> None:
    key, _ = engine_live.make_key("orders:read", allowed_ips=["10.0.0.0/8"])
    answer = engine_live.root.post("/v1/keys/verify", json={"key": key, "ip": ip})
    assert answer.status_code == 200, answer.text
    assert answer.json()["code"] == code


@pytest.mark.parametrize("ip", ["::ffff:999.1.2.3", "::ffff:10.1.2", "10.1.2.3:80", "0x0a.1.2.3"])
def test_what_is_no_address_stays_refused(engine_live: Live, ip: str) -> None:
    key, _ = engine_live.make_key("orders:read")
    answer = engine_live.root.post("/v1/keys/verify", json={"key": key, "ip": ip})
    assert answer.status_code == 422, answer.text
