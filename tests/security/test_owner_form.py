"""The dashboard's owner form sets the limits it shows and keeps what it does not show:
the owner's metadata and its refill amount, set through the API. It sent a whole record
without them, so saving the form erased the metadata and reset a daily refill of 50
credits to one of the whole balance (100): a save that loosened the owner's allowance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.conftest import Live, start_live
from tests.ui.test_http import signed_in


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("owner-form"))


def test_saving_the_form_keeps_metadata_and_refill_amount(live: Live) -> None:
    record = {
        "credits": 100,
        "refill": {"interval": "daily", "amount": 50},
        "metadata": {"plan": "pro"},
    }
    assert live.root.put("/v1/owners/acme", json=record).status_code == 200
    client, csrf = signed_in(live)
    saved = client.post(
        "/ui/owners/acme",
        data={"csrf": csrf, "rate_limits": "10/second", "credits": "100", "refill": "daily"},
    )
    assert saved.status_code == 303, saved.text
    owner = live.root.get("/v1/owners/acme").json()
    assert owner["rate_limits"] == ["10/second"]
    assert owner["metadata"] == {"plan": "pro"}
    assert owner["refill"] == {"interval": "daily", "amount": 50}
