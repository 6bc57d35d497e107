"""The verification log's block format: what is packed is what is read back, on any
entries (hypothesis), and a damaged block is refused rather than misread."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyturn.store.verification_blocks import (
    pack_texts,
    pack_times,
    split_request_id,
    unpack,
)

_ids = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_clients = st.none() | st.sampled_from(["203.0.113.9", "2001:db8::1"]) | _texts


@given(st.lists(st.tuples(st.floats(allow_nan=False), _texts, _clients), min_size=1,
                max_size=50),
       st.integers(min_value=1, max_value=2**53), _ids)  # fmt: skip
def test_a_block_reads_back_as_written(
    entries: list[tuple[float, str, str | None]], first: int, rid: str
) -> None:
    head, tail = split_request_id(rid)
    assert head + tail == rid
    times = [at for at, _, _ in entries]
    paths = [path for _, path, _ in entries]
    clients = [client for _, _, client in entries]
    tails = [tail] * len(entries)
    read = list(unpack(first, len(entries), max(times), head, pack_texts(tails),
                       pack_times(times), pack_texts(paths), pack_texts(clients)))  # fmt: skip
    assert read == [(first + i, at, rid, path, client)
                    for i, (at, path, client) in enumerate(entries)]  # fmt: skip


def test_a_block_of_one_entry_is_dated_by_the_block() -> None:
    assert pack_times([5.0]) is None  # what a row stored before blocks reads as
    assert list(unpack(7, 1, 5.0, "ab", pack_texts(["cd"]), None, pack_texts(["/x"]),
                       pack_texts([None]))) == [(7, 5.0, "abcd", "/x", None)]  # fmt: skip


def test_ids_of_one_run_share_a_head() -> None:
    from keyturn._request_ids import new_id

    heads = {split_request_id(new_id()[0])[0] for _ in range(3)}
    assert len(heads) <= 2  # three ids in a row: one run, or the end of one and the next


def test_a_block_whose_counts_disagree_is_refused() -> None:
    with pytest.raises(ValueError, match="3 entries holds 2"):
        list(unpack(1, 3, 2.0, "h", pack_texts(["a", "b", "c"]), pack_times([1.0, 2.0]),
                    pack_texts(["/"]), pack_texts(["c"])))  # fmt: skip
    with pytest.raises(ValueError, match="2 entries holds 3"):
        list(unpack(1, 2, 2.0, "h", pack_texts(["a", "b", "c"]), pack_times([1.0, 2.0]),
                    pack_texts(["/"]), pack_texts(["c"])))  # fmt: skip
