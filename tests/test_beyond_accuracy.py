"""Gini of exposure, long-tail share and miscalibration: by hand, against plain Python, batched."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core.metrics import (
    MORE_BEYOND_ACCURACY,
    MetricTotals,
    gini_exposure_at_k,
    long_tail_items,
    long_tail_share_at_k,
    miscalibration_at_k,
    ranking_metrics,
)
from growthrec.errors import ParameterError


# Gini. Lists [0, 1] and [0, 2] over 4 items: exposure 2, 1, 1, 0, sorted 0, 1, 1, 2:
#   Σ (2i - n - 1) x_(i) / (n Σx) = (-3*0 - 1*1 + 1*1 + 3*2) / (4 * 4) = 6/16 = 0.375.
def test_gini_by_hand():
    assert gini_exposure_at_k(np.array([[0, 1], [0, 2]]), 2, 4) == pytest.approx(0.375)
    assert gini_exposure_at_k(np.array([[0, 1], [2, 3]]), 2, 4) == 0.0  # equal exposure
    # One item shown to everyone, nothing else: the largest value, 1 - 1/n.
    assert gini_exposure_at_k(np.array([[0, -1], [0, -1]]), 2, 4) == pytest.approx(0.75)
    assert gini_exposure_at_k(np.array([[-1, -1]]), 2, 4) == 0.0  # nothing shown


# Long tail. Interactions 50, 30, 10, 5, 5, 0 (100 in all): the head is items 0 and 1
# (50 + 30 = 80%), the tail items 2..5. Lists [0, 2, -1]: 1/2; [3, 4, 5]: 1; [-1, -1, -1]:
# no valid item, left out -> mean 0.75.
def test_long_tail_by_hand():
    counts = np.array([50, 30, 10, 5, 5, 0])
    assert long_tail_items(counts).tolist() == [False, False, True, True, True, True]
    recommended = np.array([[0, 2, -1], [3, 4, 5], [-1, -1, -1]])
    assert long_tail_share_at_k(recommended, 3, counts) == pytest.approx(0.75)
    # A head of half the interactions is item 0 alone; at k = 1 u0 has 0, u1 has 1 -> 1/2.
    assert long_tail_items(counts, 0.5).tolist() == [False] + [True] * 5
    assert long_tail_share_at_k(recommended, 1, counts, 0.5) == pytest.approx(0.5)


def test_long_tail_ties_and_nothing_bought():
    # 10, 10, 10, 10: 80% is reached at the fourth; ties go to the lower index.
    assert long_tail_items(np.array([10, 10, 10, 10])).tolist() == [False] * 4
    assert long_tail_items(np.array([10, 10, 10, 10]), 0.5).tolist() == [False, False, True, True]
    assert long_tail_items(np.array([0, 0])).tolist() == [True, True]


# Miscalibration. Categories A, B; item 0 is A, item 1 B, item 2 both (1/2 each).
#   u0 p = (1/2, 1/2), list [0, 1]: q = p, KL 0.
#   u1 p = (1, 0), list [0, 2]: q = (0.75, 0.25), q~ = 0.99 q + 0.01 p = (0.7525, 0.2475):
#       KL = ln(1 / 0.7525) = 0.284354
#   u2 has no history: left out.            -> mean (0 + 0.284354) / 2
#   u0 with list [0, -1]: q = (1, 0), q~ = (0.995, 0.005):
#       KL = 1/2 ln(0.5/0.995) + 1/2 ln(0.5/0.005) = 1.958518
ITEM_CATEGORIES = np.array([[1, 0], [0, 1], [1, 1]])
USER_CATEGORIES = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 0.0]])


def test_miscalibration_by_hand():
    assert math.log(1 / 0.7525) == pytest.approx(0.284354, abs=1e-6)
    recommended = np.array([[0, 1], [0, 2], [1, 2]])
    value = miscalibration_at_k(recommended, 2, ITEM_CATEGORIES, USER_CATEGORIES)
    assert value == pytest.approx(math.log(1 / 0.7525) / 2, abs=1e-12)
    one_sided = 0.5 * math.log(0.5 / 0.995) + 0.5 * math.log(0.5 / 0.005)
    assert one_sided == pytest.approx(1.958518, abs=1e-6)
    alone = miscalibration_at_k(np.array([[0, -1]]), 2, ITEM_CATEGORIES, USER_CATEGORIES[:1])
    assert alone == pytest.approx(one_sided, abs=1e-12)
    # Counts instead of shares give the same: rows are scaled to sum to 1.
    counts = sp.csr_matrix(USER_CATEGORIES * 4)
    assert miscalibration_at_k(recommended, 2, ITEM_CATEGORIES, counts) == pytest.approx(value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gini_exposure_at_k(np.array([[5]]), 1, 4), "item 5 is outside the 4 rows"),
        (lambda: gini_exposure_at_k(np.array([[0]]), 2, 4), "k=2 is deeper than the 1"),
        (lambda: long_tail_items(np.array([1.5, 2])), "item_counts must be a 1-D array"),
        (lambda: long_tail_items(np.array([1, 2]), 0.0), "head_share=0.0 must lie in (0, 1]"),
        (
            lambda: miscalibration_at_k(np.array([[0]]), 1, ITEM_CATEGORIES, USER_CATEGORIES),
            "user_categories has 3 rows but recommendations have 1",
        ),
        (
            lambda: miscalibration_at_k(
                np.array([[0]]), 1, ITEM_CATEGORIES, np.array([[1.0, 0.0, 0.0]])
            ),
            "user_categories has 3 categories but item_categories 2",
        ),
        (
            lambda: miscalibration_at_k(np.array([[0]]), 1, -ITEM_CATEGORIES, USER_CATEGORIES[:1]),
            "item_categories must hold finite non-negative values",
        ),
    ],
)
def test_bad_input_is_one_line(call, message):
    with pytest.raises(ParameterError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# Plain-Python references.
# ---------------------------------------------------------------------------------------------
def reference_gini(recommended, k, n_items):
    exposure = [0] * n_items
    for row in recommended:
        for item in list(row)[:k]:
            if item >= 0:
                exposure[item] += 1
    total = sum(exposure)
    if total == 0:
        return 0.0
    mean = total / n_items
    diffs = sum(abs(a - b) for a in exposure for b in exposure)
    return diffs / (2 * n_items * n_items * mean)


def reference_long_tail(recommended, k, counts, head_share):
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    total, running, head = sum(counts), 0, set()
    for i in order:
        if total == 0 or running >= head_share * total:
            break
        head.add(i)
        running += counts[i]
    shares = []
    for row in recommended:
        valid = [i for i in list(row)[:k] if i >= 0]
        if valid:
            shares.append(sum(1 for i in valid if i not in head or counts[i] == 0) / len(valid))
    return sum(shares) / len(shares) if shares else 0.0


def reference_miscalibration(recommended, k, item_cats, user_cats, alpha=0.01):
    values = []
    for row, p in zip(recommended, user_cats, strict=True):
        valid = [i for i in list(row)[:k] if i >= 0]
        p_total = sum(p)
        if not valid or p_total == 0:
            continue
        p = [x / p_total for x in p]
        q = [0.0] * len(p)
        for i in valid:
            weight = sum(item_cats[i])
            for c, x in enumerate(item_cats[i]):
                if weight:
                    q[c] += x / weight / len(valid)
        values.append(
            sum(
                pc * math.log(pc / ((1 - alpha) * qc + alpha * pc))
                for pc, qc in zip(p, q, strict=True)
                if pc > 0
            )
        )
    return sum(values) / len(values) if values else 0.0


@st.composite
def lists(draw, n_items=12):
    n_users = draw(st.integers(1, 6))
    depth = draw(st.integers(1, 5))
    rows = []
    for _ in range(n_users):
        items = draw(st.permutations(range(n_items)))[:depth]
        pad = draw(st.integers(0, depth))
        rows.append(list(items[: depth - pad]) + [-1] * pad)
    k = draw(st.integers(1, depth))
    return np.array(rows, dtype=np.int64), k


@settings(max_examples=150, deadline=None)
@given(lists(), st.lists(st.integers(0, 40), min_size=12, max_size=12), st.sampled_from([0.5, 0.8]))
def test_gini_and_long_tail_match_plain_python(batch, counts, head_share):
    recommended, k = batch
    gini = gini_exposure_at_k(recommended, k, 12)
    assert gini == pytest.approx(reference_gini(recommended.tolist(), k, 12), abs=1e-12)
    assert 0.0 <= gini <= 1 - 1 / 12 + 1e-12
    share = long_tail_share_at_k(recommended, k, np.array(counts), head_share)
    expected = reference_long_tail(recommended.tolist(), k, counts, head_share)
    assert share == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= share <= 1.0


@settings(max_examples=150, deadline=None)
@given(lists(), st.data())
def test_miscalibration_matches_plain_python(batch, data):
    recommended, k = batch
    n_cats = data.draw(st.integers(1, 4))
    cell = st.integers(0, 3)
    item_cats = data.draw(
        st.lists(st.lists(cell, min_size=n_cats, max_size=n_cats), min_size=12, max_size=12)
    )
    user_cats = data.draw(
        st.lists(
            st.lists(cell, min_size=n_cats, max_size=n_cats),
            min_size=recommended.shape[0],
            max_size=recommended.shape[0],
        )
    )
    value = miscalibration_at_k(recommended, k, np.array(item_cats), np.array(user_cats))
    expected = reference_miscalibration(recommended.tolist(), k, item_cats, user_cats)
    assert value == pytest.approx(expected, abs=1e-10)
    assert value >= 0.0


def test_metric_totals_in_batches_equal_one_call_and_the_free_functions():
    rng = np.random.default_rng(0)
    n_users, n_items, n_cats = 40, 15, 3
    recommended = np.stack([rng.permutation(n_items)[:5] for _ in range(n_users)])
    recommended[rng.random(recommended.shape) < 0.1] = -1
    recommended = -np.sort(-recommended, axis=1)  # padding at the end
    truth = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2).astype(np.float32))
    counts = rng.integers(0, 20, n_items)
    item_cats = (rng.random((n_items, n_cats)) < 0.5).astype(float)
    user_cats = sp.csr_matrix(rng.random((n_users, n_cats)) * (rng.random((n_users, 1)) < 0.9))
    options = {"item_counts": counts, "n_users": 20, "exposure": True, "head_share": 0.8}
    whole = ranking_metrics(
        recommended,
        truth,
        [3, 5],
        n_items,
        item_categories=item_cats,
        user_categories=user_cats,
        **options,
    )
    totals = MetricTotals([3, 5], n_items, item_categories=item_cats, **options)
    for start in range(0, n_users, 7):
        part = slice(start, start + 7)
        totals.add(recommended[part], truth[part], user_cats[part])
    batched = totals.result()
    evaluated = np.diff(truth.indptr) > 0
    for k in (3, 5):
        assert set(MORE_BEYOND_ACCURACY) <= set(whole[k])
        for name in MORE_BEYOND_ACCURACY:
            assert batched[k][name] == pytest.approx(whole[k][name], abs=1e-12)
        mine = recommended[evaluated]
        assert whole[k]["gini"] == pytest.approx(gini_exposure_at_k(mine, k, n_items))
        assert whole[k]["long_tail"] == pytest.approx(long_tail_share_at_k(mine, k, counts))
        assert whole[k]["miscalibration"] == pytest.approx(
            miscalibration_at_k(mine, k, item_cats, user_cats[np.flatnonzero(evaluated)])
        )


def test_the_new_keys_appear_only_when_asked():
    truth = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    out = ranking_metrics(np.array([[0, 1]]), truth, [2], 3)
    assert not set(MORE_BEYOND_ACCURACY) & set(out[2])
    with pytest.raises(ParameterError, match="give both or neither"):
        MetricTotals([2], 3, item_categories=np.eye(3)).add(np.array([[0, 1]]), truth)
