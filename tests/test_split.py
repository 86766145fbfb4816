"""Train/test splits: leak-free partitions, the latest item, ratios, seeds and errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core import (
    IdMap,
    Interactions,
    Split,
    build_interactions,
    split_leave_one_out,
    split_ratio,
)
from growthrec.errors import DataError, ParameterError


def pairs_of(matrix: sp.csr_matrix, data: Interactions) -> dict[tuple[object, object], float]:
    """{(user id, item id): value} of the stored entries."""
    coo = matrix.tocoo()
    users = data.users.external(coo.row).tolist()
    items = data.items.external(coo.col).tolist()
    return dict(zip(zip(users, items, strict=True), coo.data.tolist(), strict=True))


def assert_partition(split: Split, data: Interactions) -> None:
    """Leak-free, exact partition of the original matrix, same shape and id maps."""
    train, test = split.train.matrix, split.test
    assert train.shape == test.shape == data.matrix.shape
    assert split.train.users is data.users and split.train.items is data.items
    assert train.multiply(test).nnz == 0  # no pair on both sides
    diff = (train + test - data.matrix).tocsr()
    diff.eliminate_zeros()
    assert diff.nnz == 0  # train + test is the original, values included
    assert train.nnz + test.nnz == data.nnz
    assert train.dtype == test.dtype == data.matrix.dtype
    for m in (train, test):
        assert m.has_canonical_format
        m.check_format(full_check=True)
    if data.timestamps is None:
        assert split.train.timestamps is None
    else:
        assert split.train.timestamps.shape == (train.nnz,)


def assert_train_timestamps_aligned(split: Split, data: Interactions) -> None:
    """Each train entry carries the timestamp its pair had in the original data."""
    rows, cols = _rows_cols(data.matrix)
    pairs = zip(rows.tolist(), cols.tolist(), strict=True)
    original = dict(zip(pairs, data.timestamps.tolist(), strict=True))
    rows, cols = _rows_cols(split.train.matrix)
    for r, c, t in zip(rows.tolist(), cols.tolist(), split.train.timestamps.tolist(), strict=True):
        assert original[(r, c)] == t


def _rows_cols(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices


# Users and their purchases with distinct times:
#   a: x@10  y@30  z@20          -> latest y
#   b: x@5   w@50                -> latest w
#   c: z@1                       -> one item: train only
#   d: x@100 y@7   z@3   w@40    -> latest x
#   e: y@2   y@60  (twice, same pair; the pair's time is 60) w@59 -> latest y
EVENTS = [
    ("a", "x", 10),
    ("a", "y", 30),
    ("a", "z", 20),
    ("b", "x", 5),
    ("b", "w", 50),
    ("c", "z", 1),
    ("d", "x", 100),
    ("d", "y", 7),
    ("d", "z", 3),
    ("d", "w", 40),
    ("e", "y", 2),
    ("e", "w", 59),
    ("e", "y", 60),
]


@pytest.fixture
def timed() -> Interactions:
    users, items, times = zip(*EVENTS, strict=True)
    return build_interactions(list(users), list(items), timestamps=list(times))


def random_interactions(seed: int, n_users: int = 60, n_items: int = 40) -> Interactions:
    rng = np.random.default_rng(seed)
    n = 600
    return build_interactions(
        rng.integers(0, n_users, n),
        rng.integers(0, n_items, n),
        weights=rng.integers(1, 4, n),
        timestamps=rng.permutation(n).astype(np.float64),
    )


def test_leave_one_out_latest_holds_out_the_latest_item(timed):
    split = split_leave_one_out(timed, by="latest", seed=0)
    assert_partition(split, timed)
    assert pairs_of(split.test, timed) == {
        ("a", "y"): 1.0,
        ("b", "w"): 1.0,
        ("d", "x"): 1.0,
        ("e", "y"): 2.0,
    }
    assert split.n_train_only == 1  # c
    assert split.n_test_users == 4
    assert split.protocol == "leave-one-out (latest)"
    assert_train_timestamps_aligned(split, timed)
    # The seed only breaks ties; with distinct times every seed agrees.
    for seed in (1, 2, 3):
        other = split_leave_one_out(timed, by="latest", seed=seed)
        assert pairs_of(other.test, timed) == pairs_of(split.test, timed)


def test_leave_one_out_latest_checked_against_max_timestamp():
    data = random_interactions(5)
    split = split_leave_one_out(data, by="latest", seed=0)
    assert_partition(split, data)
    m = data.matrix
    for u in range(data.n_users):
        lo, hi = m.indptr[u], m.indptr[u + 1]
        held = split.test.indices[split.test.indptr[u] : split.test.indptr[u + 1]]
        if hi - lo < 2:
            assert held.size == 0
            continue
        # Times are distinct (a permutation), so the latest item is unique.
        latest = m.indices[lo + int(np.argmax(data.timestamps[lo:hi]))]
        np.testing.assert_array_equal(held, [latest])
    assert_train_timestamps_aligned(split, data)


def test_min_interactions_keeps_small_users_in_train(timed):
    split = split_leave_one_out(timed, by="latest", min_interactions=3, seed=0)
    assert_partition(split, timed)
    assert pairs_of(split.test, timed) == {("a", "y"): 1.0, ("d", "x"): 1.0}
    assert split.n_train_only == 3  # b, c and e have two or fewer items
    train_pairs = pairs_of(split.train.matrix, timed)
    assert ("b", "w") in train_pairs and ("c", "z") in train_pairs and ("e", "y") in train_pairs


def test_users_without_interactions_are_not_counted_as_train_only():
    data = build_interactions(
        [0, 0, 1], [0, 1, 0], users=IdMap.from_ids(np.array([0, 1, 2])), items=None
    )
    assert data.n_users == 3
    for split in (split_leave_one_out(data, seed=0), split_ratio(data, seed=0)):
        assert split.n_train_only == 1  # user 1; user 2 has nothing at all
        assert split.n_test_users == 1
        assert_partition(split, data)


def test_latest_ties_are_broken_by_the_seed():
    # Five items bought at once: no latest, so the held-out item depends on the seed only.
    data = build_interactions(["u"] * 5, ["p", "q", "r", "s", "t"], timestamps=[7.0] * 5)
    held = set()
    for seed in range(30):
        first = split_leave_one_out(data, by="latest", seed=seed)
        again = split_leave_one_out(data, by="latest", seed=seed)
        np.testing.assert_array_equal(first.test.indices, again.test.indices)
        assert first.test.nnz == 1
        held.add(int(first.test.indices[0]))
    assert len(held) > 1


@pytest.mark.parametrize("by", ["random", "latest"])
def test_leave_one_out_one_item_per_eligible_user(by):
    data = random_interactions(1)
    split = split_leave_one_out(data, by=by, seed=3)
    assert_partition(split, data)
    counts = np.diff(data.matrix.indptr)
    held = np.diff(split.test.indptr)
    np.testing.assert_array_equal(held, (counts >= 2).astype(held.dtype))
    assert split.n_train_only == int(np.count_nonzero(counts == 1))
    assert split.n_test_users == int(np.count_nonzero(counts >= 2))
    assert_train_timestamps_aligned(split, data)


def test_leave_one_out_random_is_seeded():
    data = random_interactions(2)
    a = split_leave_one_out(data, seed=11)
    b = split_leave_one_out(data, seed=11)
    c = split_leave_one_out(data, seed=12)
    assert (a.test != b.test).nnz == 0
    assert (a.train.matrix != b.train.matrix).nnz == 0
    assert (a.test != c.test).nnz > 0
    # A Generator is used as given.
    d = split_leave_one_out(data, seed=np.random.default_rng(11))
    assert (a.test != d.test).nnz == 0


def test_leave_one_out_random_picks_every_item_eventually():
    # Random, not always the first or last stored item of the row.
    data = build_interactions(["u"] * 4 + ["v"] * 2, ["p", "q", "r", "s", "p", "q"])
    held = {int(split_leave_one_out(data, seed=s).test.indices[0]) for s in range(40)}
    assert held == {0, 1, 2, 3}


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.5, 0.75, 0.9])
def test_ratio_holds_out_rounded_share_per_user(ratio):
    data = random_interactions(4, n_users=40, n_items=30)
    split = split_ratio(data, test_ratio=ratio, seed=0)
    assert_partition(split, data)
    assert_train_timestamps_aligned(split, data)
    counts = np.diff(data.matrix.indptr).tolist()
    held = np.diff(split.test.indptr).tolist()
    assert len(set(counts)) > 5  # users of many sizes
    for n, h in zip(counts, held, strict=True):
        expected = 0 if n < 2 else min(max(round(ratio * n), 1), n - 1)
        assert h == expected, (n, h, ratio)
    assert split.n_train_only == counts.count(1)
    assert split.protocol == f"ratio holdout ({ratio:g})"


def test_ratio_hand_case():
    # Sizes 1, 2, 3, 10 at ratio 0.3: round(0.3)=0, below the 1 minimum; 0.6 -> 1; 0.9 -> 1;
    # 3.0 -> 3. So 0 (train only), 1, 1, 3.
    users = ["a"] + ["b"] * 2 + ["c"] * 3 + ["d"] * 10
    items = [0, 0, 1, 0, 1, 2, *range(10)]
    data = build_interactions(users, items)
    split = split_ratio(data, test_ratio=0.3, seed=0)
    np.testing.assert_array_equal(np.diff(split.test.indptr), [0, 1, 1, 3])
    assert split.n_train_only == 1
    # Never all of a user's items, even at a high ratio: 0.95 * 2 rounds to 2, clipped to 1.
    high = split_ratio(data, test_ratio=0.95, seed=0)
    np.testing.assert_array_equal(np.diff(high.test.indptr), [0, 1, 2, 9])


def test_ratio_is_seeded():
    data = random_interactions(6)
    a = split_ratio(data, test_ratio=0.3, seed=5)
    b = split_ratio(data, test_ratio=0.3, seed=5)
    c = split_ratio(data, test_ratio=0.3, seed=6)
    assert (a.test != b.test).nnz == 0
    assert (a.test != c.test).nnz > 0


def test_split_errors(timed):
    no_times = build_interactions(["a", "a"], ["x", "y"])
    with pytest.raises(ParameterError, match="needs timestamps"):
        split_leave_one_out(no_times, by="latest")
    with pytest.raises(ParameterError, match="by='oldest'"):
        split_leave_one_out(timed, by="oldest")
    with pytest.raises(ParameterError, match="min_interactions=1"):
        split_leave_one_out(timed, min_interactions=1)
    with pytest.raises(ParameterError, match="min_interactions=0"):
        split_ratio(timed, min_interactions=0)
    for ratio in (0.0, 1.0, -0.2, 1.5, float("nan")):
        with pytest.raises(ParameterError, match="test_ratio"):
            split_ratio(timed, test_ratio=ratio)
    singles = build_interactions(["a", "b"], ["x", "y"])
    with pytest.raises(DataError, match="no user has 2 or more"):
        split_leave_one_out(singles)
    with pytest.raises(DataError, match="no user has enough"):
        split_ratio(singles)
    with pytest.raises(DataError, match="no user has 5 or more"):
        split_leave_one_out(timed, min_interactions=5)


# ---------------------------------------------------------------------------------------------
# Properties on random matrices.
# ---------------------------------------------------------------------------------------------
@st.composite
def random_data(draw):
    n = draw(st.integers(1, 60))
    users = draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 10), min_size=n, max_size=n))
    weights = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    times = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))  # many ties on purpose
    return build_interactions(users, items, weights=weights, timestamps=times)


@settings(max_examples=100, deadline=None)
@given(
    random_data(),
    st.sampled_from(["random", "latest", "ratio"]),
    st.integers(2, 4),
    st.floats(0.05, 0.95),
    st.integers(0, 2**32 - 1),
)
def test_split_is_a_leak_free_partition(data, protocol, min_interactions, ratio, seed):
    counts = np.diff(data.matrix.indptr)
    if not (counts >= min_interactions).any():
        with pytest.raises(DataError):
            _split(data, protocol, min_interactions, ratio, seed)
        return
    split = _split(data, protocol, min_interactions, ratio, seed)
    assert_partition(split, data)
    assert_train_timestamps_aligned(split, data)
    held = np.diff(split.test.indptr)
    eligible = counts >= min_interactions
    assert (held[~eligible] == 0).all()
    assert (held[eligible] >= 1).all() and (held[eligible] <= counts[eligible] - 1).all()
    if protocol != "ratio":
        assert (held[eligible] == 1).all()
    if protocol == "latest":
        m = data.matrix
        for u in np.flatnonzero(eligible):
            lo, hi = m.indptr[u], m.indptr[u + 1]
            item = split.test.indices[split.test.indptr[u]]
            t_held = data.timestamps[lo + int(np.flatnonzero(m.indices[lo:hi] == item)[0])]
            assert t_held == data.timestamps[lo:hi].max()
    assert split.n_train_only == int(np.count_nonzero(~eligible & (counts > 0)))
    again = _split(data, protocol, min_interactions, ratio, seed)
    assert (again.test != split.test).nnz == 0


def _split(data, protocol, min_interactions, ratio, seed):
    if protocol == "ratio":
        return split_ratio(data, test_ratio=ratio, seed=seed, min_interactions=min_interactions)
    return split_leave_one_out(data, by=protocol, seed=seed, min_interactions=min_interactions)
