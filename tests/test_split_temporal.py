"""The global temporal split: train before a cutoff, test on what customers bought after it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core.interactions import Events, IdMap, factorize
from growthrec.core.split import split_temporal
from growthrec.errors import DataError, ParameterError


def _events(users, items, times, weights=None) -> Events:
    u_ids, u = factorize(np.asarray(users))
    i_ids, i = factorize(np.asarray(items))
    return Events(
        u,
        i,
        IdMap(u_ids, np.arange(u_ids.size)),
        IdMap(i_ids, np.arange(i_ids.size)),
        None if weights is None else np.asarray(weights, dtype=np.float32),
        np.asarray(times, dtype=np.float64),
    )


# Before the cutoff (t < 10): ann buys a, b; bob buys a, c.   After (t >= 10): ann buys a
# again (a repeat), c (new to her) and d (an item nobody bought before); bob buys b; cid
# appears only after the cutoff and buys a.
EVENTS = _events(
    ["ann", "ann", "bob", "bob", "ann", "ann", "ann", "bob", "cid"],
    ["a", "b", "a", "c", "a", "c", "d", "b", "a"],
    [1, 2, 3, 4, 10, 11, 12, 13, 14],
)


def _pairs(matrix, events: Events) -> set[tuple[str, str]]:
    coo = matrix.tocoo()
    return {
        (str(events.users.ids[r]), str(events.items.ids[c]))
        for r, c in zip(coo.row, coo.col, strict=True)
    }


def test_hand_case() -> None:
    split = split_temporal(EVENTS, cutoff=10)
    assert _pairs(split.train.matrix, EVENTS) == {
        ("ann", "a"),
        ("ann", "b"),
        ("bob", "a"),
        ("bob", "c"),
    }
    assert _pairs(split.test, EVENTS) == {("ann", "c"), ("ann", "d"), ("bob", "b")}
    assert split.counts == {
        "cutoff": 10,
        "customers_only_after_cutoff": 1,  # cid
        "repeat_pairs_after_cutoff": 1,  # ann's second a
        "test_pairs_with_items_new_after_cutoff": 1,  # d: kept, counted
    }
    assert split.n_train_only == 0
    assert split.protocol == "temporal (cutoff 1970-01-01 00:00:10)"
    # same id maps and shape on both sides; cid has an empty train row
    assert split.train.matrix.shape == split.test.shape == (3, 4)
    assert split.train.matrix[EVENTS.users.index(["cid"])[0]].nnz == 0


def test_default_cutoff_leaves_the_last_fifth_of_events_for_test() -> None:
    times = np.arange(100, dtype=float)
    events = _events(np.arange(100) % 7, np.arange(100) % 11, times)
    split = split_temporal(events)
    assert split.counts["cutoff"] == 80
    assert split.train.timestamps.max() < 80
    assert split_temporal(events, test_fraction=0.5).counts["cutoff"] == 50


def test_train_times_are_before_and_weights_summed_before_the_cutoff_only() -> None:
    events = _events(["u", "u", "u", "v"], ["a", "a", "a", "a"], [1, 2, 20, 3], [2, 3, 7, 1])
    split = split_temporal(events, cutoff=10)
    assert split.train.matrix.toarray().ravel().tolist() == [5.0, 1.0]
    assert split.train.timestamps.tolist() == [2.0, 3.0]
    assert split.test.nnz == 0 and split.counts["repeat_pairs_after_cutoff"] == 1


@pytest.mark.parametrize("cutoff", [0, 1, 100])
def test_a_cutoff_outside_the_data_is_an_error(cutoff) -> None:
    with pytest.raises(DataError, match="one side of the cutoff"):
        split_temporal(EVENTS, cutoff=cutoff)


def test_needs_timestamps() -> None:
    events = Events(EVENTS.user_codes, EVENTS.item_codes, EVENTS.users, EVENTS.items)
    with pytest.raises(ParameterError, match="needs timestamps"):
        split_temporal(events)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 8), st.integers(0, 50)),
        min_size=2,
        max_size=80,
    ),
    st.integers(1, 50),
)
def test_leak_free_and_accounted_for(rows, cutoff) -> None:
    users, items, times = (np.array(c) for c in zip(*rows, strict=True))
    events = _events(users, items, times)
    if (times < cutoff).all() or (times >= cutoff).all():
        return
    split = split_temporal(events, cutoff=cutoff)
    assert split.train.matrix.multiply(split.test).nnz == 0
    before = {(u, i) for u, i, t in rows if t < cutoff}
    seen_users = {u for u, _ in before}
    after = {(u, i) for u, i, t in rows if t >= cutoff}
    expected_test = {p for p in after if p[0] in seen_users and p not in before}
    assert _pairs(split.test, events) == {(str(u), str(i)) for u, i in expected_test}
    assert split.counts["repeat_pairs_after_cutoff"] == len(after & before)
    assert split.counts["customers_only_after_cutoff"] == len({u for u, _ in after} - seen_users)
