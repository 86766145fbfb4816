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
from growthrec.core.metrics import BEYOND_ACCURACY, intra_list_diversity_at_k, novelty_at_k
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


# =============================================================================================
# Beyond accuracy: novelty and intra-list diversity.
# =============================================================================================
# Six users, five items, lists 3 deep.
#
#   user  list           novelty info per item            categories [0, 0, 1, 1, 2]
#   b0    [0, 1, 2]      items' info 0, 1, 2 -> 1          pairs 01:0 02:1 12:1 -> 2/3
#   b1    [3, 4, -1]     3, 3          -> 3                pair  34:1          -> 1
#   b2    [-1, -1, -1]   no item: left out of both means
#   b3    [2, 0, 4]      2, 0, 3       -> 5/3              pairs 20:1 24:1 04:1 -> 1
#   b4    [1, -1, -1]    1             -> 1                one item: left out of diversity
#   b5    [0, 3, 1]      0, 3, 1       -> 4/3              pairs 03:1 01:0 31:1 -> 2/3
#
# Novelty: n_users = 8, item_counts = [8, 4, 2, 1, 0]; info = -log2(max(c, 1) / 8)
#   = [0, 1, 2, 3, 3] (item 4, never bought, counts as bought once).
#   k=3: (1 + 3 + 5/3 + 1 + 4/3) / 5 = 8 / 5 = 1.6
#   k=1: first items 0, 3, 2, 1, 0 -> (0 + 3 + 2 + 1 + 0) / 5 = 1.2
# Diversity with categories:
#   k=3: (2/3 + 1 + 1 + 2/3) / 4 = 5/6
#   k=2: pairs 01:0, 34:1, 20:1, 03:1 (b4 has one item) -> 3/4
# Diversity with vectors: item 0 (1, 0), 1 (2, 0) same direction, 2 (0, 3) orthogonal,
#   3 (-1, 0) opposite, 4 (0, 0) zero: distance 1 - cos = 0, 1, 2, and 1 for the zero vector.
#   k=3: b0 (0 + 1 + 1)/3 = 2/3; b1 d(3,4) = 1; b3 (1 + 1 + 1)/3 = 1;
#        b5 d(0,3) = 2, d(0,1) = 0, d(3,1) = 2 -> 4/3;   mean (2/3 + 1 + 1 + 4/3) / 4 = 1
#   k=2: b0 d(0,1) = 0; b1 d(3,4) = 1; b3 d(2,0) = 1; b5 d(0,3) = 2 -> 4/4 = 1
# ---------------------------------------------------------------------------------------------
BEYOND_RECOMMENDED = np.array(
    [[0, 1, 2], [3, 4, -1], [-1, -1, -1], [2, 0, 4], [1, -1, -1], [0, 3, 1]], dtype=np.int64
)
BEYOND_COUNTS = np.array([8, 4, 2, 1, 0])
BEYOND_CATEGORIES = np.array([0, 0, 1, 1, 2])
BEYOND_VECTORS = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize(("k", "expected"), [(3, 1.6), (2, (0.5 + 3 + 1 + 1 + 1.5) / 5), (1, 1.2)])
def test_novelty_hand_case(k, expected):
    # k=2: b0 (0 + 1)/2, b1 (3 + 3)/2, b3 (2 + 0)/2, b4 1, b5 (0 + 3)/2.
    value = novelty_at_k(BEYOND_RECOMMENDED, k, BEYOND_COUNTS, 8)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("k", "expected"), [(3, 5 / 6), (2, 3 / 4), (1, 0.0)])
def test_diversity_with_categories_hand_case(k, expected):
    # k=1: no list has two items, so no user counts and the mean of nothing is 0.
    value = intra_list_diversity_at_k(BEYOND_RECOMMENDED, k, categories=BEYOND_CATEGORIES)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("k", "expected"), [(3, 1.0), (2, 1.0)])
def test_diversity_with_vectors_hand_case(k, expected):
    value = intra_list_diversity_at_k(BEYOND_RECOMMENDED, k, item_vectors=BEYOND_VECTORS)
    assert value == pytest.approx(expected, abs=1e-12)


def test_diversity_with_vectors_per_user_hand_values():
    # One user at a time, the per-list values of the comment above.
    for row, expected in [(0, 2 / 3), (1, 1.0), (3, 1.0), (5, 4 / 3)]:
        one = BEYOND_RECOMMENDED[row : row + 1]
        got = intra_list_diversity_at_k(one, 3, item_vectors=BEYOND_VECTORS)
        assert got == pytest.approx(expected, abs=1e-12), row


def test_diversity_vectors_float32_and_scale_do_not_matter():
    scaled = (BEYOND_VECTORS * np.array([[3.0], [0.5], [7.0], [2.0], [1.0]])).astype(np.float32)
    assert intra_list_diversity_at_k(BEYOND_RECOMMENDED, 3, item_vectors=scaled) == pytest.approx(
        1.0, abs=1e-6
    )


def test_ranking_metrics_adds_novelty_and_diversity_on_evaluated_users():
    # Truth only for b0, b1, b2 and b5: b3 and b4 are not evaluated, b2 has an empty list.
    truth = truth_matrix([{2}, {0}, {1}, set(), set(), {3}], 5)
    out = ranking_metrics(
        BEYOND_RECOMMENDED,
        truth,
        [2, 3],
        5,
        item_counts=BEYOND_COUNTS,
        n_users=8,
        categories=BEYOND_CATEGORIES,
    )
    assert list(out[3]) == [*METRIC_NAMES, "novelty", "diversity"]
    assert BEYOND_ACCURACY == ("novelty", "diversity")
    # k=3, evaluated users b0, b1, b5 (b2 has no item): novelty (1 + 3 + 4/3) / 3 = 16/9,
    # diversity (2/3 + 1 + 2/3) / 3 = 7/9.
    assert out[3]["novelty"] == pytest.approx(16 / 9, abs=1e-12)
    assert out[3]["diversity"] == pytest.approx(7 / 9, abs=1e-12)
    # k=2: novelty (0.5 + 3 + 1.5) / 3 = 5/3; diversity pairs 01:0, 34:1, 03:1 -> 2/3.
    assert out[2]["novelty"] == pytest.approx(5 / 3, abs=1e-12)
    assert out[2]["diversity"] == pytest.approx(2 / 3, abs=1e-12)
    with_vectors = ranking_metrics(BEYOND_RECOMMENDED, truth, [3], 5, item_vectors=BEYOND_VECTORS)[
        3
    ]
    assert list(with_vectors) == [*METRIC_NAMES, "diversity"]
    # (2/3 + 1 + 4/3) / 3 = 1
    assert with_vectors["diversity"] == pytest.approx(1.0, abs=1e-12)


def test_ranking_metrics_without_extras_is_unchanged():
    out = ranking_metrics(HAND_RECOMMENDED, HAND_TRUTH, [3, 4], HAND_N_ITEMS)
    for k in (3, 4):
        assert list(out[k]) == list(METRIC_NAMES)


def test_beyond_accuracy_argument_errors():
    truth = truth_matrix([{2}] * 6, 5)
    with pytest.raises(ParameterError, match="both item_counts and n_users"):
        ranking_metrics(BEYOND_RECOMMENDED, truth, [3], 5, item_counts=BEYOND_COUNTS)
    with pytest.raises(ParameterError, match="item_counts has shape"):
        ranking_metrics(BEYOND_RECOMMENDED, truth, [3], 5, item_counts=np.ones(4, int), n_users=8)
    with pytest.raises(ParameterError, match="exactly one of categories or item_vectors"):
        intra_list_diversity_at_k(BEYOND_RECOMMENDED, 3)
    with pytest.raises(ParameterError, match="exactly one of categories or item_vectors"):
        intra_list_diversity_at_k(
            BEYOND_RECOMMENDED, 3, categories=BEYOND_CATEGORIES, item_vectors=BEYOND_VECTORS
        )
    with pytest.raises(ParameterError, match="n_users=0"):
        novelty_at_k(BEYOND_RECOMMENDED, 3, BEYOND_COUNTS, 0)
    with pytest.raises(ParameterError, match=r"item_counts must lie in \[0, n_users=4\]"):
        novelty_at_k(BEYOND_RECOMMENDED, 3, BEYOND_COUNTS, 4)
    with pytest.raises(ParameterError, match="integer array"):
        novelty_at_k(BEYOND_RECOMMENDED, 3, BEYOND_COUNTS.astype(float), 8)
    with pytest.raises(ParameterError, match="outside the 4 rows of item_counts"):
        novelty_at_k(BEYOND_RECOMMENDED, 3, BEYOND_COUNTS[:4], 8)
    with pytest.raises(ParameterError, match="outside the 3 rows of categories"):
        intra_list_diversity_at_k(BEYOND_RECOMMENDED, 3, categories=BEYOND_CATEGORIES[:3])
    with pytest.raises(ParameterError, match="NaN or infinite"):
        intra_list_diversity_at_k(BEYOND_RECOMMENDED, 3, item_vectors=np.full((5, 2), np.nan))
    with pytest.raises(ParameterError, match="1-D integer array"):
        intra_list_diversity_at_k(BEYOND_RECOMMENDED, 3, categories=BEYOND_CATEGORIES * 1.0)
    for k in (0, 4):
        with pytest.raises(ParameterError, match=f"k={k}"):
            novelty_at_k(BEYOND_RECOMMENDED, k, BEYOND_COUNTS, 8)
        with pytest.raises(ParameterError, match=f"k={k}"):
            intra_list_diversity_at_k(BEYOND_RECOMMENDED, k, categories=BEYOND_CATEGORIES)


def test_beyond_accuracy_without_users_is_zero():
    empty = np.full((3, 4), -1)
    assert novelty_at_k(empty, 4, np.ones(5, int), 3) == 0.0
    assert intra_list_diversity_at_k(empty, 4, categories=np.zeros(5, int)) == 0.0
    assert novelty_at_k(np.empty((0, 2), int), 2, np.ones(5, int), 3) == 0.0


# ---------------------------------------------------------------------------------------------
# Plain-Python references for novelty and diversity, one user and one pair at a time.
# ---------------------------------------------------------------------------------------------
def reference_novelty(recommended, k, item_counts, n_users) -> float:
    per_user = []
    for row in recommended:
        items = [int(i) for i in row[:k] if i >= 0]
        if items:
            bits = [-math.log2(max(int(item_counts[i]), 1) / n_users) for i in items]
            per_user.append(sum(bits) / len(bits))
    return sum(per_user) / len(per_user) if per_user else 0.0


def reference_diversity(recommended, k, distance) -> float:
    per_user = []
    for row in recommended:
        items = [int(i) for i in row[:k] if i >= 0]
        pairs = [(a, b) for x, a in enumerate(items) for b in items[x + 1 :]]
        if pairs:
            per_user.append(sum(distance(a, b) for a, b in pairs) / len(pairs))
    return sum(per_user) / len(per_user) if per_user else 0.0


def category_distance(categories):
    return lambda a, b: 0.0 if categories[a] == categories[b] else 1.0


def cosine_distance(vectors):
    def distance(a, b):
        x, y = vectors[a], vectors[b]
        nx, ny = math.sqrt(float(x @ x)), math.sqrt(float(y @ y))
        if nx == 0.0 or ny == 0.0:
            return 1.0
        return 1.0 - float(x @ y) / (nx * ny)

    return distance


def random_beyond_case(rng: np.random.Generator, n_users: int, n_items: int, depth: int):
    rec, _ = random_case(rng, n_users, n_items, depth)
    n_buyers = 50
    counts = rng.integers(0, n_buyers + 1, size=n_items)
    counts[rng.random(n_items) < 0.2] = 0
    categories = rng.integers(0, 4, size=n_items)
    vectors = rng.standard_normal((n_items, 6))
    vectors[rng.random(n_items) < 0.1] = 0.0
    vectors[1] = -vectors[0] * 2.5  # an opposite pair
    return rec, counts, n_buyers, categories, vectors


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_beyond_accuracy_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    rec, counts, n_buyers, categories, vectors = random_beyond_case(rng, 150, 30, 10)
    for k in (1, 2, 5, 10):
        assert novelty_at_k(rec, k, counts, n_buyers) == pytest.approx(
            reference_novelty(rec, k, counts, n_buyers), rel=1e-12, abs=1e-12
        )
        assert intra_list_diversity_at_k(rec, k, categories=categories) == pytest.approx(
            reference_diversity(rec, k, category_distance(categories)), rel=1e-12, abs=1e-12
        )
        assert intra_list_diversity_at_k(rec, k, item_vectors=vectors) == pytest.approx(
            reference_diversity(rec, k, cosine_distance(vectors)), rel=1e-12, abs=1e-12
        )


def test_diversity_in_small_batches_equals_one_batch(monkeypatch):
    import growthrec.core.metrics as metrics_module

    rng = np.random.default_rng(11)
    rec, _, _, categories, vectors = random_beyond_case(rng, 97, 30, 6)
    whole_c = intra_list_diversity_at_k(rec, 6, categories=categories)
    whole_v = intra_list_diversity_at_k(rec, 6, item_vectors=vectors)
    monkeypatch.setattr(metrics_module, "_DIVERSITY_BATCH_BYTES", 1)  # one user per batch
    assert intra_list_diversity_at_k(rec, 6, categories=categories) == pytest.approx(whole_c)
    assert intra_list_diversity_at_k(rec, 6, item_vectors=vectors) == pytest.approx(whole_v)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diversity_matches_sklearn_cosine_distances(seed):
    from sklearn.metrics.pairwise import cosine_distances

    rng = np.random.default_rng(seed)
    rec, _, _, _, vectors = random_beyond_case(rng, 80, 25, 8)
    k = 8
    expected = []
    for row in rec:
        items = row[:k][row[:k] >= 0]
        if items.size >= 2:
            d = cosine_distances(vectors[items])
            expected.append(d[np.triu_indices(items.size, 1)].mean())
    got = intra_list_diversity_at_k(rec, k, item_vectors=vectors)
    assert got == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert 0.5 < got < 1.5  # random directions: near 1, not a degenerate case


# ---------------------------------------------------------------------------------------------
# Properties of novelty and diversity.
# ---------------------------------------------------------------------------------------------
@st.composite
def beyond_cases(draw):
    rec, _, n_items = draw(metric_cases())
    n_users = draw(st.integers(1, 20))
    counts = np.array(draw(st.lists(st.integers(0, n_users), min_size=n_items, max_size=n_items)))
    categories = np.array(draw(st.lists(st.integers(-2, 3), min_size=n_items, max_size=n_items)))
    vectors = np.array(
        draw(
            st.lists(
                st.lists(st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), min_size=3, max_size=3),
                min_size=n_items,
                max_size=n_items,
            )
        )
    )
    return rec, n_users, counts, categories, vectors


@settings(max_examples=150, deadline=None)
@given(beyond_cases())
def test_beyond_accuracy_properties(case):
    rec, n_users, counts, categories, vectors = case
    for k in range(1, rec.shape[1] + 1):
        novelty = novelty_at_k(rec, k, counts, n_users)
        assert 0.0 <= novelty <= math.log2(n_users) + 1e-12
        by_category = intra_list_diversity_at_k(rec, k, categories=categories)
        assert 0.0 <= by_category <= 1.0
        by_vector = intra_list_diversity_at_k(rec, k, item_vectors=vectors)
        assert 0.0 <= by_vector <= 2.0
        assert novelty == pytest.approx(reference_novelty(rec, k, counts, n_users), abs=1e-12)
        assert by_category == pytest.approx(
            reference_diversity(rec, k, category_distance(categories)), abs=1e-12
        )
        assert by_vector == pytest.approx(
            reference_diversity(rec, k, cosine_distance(vectors)), abs=1e-9
        )


@settings(max_examples=60, deadline=None)
@given(beyond_cases())
def test_single_category_means_zero_and_distinct_categories_mean_one(case):
    rec, _, _, _, _ = case
    n_items = int(rec.max(initial=0)) + 1
    for k in range(1, rec.shape[1] + 1):
        n_valid = (rec[:, :k] >= 0).sum(axis=1)
        some_pair = bool((n_valid >= 2).any())
        same = intra_list_diversity_at_k(rec, k, categories=np.zeros(n_items, int))
        distinct = intra_list_diversity_at_k(rec, k, categories=np.arange(n_items))
        assert same == 0.0
        assert distinct == (1.0 if some_pair else 0.0)
