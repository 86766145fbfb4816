"""Ranking metrics: hand-computed cases, a loop reference, scikit-learn, implicit, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core import (
    METRIC_NAMES,
    catalog_coverage_at_k,
    hit_matrix,
    hit_rate_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    top_k_batched,
)
from growthrec.errors import ParameterError

PER_USER_METRICS = ("hit_rate", "precision", "recall", "ndcg", "map", "mrr")
METRIC_FUNCTIONS = {
    "hit_rate": hit_rate_at_k,
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "mrr": mrr_at_k,
}


def truth_matrix(rows: list[set[int]] | list[list[int]], n_items: int) -> sp.csr_matrix:
    """A binary CSR matrix with one row of held-out items per user."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([i for r in rows for i in sorted(r)], dtype=np.int64)
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_items))


# ---------------------------------------------------------------------------------------------
# The hand-computed example. n_items = 10, recommendations 4 deep, evaluated at K = 3 and K = 4.
#
#   user  recommended       held out            hits (rank)          note
#   u0    [0, 1, 2, 3]      {1, 3}              2, 4                 rank-4 hit only counts at K=4
#   u1    [5, 1, 6, 0]      {0, 2, 5, 6, 9}     1, 3, 4              more held-out items than K
#   u2    [4, -1, -1, -1]   {4}                 1                    -1 padding; u2's padding key
#                                                                    2*10 - 1 = 19 is u1's item 9
#   u3    [7, 8, 5, 4]      {}                  -                    excluded from every mean
#   u4    [0, 1, 3, 2]      {2}                 4                    no hit within K=3
#
# Evaluated users: u0, u1, u2, u4 (4 of them). L = 1/log2(3) = 0.6309297536, M = 1/log2(5).
#
# K = 3
#   hit_rate  1, 1, 1, 0                                  -> 3/4
#   precision 1/3, 2/3, 1/3, 0                            -> (4/3)/4 = 1/3
#   recall    1/2, 2/5, 1/1, 0/1                          -> 1.9/4 = 0.475
#   ndcg      u0: L / (1 + L)                   (ideal over min(3, 2) = 2 positions) = 0.386853
#             u1: (1 + 1/2) / (1 + L + 1/2)     (ideal over min(3, 5) = 3 positions) = 0.703918
#             u2: 1, u4: 0                      -> mean 0.522693
#   map       u0: (1/2) / min(3, 2) = 1/4
#             u1: (1/1 + 2/3) / min(3, 5) = 5/9
#             u2: 1/1 / 1 = 1, u4: 0            -> (1/4 + 5/9 + 1) / 4 = 65/144
#   mrr       1/2, 1, 1, 0                                -> 2.5/4 = 0.625
#   coverage  top-3 of all rows: {0,1,2} {5,1,6} {4} {7,8,5} {0,1,3} = {0..8} -> 9/10
#             evaluated rows only (ranking_metrics): u3's 7 and 8 drop out -> 7/10
#
# K = 4
#   hit_rate  1, 1, 1, 1                                  -> 1
#   precision 2/4, 3/4, 1/4, 1/4                          -> (7/4)/4 = 7/16
#   recall    2/2, 3/5, 1/1, 1/1                          -> 3.6/4 = 0.9
#   ndcg      u0: (L + M) / (1 + L)
#             u1: (1 + 1/2 + M) / (1 + L + 1/2 + M)
#             u2: 1, u4: M / 1
#   map       u0: (1/2 + 2/4) / min(4, 2) = 1/2
#             u1: (1/1 + 2/3 + 3/4) / min(4, 5) = 29/48
#             u2: 1, u4: (1/4) / 1 = 1/4        -> (1/2 + 29/48 + 1 + 1/4) / 4 = 113/192
#   mrr       1/2, 1, 1, 1/4                              -> 2.75/4 = 0.6875
#   coverage  all rows: {0..8} -> 9/10; evaluated rows: {0,1,2,3,4,5,6} -> 7/10
# ---------------------------------------------------------------------------------------------
HAND_N_ITEMS = 10
HAND_RECOMMENDED = np.array(
    [[0, 1, 2, 3], [5, 1, 6, 0], [4, -1, -1, -1], [7, 8, 5, 4], [0, 1, 3, 2]], dtype=np.int64
)
HAND_TRUTH = truth_matrix([{1, 3}, {0, 2, 5, 6, 9}, {4}, set(), {2}], HAND_N_ITEMS)
L = 1 / math.log2(3)
M = 1 / math.log2(5)
HAND_EXPECTED = {
    3: {
        "hit_rate": 3 / 4,
        "precision": 1 / 3,
        "recall": 0.475,
        "ndcg": (L / (1 + L) + 1.5 / (1.5 + L) + 1 + 0) / 4,
        "map": 65 / 144,
        "mrr": 0.625,
        "coverage": 0.7,
    },
    4: {
        "hit_rate": 1.0,
        "precision": 7 / 16,
        "recall": 0.9,
        "ndcg": ((L + M) / (1 + L) + (1.5 + M) / (1.5 + L + M) + 1 + M) / 4,
        "map": 113 / 192,
        "mrr": 0.6875,
        "coverage": 0.7,
    },
}


def test_hand_expected_numbers_are_the_ones_in_the_comment():
    # Guards the comment above against a slip in the Python expressions.
    assert abs(L - 0.6309297536) < 1e-10
    assert abs(L / (1 + L) - 0.386853) < 1e-6
    assert abs(1.5 / (1.5 + L) - 0.703918) < 1e-6
    assert abs(HAND_EXPECTED[3]["ndcg"] - 0.522693) < 1e-6


def test_hit_matrix_hand_case():
    expected = np.array(
        [
            [False, True, False, True],
            [True, False, True, True],
            [True, False, False, False],  # the -1 padding never hits, not even u1's item 9
            [False, False, False, False],
            [False, False, False, True],
        ]
    )
    np.testing.assert_array_equal(hit_matrix(HAND_RECOMMENDED, HAND_TRUTH), expected)


@pytest.mark.parametrize("k", [3, 4])
@pytest.mark.parametrize("name", PER_USER_METRICS)
def test_each_metric_on_the_hand_case(name, k):
    value = METRIC_FUNCTIONS[name](HAND_RECOMMENDED, HAND_TRUTH, k)
    assert isinstance(value, float)
    assert value == pytest.approx(HAND_EXPECTED[k][name], abs=1e-12)


@pytest.mark.parametrize("k", [3, 4])
def test_ranking_metrics_on_the_hand_case(k):
    out = ranking_metrics(HAND_RECOMMENDED, HAND_TRUTH, [k], HAND_N_ITEMS)
    assert list(out) == [k]
    assert set(out[k]) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert out[k][name] == pytest.approx(HAND_EXPECTED[k][name], abs=1e-12), name


def test_ranking_metrics_several_ks_match_single_calls():
    out = ranking_metrics(HAND_RECOMMENDED, HAND_TRUTH, [1, 2, 3, 4], HAND_N_ITEMS)
    assert list(out) == [1, 2, 3, 4]
    for k in (1, 2, 3, 4):
        for name in PER_USER_METRICS:
            single = METRIC_FUNCTIONS[name](HAND_RECOMMENDED, HAND_TRUTH, k)
            assert out[k][name] == pytest.approx(single, abs=1e-12)


@pytest.mark.parametrize(("k", "expected"), [(1, 4 / 10), (3, 9 / 10), (4, 9 / 10)])
def test_catalog_coverage_hand_case(k, expected):
    # Over all rows, including u3 whose truth is empty; k=1: {0, 5, 4, 7, 0} -> 4/10.
    assert catalog_coverage_at_k(HAND_RECOMMENDED, HAND_N_ITEMS, k) == pytest.approx(expected)


def test_catalog_coverage_ignores_padding_and_counts_each_item_once():
    rec = np.array([[2, 2, -1], [-1, -1, -1], [2, 0, -1]])
    assert catalog_coverage_at_k(rec, 4, 3) == pytest.approx(2 / 4)
    assert catalog_coverage_at_k(rec, 4, 1) == pytest.approx(1 / 4)


def test_users_without_held_out_items_do_not_move_any_mean():
    # Adding users with empty truth (and recommendations that would hit anything) changes nothing.
    extra_rec = np.vstack([HAND_RECOMMENDED, [[9, 8, 7, 6], [0, 1, 2, 3]]])
    extra_truth = sp.vstack([HAND_TRUTH, sp.csr_matrix((2, HAND_N_ITEMS))]).tocsr()
    for name, fn in METRIC_FUNCTIONS.items():
        assert fn(extra_rec, extra_truth, 3) == pytest.approx(HAND_EXPECTED[3][name])


def test_no_evaluated_user_gives_zero():
    rec = np.array([[0, 1], [1, 0]])
    empty = sp.csr_matrix((2, 3), dtype=np.float32)
    for fn in METRIC_FUNCTIONS.values():
        assert fn(rec, empty, 2) == 0.0


def test_single_user_perfect_and_worst():
    rec = np.array([[3, 1, 0]])
    perfect = truth_matrix([{3, 1}], 5)
    worst = truth_matrix([{2, 4}], 5)
    for name, fn in METRIC_FUNCTIONS.items():
        expected_perfect = 2 / 3 if name == "precision" else 1.0
        assert fn(rec, perfect, 3) == pytest.approx(expected_perfect), name
        assert fn(rec, worst, 3) == 0.0, name


@pytest.mark.parametrize("fn", list(METRIC_FUNCTIONS.values()))
@pytest.mark.parametrize("k", [0, -1, 5])
def test_bad_k_raises(fn, k):
    # 5 is deeper than the 4 recommended columns.
    with pytest.raises(ParameterError, match=f"k={k}"):
        fn(HAND_RECOMMENDED, HAND_TRUTH, k)


@pytest.mark.parametrize("k", [0, -1])
def test_coverage_bad_k_raises(k):
    with pytest.raises(ParameterError, match=f"k={k}"):
        catalog_coverage_at_k(HAND_RECOMMENDED, HAND_N_ITEMS, k)


def test_coverage_bad_n_items_raises():
    with pytest.raises(ParameterError, match="n_items=0"):
        catalog_coverage_at_k(HAND_RECOMMENDED, 0, 3)


def test_row_count_mismatch_raises():
    with pytest.raises(ParameterError, match="truth has 5 rows"):
        hit_matrix(HAND_RECOMMENDED[:4], HAND_TRUTH)


# ---------------------------------------------------------------------------------------------
# A plain-Python reference, one user at a time, written from the definitions in metrics.py.
# ---------------------------------------------------------------------------------------------
def reference_metrics(
    recommended: np.ndarray, truth: sp.csr_matrix, k: int, n_items: int
) -> dict[str, float]:
    sums = dict.fromkeys(PER_USER_METRICS, 0.0)
    n_evaluated = 0
    covered: set[int] = set()
    for u in range(recommended.shape[0]):
        relevant = set(truth.indices[truth.indptr[u] : truth.indptr[u + 1]].tolist())
        if not relevant:
            continue
        n_evaluated += 1
        top = [int(i) for i in recommended[u, :k]]
        covered.update(i for i in top if i >= 0)
        hits = 0
        dcg = 0.0
        precision_sum = 0.0
        first_hit_rank = None
        for rank, item in enumerate(top, start=1):
            if item >= 0 and item in relevant:
                hits += 1
                dcg += 1.0 / math.log2(rank + 1)
                precision_sum += hits / rank
                if first_hit_rank is None:
                    first_hit_rank = rank
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
        sums["hit_rate"] += 1.0 if hits else 0.0
        sums["precision"] += hits / k
        sums["recall"] += hits / len(relevant)
        sums["ndcg"] += dcg / ideal
        sums["map"] += precision_sum / min(k, len(relevant))
        sums["mrr"] += 1.0 / first_hit_rank if first_hit_rank else 0.0
    out = {name: (s / n_evaluated if n_evaluated else 0.0) for name, s in sums.items()}
    out["coverage"] = len(covered) / n_items
    return out


def random_case(
    rng: np.random.Generator, n_users: int, n_items: int, depth: int
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Random recommendations (distinct items, some rows padded with -1) and random truth."""
    rec = np.full((n_users, depth), -1, dtype=np.int64)
    rows: list[list[int]] = []
    for u in range(n_users):
        n_rec = depth if rng.random() < 0.8 else int(rng.integers(0, depth + 1))
        rec[u, :n_rec] = rng.choice(n_items, size=n_rec, replace=False)
        n_true = int(rng.integers(0, 8)) if rng.random() < 0.9 else 0
        # Bias truth towards recommended items so that there are plenty of hits.
        pool = np.concatenate([rec[u, :n_rec], rng.choice(n_items, size=6, replace=False)])
        rows.append(sorted(set(rng.choice(pool, size=min(n_true, pool.size)).tolist())))
    return rec, truth_matrix(rows, n_items)


def test_random_case_has_hits_padding_and_empty_users():
    # The generator feeding the cross-checks must exercise what it is meant to.
    rec, truth = random_case(np.random.default_rng(0), 200, 40, 8)
    assert hit_matrix(rec, truth).sum() > 100
    assert (rec == -1).any()
    assert (np.diff(truth.indptr) == 0).any()
    assert len(set(np.diff(truth.indptr).tolist())) > 3


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_vectorised_metrics_match_loop_reference(seed):
    rng = np.random.default_rng(seed)
    n_items = 30
    rec, truth = random_case(rng, 120, n_items, 10)
    ks = [1, 3, 5, 10]
    out = ranking_metrics(rec, truth, ks, n_items)
    evaluated = rec[np.diff(truth.indptr) > 0]
    for k in ks:
        expected = reference_metrics(rec, truth, k, n_items)
        for name in PER_USER_METRICS:
            assert METRIC_FUNCTIONS[name](rec, truth, k) == pytest.approx(
                expected[name], rel=1e-12, abs=1e-12
            ), (name, k)
            assert out[k][name] == pytest.approx(expected[name], rel=1e-12, abs=1e-12)
        assert out[k]["coverage"] == pytest.approx(expected["coverage"])
        assert catalog_coverage_at_k(evaluated, n_items, k) == pytest.approx(expected["coverage"])


def test_truth_with_unsorted_indices_gives_same_result():
    rng = np.random.default_rng(7)
    rec, truth = random_case(rng, 50, 20, 5)
    shuffled = truth.copy()
    for u in range(shuffled.shape[0]):
        lo, hi = shuffled.indptr[u], shuffled.indptr[u + 1]
        shuffled.indices[lo:hi] = shuffled.indices[lo:hi][::-1]
    shuffled.has_sorted_indices = False
    for fn in METRIC_FUNCTIONS.values():
        assert fn(rec, shuffled, 5) == pytest.approx(fn(rec, truth, 5), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# scikit-learn's ndcg_score, user by user.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ndcg_matches_sklearn(seed):
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(seed)
    n_users, n_items, k = 60, 25, 5
    # Full-depth recommendations (no -1): sklearn scores ties by averaging, and unrecommended
    # items all score 0, so they must never be needed to fill the top k.
    rec = np.stack([rng.choice(n_items, size=k, replace=False) for _ in range(n_users)])
    rows = [
        rng.choice(n_items, size=int(rng.integers(1, 9)), replace=False) for _ in range(n_users)
    ]
    truth = truth_matrix([set(r.tolist()) for r in rows], n_items)
    expected = []
    for u in range(n_users):
        y_true = np.zeros(n_items)
        y_true[rows[u]] = 1.0
        y_score = np.zeros(n_items)
        y_score[rec[u]] = np.arange(k, 0, -1)  # descending scores in recommended order
        expected.append(ndcg_score(y_true[None, :], y_score[None, :], k=k))
    assert ndcg_at_k(rec, truth, k) == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert 0.0 < ndcg_at_k(rec, truth, k) < 1.0  # not a degenerate case


# ---------------------------------------------------------------------------------------------
# The implicit library: its ranking_metrics_at_k against ours, from the same factors.
# ---------------------------------------------------------------------------------------------
def disjoint_train_test(
    rng: np.random.Generator, n_users: int, n_items: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Random binary train and test matrices sharing no pair; int32 indices as implicit wants."""
    cells = rng.random((n_users, n_items))
    train_dense = cells < 0.15
    test_dense = (cells >= 0.15) & (cells < 0.25)
    test_dense[::7] = False  # some users with nothing held out
    train = sp.csr_matrix(train_dense.astype(np.float32))
    test = sp.csr_matrix(test_dense.astype(np.float32))
    for m in (train, test):
        m.indices = m.indices.astype(np.int32)
        m.indptr = m.indptr.astype(np.int32)
    return train, test


@pytest.mark.filterwarnings("ignore:OpenBLAS is configured:RuntimeWarning")
@pytest.mark.parametrize(("seed", "k"), [(0, 5), (1, 10), (2, 3)])
def test_metrics_match_implicit(seed, k):
    pytest.importorskip("implicit")
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.evaluation import ranking_metrics_at_k
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    n_users, n_items, n_factors = 80, 60, 8
    # Continuous random factors: exact score ties are practically impossible, so both libraries
    # rank the same way whatever their tie-breaking rule.
    user_factors = rng.standard_normal((n_users, n_factors)).astype(np.float32)
    item_factors = rng.standard_normal((n_items, n_factors)).astype(np.float32)
    train, test = disjoint_train_test(rng, n_users, n_items)
    assert train.multiply(test).nnz == 0

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=n_factors, num_threads=1, random_state=0)
        assert hasattr(model, "user_factors") and hasattr(model, "item_factors")
        model.user_factors = user_factors
        model.item_factors = item_factors
        theirs = ranking_metrics_at_k(model, train, test, K=k, show_progress=False, num_threads=1)
        ours_rec, _ = top_k_batched(
            lambda start, stop: user_factors[start:stop] @ item_factors.T,
            n_users,
            n_items,
            k,
            exclude_rows=train,
        )

    assert (ours_rec >= 0).all()  # every user has more than k unbought items
    assert ndcg_at_k(ours_rec, test, k) == pytest.approx(theirs["ndcg"], abs=1e-6)
    assert map_at_k(ours_rec, test, k) == pytest.approx(theirs["map"], abs=1e-6)
    # implicit's "precision" is not ours: it is sum(hits) / sum(min(K, |held-out|)) over the
    # evaluated users (a pooled ratio with a min(K, n) denominator), while our precision@K is the
    # mean over users of hits / K. Recompute implicit's quantity from our hit matrix.
    hits = hit_matrix(ours_rec, test)[:, :k].sum(axis=1)
    n_held = np.diff(test.indptr)
    evaluated = n_held > 0
    pooled = hits[evaluated].sum() / np.minimum(n_held[evaluated], k).sum()
    assert pooled == pytest.approx(theirs["precision"], abs=1e-6)
    assert theirs["ndcg"] > 0.0 and theirs["map"] > 0.0  # the comparison is not of zeros


# ---------------------------------------------------------------------------------------------
# Properties.
# ---------------------------------------------------------------------------------------------
@st.composite
def metric_cases(draw):
    n_items = draw(st.integers(1, 12))
    n_users = draw(st.integers(1, 8))
    depth = draw(st.integers(1, 6))
    rec = np.full((n_users, depth), -1, dtype=np.int64)
    rows = []
    for u in range(n_users):
        items = draw(
            st.lists(st.integers(0, n_items - 1), max_size=min(depth, n_items), unique=True)
        )
        rec[u, : len(items)] = items
        rows.append(draw(st.sets(st.integers(0, n_items - 1), max_size=n_items)))
    return rec, truth_matrix(rows, n_items), n_items


@settings(max_examples=150, deadline=None)
@given(metric_cases())
def test_metric_properties(case):
    rec, truth, n_items = case
    depth = rec.shape[1]
    out = ranking_metrics(rec, truth, range(1, depth + 1), n_items)
    for k in range(1, depth + 1):
        values = out[k]
        for name in METRIC_NAMES:
            assert 0.0 <= values[name] <= 1.0, (name, k, values[name])
        assert values["hit_rate"] >= values["precision"]
        assert values["hit_rate"] >= values["mrr"] >= values["hit_rate"] / k - 1e-12
        assert 0.0 <= catalog_coverage_at_k(rec, n_items, k) <= 1.0
        if k > 1:
            assert values["recall"] >= out[k - 1]["recall"]
            assert values["hit_rate"] >= out[k - 1]["hit_rate"]
            assert values["coverage"] >= out[k - 1]["coverage"]
        expected = reference_metrics(rec, truth, k, n_items)
        for name in PER_USER_METRICS:
            assert values[name] == pytest.approx(expected[name], abs=1e-12)
