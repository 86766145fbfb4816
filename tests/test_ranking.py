"""Top-k ranking: hand-made rows, ties, exclusions, batching and threads."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from growthrec.core import ranking, top_k, top_k_batched
from growthrec.core.ranking import batch_rows, top_k_factors
from growthrec.errors import ParameterError

NEG_INF = -np.inf


def reference_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row by row: a full stable sort by (-score, index), -inf dropped, padded with -1/-inf."""
    n_rows, n_items = scores.shape
    items = np.full((n_rows, k), -1, dtype=np.int64)
    values = np.full((n_rows, k), NEG_INF, dtype=scores.dtype)
    for r in range(n_rows):
        ranked = sorted(range(n_items), key=lambda j: (-float(scores[r, j]), j))
        ranked = [j for j in ranked if scores[r, j] != NEG_INF][:k]
        items[r, : len(ranked)] = ranked
        values[r, : len(ranked)] = scores[r, ranked]
    return items, values


def assert_top_k_equal(got, expected):
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


# ---------------------------------------------------------------------------------------------
# top_k by hand.
# ---------------------------------------------------------------------------------------------
def test_top_k_orders_best_first():
    scores = np.array([[0.1, 0.5, 0.3, 0.9, 0.2], [5.0, 4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    items, values = top_k(scores, 3)
    np.testing.assert_array_equal(items, [[3, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(values, np.array([[0.9, 0.5, 0.3], [5, 4, 3]], np.float32))
    assert items.dtype == np.int64
    assert values.dtype == np.float32


def test_top_k_ties_go_to_the_lower_index():
    # Row 0: 3s at items 1 and 3 come first (1 before 3); then the 2s at items 2, 4, 5 straddle
    # the k-th position and only the lowest index (2) gets in.
    # Row 1: the tie straddles the k-th position from the high-index side: 7s at 0, 5, 6 and 9.
    # Row 2: a tie at the top only.
    scores = np.array(
        [
            [1, 3, 2, 3, 2, 2, 0, 1, 0, 0],
            [7, 1, 1, 8, 1, 7, 7, 1, 1, 7],
            [4, 9, 9, 1, 2, 3, 5, 0, 0, 0],
        ],
        dtype=np.float32,
    )
    items, values = top_k(scores, 3)
    np.testing.assert_array_equal(items, [[1, 3, 2], [3, 0, 5], [1, 2, 6]])
    np.testing.assert_array_equal(values, [[3, 3, 2], [8, 7, 7], [9, 9, 5]])


def test_top_k_all_equal_row():
    scores = np.full((2, 6), 5.0)
    items, values = top_k(scores, 4)
    np.testing.assert_array_equal(items, [[0, 1, 2, 3]] * 2)
    np.testing.assert_array_equal(values, np.full((2, 4), 5.0))


def test_top_k_neg_inf_is_excluded_and_padded():
    scores = np.array([[NEG_INF, 2.0, NEG_INF, 1.0, NEG_INF]])
    items, values = top_k(scores, 3)
    np.testing.assert_array_equal(items, [[1, 3, -1]])
    np.testing.assert_array_equal(values, [[2.0, 1.0, NEG_INF]])
    items, values = top_k(scores, 5)
    np.testing.assert_array_equal(items, [[1, 3, -1, -1, -1]])
    np.testing.assert_array_equal(values, [[2.0, 1.0, NEG_INF, NEG_INF, NEG_INF]])


def test_top_k_all_neg_inf_row():
    scores = np.array([[NEG_INF] * 4, [0.0, NEG_INF, -1.0, NEG_INF]])
    items, values = top_k(scores, 2)
    np.testing.assert_array_equal(items, [[-1, -1], [0, 2]])
    np.testing.assert_array_equal(values, [[NEG_INF, NEG_INF], [0.0, -1.0]])


def test_top_k_negative_scores_rank_above_neg_inf():
    scores = np.array([[-5.0, NEG_INF, -1e30, -0.5]])
    items, _ = top_k(scores, 4)
    np.testing.assert_array_equal(items, [[3, 0, 2, -1]])


def test_top_k_larger_than_n_items_pads():
    scores = np.array([[1.0, 2.0], [3.0, 3.0]], dtype=np.float32)
    items, values = top_k(scores, 4)
    np.testing.assert_array_equal(items, [[1, 0, -1, -1], [0, 1, -1, -1]])
    np.testing.assert_array_equal(values, [[2, 1, NEG_INF, NEG_INF], [3, 3, NEG_INF, NEG_INF]])
    assert values.dtype == np.float32


def test_top_k_equal_to_n_items_is_a_full_sort():
    scores = np.array([[0.3, 0.1, 0.3, 0.7]])
    items, _ = top_k(scores, 4)
    np.testing.assert_array_equal(items, [[3, 0, 2, 1]])


def test_top_k_does_not_modify_its_input():
    scores = np.array([[3.0, 1.0, 3.0, NEG_INF]])
    before = scores.copy()
    top_k(scores, 2)
    np.testing.assert_array_equal(scores, before)


@pytest.mark.parametrize("k", [0, -3])
def test_top_k_rejects_k_below_one(k):
    with pytest.raises(ParameterError, match=f"k={k}"):
        top_k(np.ones((1, 3)), k)


def test_batch_rows():
    assert batch_rows(1000, batch_bytes=4000 * 7) == 7
    assert batch_rows(10**9, batch_bytes=16) == 1  # at least one row
    assert batch_rows(0, batch_bytes=40) == 10


# ---------------------------------------------------------------------------------------------
# top_k against a full sort: small integer scores force many ties, including at the k-th place.
# ---------------------------------------------------------------------------------------------
tied_scores = hnp.arrays(
    dtype=np.float32,
    shape=st.tuples(st.integers(1, 6), st.integers(1, 12)),
    elements=st.sampled_from([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, NEG_INF]),
)


@settings(max_examples=300, deadline=None)
@given(tied_scores, st.integers(1, 15))
def test_top_k_equals_full_stable_sort(scores, k):
    assert_top_k_equal(top_k(scores, k), reference_top_k(scores, k))


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        dtype=np.float64,
        shape=st.tuples(st.integers(1, 5), st.integers(1, 30)),
        elements=st.floats(-1e6, 1e6, allow_nan=False, width=64),
    ),
    st.integers(1, 35),
)
def test_top_k_equals_full_stable_sort_continuous(scores, k):
    assert_top_k_equal(top_k(scores, k), reference_top_k(scores, k))


# ---------------------------------------------------------------------------------------------
# top_k_batched with exclusions.
# ---------------------------------------------------------------------------------------------
def as_index_array(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


@st.composite
def batched_cases(draw):
    n_rows = draw(st.integers(1, 9))
    n_items = draw(st.integers(1, 10))
    scores = draw(
        hnp.arrays(
            dtype=np.float32,
            shape=(n_rows, n_items),
            elements=st.sampled_from([-1.0, 0.0, 1.0, 2.0, 0.5]),
        )
    )
    mask = draw(hnp.arrays(dtype=np.bool_, shape=(n_rows, n_items)))
    exclude_rows = sp.csr_matrix(mask.astype(np.float32)) if draw(st.booleans()) else None
    item_index = st.integers(0, n_items - 1)
    exclude_items = draw(st.none() | st.lists(item_index, max_size=n_items).map(as_index_array))
    allow_items = draw(st.none() | st.lists(item_index, max_size=n_items).map(as_index_array))
    k = draw(st.integers(1, n_items + 2))
    return scores, exclude_rows, exclude_items, allow_items, k


def masked_reference(scores, exclude_rows, exclude_items, allow_items, k):
    masked = scores.astype(np.float32).copy()
    if exclude_rows is not None:
        masked[exclude_rows.toarray() != 0] = NEG_INF
    if exclude_items is not None and len(exclude_items):
        masked[:, exclude_items] = NEG_INF
    if allow_items is not None:
        banned = np.ones(scores.shape[1], dtype=bool)
        banned[allow_items] = False
        masked[:, banned] = NEG_INF
    return reference_top_k(masked, k)


@settings(max_examples=150, deadline=None)
@given(batched_cases())
def test_top_k_batched_respects_exclusions_and_matches_reference(case):
    scores, exclude_rows, exclude_items, allow_items, k = case
    n_rows, n_items = scores.shape
    expected = masked_reference(scores, exclude_rows, exclude_items, allow_items, k)
    results = []
    for batch_size in (1, 3, n_rows, None):
        for n_threads in (1, 2):
            got = top_k_batched(
                lambda start, stop: scores[start:stop],
                n_rows,
                n_items,
                k,
                exclude_rows=exclude_rows,
                exclude_items=exclude_items,
                allow_items=allow_items,
                batch_size=batch_size,
                n_threads=n_threads,
            )
            assert got[0].shape == (n_rows, k) and got[1].shape == (n_rows, k)
            assert got[1].dtype == np.float32
            assert_top_k_equal(got, expected)
            results.append(got)
    # Never an excluded or disallowed item, checked directly rather than through the reference.
    items = results[0][0]
    for r in range(n_rows):
        returned = set(items[r][items[r] >= 0].tolist())
        if exclude_rows is not None:
            assert returned.isdisjoint(exclude_rows[r].indices.tolist())
        if exclude_items is not None:
            assert returned.isdisjoint(exclude_items.tolist())
        if allow_items is not None:
            assert returned <= set(allow_items.tolist())


def test_top_k_batched_hand_case():
    scores = np.array(
        [
            [0.9, 0.8, 0.7, 0.6, 0.5],
            [0.1, 0.2, 0.3, 0.4, 0.5],
            [1.0, 1.0, 1.0, 1.0, 1.0],
        ],
        dtype=np.float32,
    )
    bought = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]))
    items, values = top_k_batched(
        lambda start, stop: scores[start:stop],
        3,
        5,
        2,
        exclude_rows=bought,
        exclude_items=np.array([1]),
        batch_size=2,
    )
    # Row 0: item 0 bought, 1 excluded for all -> 2, 3. Row 1: 4 bought -> 3, 2.
    # Row 2: all tied, 1 excluded -> 0, 2.
    np.testing.assert_array_equal(items, [[2, 3], [3, 2], [0, 2]])
    np.testing.assert_array_equal(values, np.array([[0.7, 0.6], [0.4, 0.3], [1, 1]], np.float32))
    items, _ = top_k_batched(
        lambda start, stop: scores[start:stop], 3, 5, 4, allow_items=np.array([4, 1])
    )
    np.testing.assert_array_equal(items, [[1, 4, -1, -1], [4, 1, -1, -1], [1, 4, -1, -1]])


def test_top_k_batched_calls_each_row_range_once():
    scores = np.arange(7 * 4, dtype=np.float64).reshape(7, 4)
    calls = []

    def score_batch(start, stop):
        calls.append((start, stop))
        return scores[start:stop]

    items, values = top_k_batched(score_batch, 7, 4, 2, batch_size=3)
    assert calls == [(0, 3), (3, 6), (6, 7)]
    np.testing.assert_array_equal(items, np.tile([3, 2], (7, 1)))
    np.testing.assert_array_equal(values[:, 0], scores[:, 3].astype(np.float32))


def test_top_k_batched_does_not_write_into_the_callers_scores():
    scores = np.ones((2, 3), dtype=np.float32)
    top_k_batched(lambda start, stop: scores[start:stop], 2, 3, 1, exclude_items=np.array([0, 1]))
    np.testing.assert_array_equal(scores, np.ones((2, 3)))


def test_top_k_batched_rejects_bad_arguments():
    with pytest.raises(ParameterError, match="k=0"):
        top_k_batched(lambda start, stop: np.zeros((stop - start, 3)), 2, 3, 0)
    with pytest.raises(ParameterError, match="exclude_rows has shape"):
        top_k_batched(
            lambda start, stop: np.zeros((stop - start, 3)),
            2,
            3,
            1,
            exclude_rows=sp.csr_matrix((3, 3)),
        )


# ---------------------------------------------------------------------------------------------
# Wide rows: the grouped selection (one maximum per strand of columns) must stay exact.
# ---------------------------------------------------------------------------------------------
def sorted_reference(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A full sort of every row by (-score, index), -inf dropped: vectorised for wide rows."""
    n_items = scores.shape[1]
    columns = np.broadcast_to(np.arange(n_items), scores.shape)
    order = np.lexsort((columns, -scores), axis=-1)[:, :k]
    values = np.take_along_axis(scores, order, axis=1)
    items = np.where(np.isneginf(values), -1, order).astype(np.int64)
    if k > n_items:
        items = np.pad(items, ((0, 0), (0, k - n_items)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - n_items)), constant_values=NEG_INF)
    return items, values


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(1, 6),
    n_items=st.integers(512, 3000),
    k=st.integers(1, 40),
    levels=st.sampled_from([3, 20, 0]),
    excluded=st.sampled_from([0.0, 0.5, 0.995, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_top_k_on_wide_rows_equals_a_full_sort(n_rows, n_items, k, levels, excluded, seed):
    # levels > 0: a few distinct values, so ties straddle the k-th place and strand maxima tie;
    # 0: continuous values. ``excluded`` of the cells are -inf (0.995 and 1: fewer than k left).
    rng = np.random.default_rng(seed)
    if levels:
        scores = rng.integers(0, levels, (n_rows, n_items)).astype(np.float32)
    else:
        scores = rng.standard_normal((n_rows, n_items)).astype(np.float32)
    scores[rng.random(scores.shape) < excluded] = NEG_INF
    assert_top_k_equal(top_k(scores, k), sorted_reference(scores, k))


def test_top_k_wide_row_with_the_best_items_in_the_ragged_tail():
    # 1,000 columns: the columns past the last full strand are always candidates.
    scores = np.zeros((2, 1000), dtype=np.float32)
    scores[0, -3:] = [5.0, 7.0, 6.0]
    scores[1, [0, 999]] = 4.0
    items, values = top_k(scores, 3)
    np.testing.assert_array_equal(items, [[998, 999, 997], [0, 999, 1]])
    np.testing.assert_array_equal(values, [[7, 6, 5], [4, 4, 0]])


# ---------------------------------------------------------------------------------------------
# top_k_factors: skipping items by the norm bound gives the same lists as scoring them all.
# ---------------------------------------------------------------------------------------------
@st.composite
def factor_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_rows = draw(st.integers(1, 40))
    n_items = draw(st.integers(1, 300))
    n_factors = draw(st.integers(1, 6))
    if draw(st.booleans()):
        # Small integers: exact scores with many ties (also between blocks) and zeros.
        users = rng.integers(-2, 3, (n_rows, n_factors)).astype(np.float32)
        items = rng.integers(-2, 3, (n_items, n_factors)).astype(np.float32)
    else:
        # Item norms spread over four orders of magnitude, as in trained models, so the bound
        # bites. Small integers times a power of two per item: every score is exact in float32
        # whatever the order of the sums, so both ways of ranking see the very same scores.
        users = rng.integers(-8, 9, (n_rows, n_factors)).astype(np.float32)
        scale = 2.0 ** rng.integers(-8, 5, (n_items, 1))
        items = (rng.integers(-8, 9, (n_items, n_factors)) * scale).astype(np.float32)
    users[rng.random(n_rows) < 0.1] = 0.0  # users with no signal: every score ties at 0
    bought = rng.random((n_rows, n_items)) < draw(st.sampled_from([0.0, 0.1, 0.9]))
    exclude_rows = sp.csr_matrix(bought.astype(np.float32)) if draw(st.booleans()) else None
    item_index = st.integers(0, n_items - 1)
    exclude_items = draw(st.none() | st.lists(item_index, max_size=5).map(as_index_array))
    allow_items = draw(st.none() | st.lists(item_index, max_size=60).map(as_index_array))
    k = draw(st.integers(1, 12))
    return users, items, exclude_rows, exclude_items, allow_items, k


@pytest.mark.parametrize("wide_k", [None, 1], ids=["merged", "collected"])
@settings(max_examples=200, deadline=None)
@given(factor_cases(), st.sampled_from([None, 7]), st.sampled_from([1, 2]))
def test_top_k_factors_equals_ranking_every_score(wide_k, case, batch_size, n_threads):
    """Both ways of keeping the lists over the blocks (exact merges for short lists, entries
    above a rising threshold for long ones) give the lists of ranking every score."""
    users, items, exclude_rows, exclude_items, allow_items, k = case
    options = {
        "exclude_rows": exclude_rows,
        "exclude_items": exclude_items,
        "allow_items": allow_items,
        "batch_size": batch_size,
        "n_threads": n_threads,
    }
    scores = users @ items.T
    expected = top_k_batched(
        lambda start, stop: scores[start:stop], users.shape[0], items.shape[0], k, **options
    )
    # Tiny blocks, so that even these small catalogues take several blocks and merges.
    with (
        mock.patch("growthrec.core.ranking.FIRST_BLOCK_ITEMS", 8),
        mock.patch("growthrec.core.ranking.BLOCK_CELLS", 256),
        mock.patch("growthrec.core.ranking.WIDE_K", wide_k or ranking.WIDE_K),
    ):
        got = top_k_factors(
            lambda start, stop: users[start:stop], users.shape[0], items, k, **options
        )
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[1].dtype == np.float32 and got[0].dtype == np.int64


def test_top_k_factors_visits_few_items_when_norms_are_skewed(monkeypatch):
    # Item norms fall off steeply: after the first block the bound rules every other item out.
    rng = np.random.default_rng(0)
    items = (rng.standard_normal((5000, 8)) * np.geomspace(10, 1e-3, 5000)[:, None]).astype(
        np.float32
    )
    items = items[rng.permutation(5000)]
    users = rng.standard_normal((50, 8)).astype(np.float32)
    widths = []
    real_matmul = np.matmul

    def counting_matmul(a, b, out=None):
        widths.append(b.shape[1])
        return real_matmul(a, b, out=out)

    monkeypatch.setattr("growthrec.core.ranking.np.matmul", counting_matmul)
    got = top_k_factors(lambda start, stop: users[start:stop], 50, items, 10)
    monkeypatch.undo()
    expected = top_k(users @ items.T, 10)
    np.testing.assert_array_equal(got[0], expected[0])
    assert sum(widths) < 5000 / 2


def test_top_k_factors_rejects_bad_arguments():
    users, items = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ParameterError, match="k=0"):
        top_k_factors(lambda start, stop: users[start:stop], 2, items, 0)
    with pytest.raises(ParameterError, match="exclude_rows has shape"):
        top_k_factors(
            lambda start, stop: users[start:stop], 2, items, 1, exclude_rows=sp.csr_matrix((2, 5))
        )


@pytest.mark.parametrize(
    ("backend", "params"),
    [
        ("svd", {"factors": 8}),
        ("svd", {"factors": 8, "normalize": True}),
        ("als", {"factors": 8, "iterations": 3, "threads": 1}),
    ],
)
def test_recommend_through_factors_equals_scoring_every_item(small_shop, backend, params):
    """``recommend`` ranks factor models by ``top_k_factors``; the backend's ``score`` agrees."""
    if backend == "als":
        pytest.importorskip("implicit")
    from growthrec.backends.registry import get_backend
    from growthrec.core.weighting import apply_weighting
    from growthrec.pipeline.fitting import fit_model
    from growthrec.pipeline.lists import recommend

    model = fit_model(small_shop, backend, params, seed=0)
    users = np.arange(small_shop.n_users)
    impl = get_backend(backend)
    weighted = apply_weighting(small_shop.matrix, model.weighting)
    expected = top_k_batched(
        lambda start, stop: impl.score(model.arrays, model.params, weighted[start:stop], users),
        small_shop.n_users,
        small_shop.n_items,
        7,
        exclude_rows=small_shop.matrix,
        exclude_items=np.array([3]),
        batch_size=small_shop.n_users,
    )
    excluded = small_shop.items.external([3]).tolist()
    for n_threads in (1, 2):
        got = recommend(model, users, 7, exclude_items=excluded, n_threads=n_threads)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-5, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 30),
            st.integers(0, 5000),
            st.floats(width=32, allow_nan=False).map(lambda v: v + 0.0),  # -0.0 given as 0.0
        ),
        max_size=60,
    ),
    st.sampled_from([5000, 2**40]),  # keys in 64 bits, or too wide: np.lexsort
)
def test_sorted_entries_order_rows_then_falling_scores_then_items(entries, max_id):
    """The 64-bit keys (row, score's bits, item) order entries as the three-key sort does,
    and give every score back bit for bit (infinities and subnormals included)."""
    rows = np.array([e[0] for e in entries], dtype=np.int64)
    ids = np.array([e[1] for e in entries], dtype=np.int64)
    values = np.array([e[2] for e in entries], dtype=np.float32)
    got = ranking._sorted_entries(rows, ids, values, 31, max_id)
    order = sorted(range(len(entries)), key=lambda j: (rows[j], -float(values[j]), ids[j]))
    np.testing.assert_array_equal(got[0], rows[order])
    np.testing.assert_array_equal(got[1], ids[order])
    np.testing.assert_array_equal(got[2].view(np.uint32), values[order].view(np.uint32))
