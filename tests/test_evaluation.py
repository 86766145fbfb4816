"""Offline evaluation end to end: full and sampled ranking, novelty, diversity, labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.core.interactions import Interactions, build_interactions
from growthrec.core.metrics import METRIC_NAMES
from growthrec.core.split import Split, split_leave_one_out, split_ratio
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ParameterError
from growthrec.evaluation.runs import (
    Evaluation,
    categories_from,
    evaluate_backend,
    evaluate_model,
    item_vectors_for_diversity,
    ranking_label,
)
from growthrec.pipeline.fitting import fit_model

KS = (1, 5, 10)
SVD = ("svd", {"factors": 8})
ACCURACY = ("hit_rate", "precision", "recall", "ndcg", "map", "mrr")


@pytest.fixture(scope="module")
def shop_categories(small_shop: Interactions) -> np.ndarray:
    """Category codes of the small shop's items (same generator call as the fixture)."""
    shop = generate_shop(200, 40, 0.1, seed=1)
    pairs = zip(shop.catalog_item_id.tolist(), shop.catalog_category.tolist(), strict=True)
    category_of = dict(pairs)
    return categories_from(np.array([category_of[i] for i in small_shop.items.ids.tolist()]))


@pytest.fixture(scope="module")
def loo(small_shop: Interactions) -> Split:
    return split_leave_one_out(small_shop, by="latest", seed=0)


@pytest.fixture(scope="module")
def evaluations(loo: Split, shop_categories: np.ndarray) -> dict[tuple[str, str], Evaluation]:
    vectors = item_vectors_for_diversity(loo.train, seed=0)
    out = {}
    for backend, params in (SVD, ("popularity", {})):
        for ranking, negatives in (("full", None), ("sampled", 10)):
            common = {"ks": KS, "seed": 0, "sampled_negatives": negatives}
            out[backend, ranking] = evaluate_backend(
                loo, backend, params, item_vectors=vectors, **common
            )
            out[backend, ranking + " categories"] = evaluate_backend(
                loo, backend, params, categories=shop_categories, **common
            )
    return out


def test_labels_and_dict_form(evaluations):
    full = evaluations["svd", "full"]
    sampled = evaluations["svd", "sampled"]
    assert full.ranking == "full" == ranking_label(None)
    assert sampled.ranking == "sampled (10 negatives per user)" == ranking_label(10)
    for evaluation in (full, sampled):
        d = evaluation.as_dict()
        assert list(d) == [
            "backend",
            "params",
            "recency",
            "protocol",
            "ranking",
            "seed",
            "n_users",
            "n_short_lists",
            "fit_seconds",
            "metrics",
        ]
        assert d["ranking"] == evaluation.ranking
        assert set(d["metrics"]) == {"1", "5", "10"}
        # no category column in the model's catalogue: no miscalibration
        assert list(d["metrics"]["5"]) == [
            *METRIC_NAMES,
            "novelty",
            "diversity",
            "gini",
            "long_tail",
        ]
        assert d["n_short_lists"] == 0
    assert Evaluation("b", {}, "p", 0, 1, {}, 0.0).ranking == "full"  # the default


def test_sampled_ranking_scores_at_least_full_ranking(evaluations, loo):
    # Candidates are a subset of each user's unbought items: a held-out item can only move up,
    # so every hit-based metric of sampled ranking is >= that of full ranking, user by user.
    for backend in ("svd", "popularity"):
        full = evaluations[backend, "full"].metrics
        sampled = evaluations[backend, "sampled"].metrics
        for k in KS:
            for name in ACCURACY:
                assert sampled[k][name] >= full[k][name] - 1e-12, (backend, k, name)
        assert sampled[5]["hit_rate"] > full[5]["hit_rate"] + 0.2  # and by a wide margin here
    assert evaluations["svd", "full"].n_users == loo.n_test_users


def test_novelty_and_diversity_present_and_in_range(evaluations, loo):
    n_buyers = int(np.count_nonzero(np.diff(loo.train.matrix.indptr)))
    for (_, kind), evaluation in evaluations.items():
        for k in KS:
            m = evaluation.metrics[k]
            for name in METRIC_NAMES:
                assert 0.0 <= m[name] <= 1.0
            assert 0.0 < m["novelty"] <= math.log2(n_buyers)
            upper = 1.0 if kind.endswith("categories") else 2.0
            if k == 1:
                assert m["diversity"] == 0.0  # a one-item list has no pair
            else:
                assert 0.0 < m["diversity"] <= upper


def test_popularity_is_less_novel_than_svd(evaluations):
    for k in KS:
        pop = evaluations["popularity", "full"].metrics[k]["novelty"]
        svd = evaluations["svd", "full"].metrics[k]["novelty"]
        assert pop < svd, k


def test_accuracy_does_not_depend_on_the_diversity_basis(evaluations):
    for backend in ("svd", "popularity"):
        for ranking in ("full", "sampled"):
            a = evaluations[backend, ranking].metrics
            b = evaluations[backend, ranking + " categories"].metrics
            for k in KS:
                for name in (*METRIC_NAMES, "novelty"):
                    assert a[k][name] == b[k][name]


def test_more_negatives_than_items_is_full_ranking(loo):
    # 40 items: with 100 negatives every user gets all unbought items, i.e. full ranking.
    full = evaluate_backend(loo, *SVD, ks=KS, seed=0)
    everything = evaluate_backend(loo, *SVD, ks=KS, seed=0, sampled_negatives=100)
    assert everything.ranking == "sampled (100 negatives per user)"
    for k in KS:
        for name in full.metrics[k]:
            assert everything.metrics[k][name] == pytest.approx(full.metrics[k][name], abs=1e-12)


def test_sampled_evaluation_is_deterministic_and_seeded(small_shop):
    split = split_ratio(small_shop, test_ratio=0.3, seed=2)
    model = fit_model(split.train, "popularity", seed=0)
    first = evaluate_model(model, split.test, KS, sampled_negatives=5, seed=3)
    assert first == evaluate_model(model, split.test, KS, sampled_negatives=5, seed=3)
    assert first != evaluate_model(model, split.test, KS, sampled_negatives=5, seed=4)
    threaded = evaluate_model(model, split.test, KS, sampled_negatives=5, seed=3, n_threads=2)
    assert threaded == first


def test_evaluate_model_rejects_bad_sampled_negatives(small_shop, loo):
    model = fit_model(loo.train, "popularity")
    for bad in (0, -3, 2.5):
        with pytest.raises(ParameterError, match="sampled_negatives"):
            evaluate_model(model, loo.test, KS, sampled_negatives=bad)


# ---------------------------------------------------------------------------------------------
# A hand-made shop where the sampled result is known exactly, whatever negatives are drawn.
#
# Items i0..i5. Fillers f0..f5: f_j bought i0..i_j, so i_m has 6 - m filler buyers. Customers A
# and B bought i0 in train, so the buyer counts are i0: 8, i1: 5, i2: 4, i3: 3, i4: 2, i5: 1;
# 8 customers bought something. A holds out i1, B holds out i5. Popularity ranks by buyers.
#
# Full ranking of A's and B's unbought items: i1 i2 i3 i4 i5.
#   A's i1 is 1st; B's i5 is 5th.
#   k=1: hit 1/2, mrr 1/2, ndcg 1/2.   k=5: hit 1, mrr (1 + 1/5)/2 = 0.6,
#   ndcg (1 + 1/log2(6))/2, precision (1/5 + 1/5)/2 = 0.2.
#   novelty k=1: both get i1 -> log2(8/5); k=5: mean of log2(8/c), c = 5, 4, 3, 2, 1.
# Sampled, 2 negatives from i1..i4 (B) or i2..i5 (A): 3 candidates each.
#   A's i1 beats every other item: 1st. B's i5 loses to every other item: 3rd (last).
#   k=1: hit 1/2, mrr 1/2.   k=3 and k=5: hit 1, mrr (1 + 1/3)/2 = 2/3,
#   ndcg (1 + 1/log2(4))/2 = 3/4; precision@5 (1/5 + 1/5)/2 = 0.2, @3 (1/3 + 1/3)/2 = 1/3.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hand_split() -> Split:
    users, items = [], []
    for j in range(6):
        for m in range(j + 1):
            users.append(f"f{j}")
            items.append(f"i{m}")
    users += ["A", "B"]
    items += ["i0", "i0"]
    train = build_interactions(np.array(users), np.array(items))
    a, b = train.users.index(["A", "B"])
    i1, i5 = train.items.index(["i1", "i5"])
    test = sp.csr_matrix(
        (np.ones(2, np.float32), ([a, b], [i1, i5])), shape=(train.n_users, train.n_items)
    )
    return Split(train=train, test=test, protocol="hand", n_train_only=6)


def test_hand_case_buyer_counts(hand_split):
    counts = np.bincount(hand_split.train.matrix.indices, minlength=6)
    order = hand_split.train.items.index([f"i{m}" for m in range(6)])
    np.testing.assert_array_equal(counts[order], [8, 5, 4, 3, 2, 1])


def test_hand_case_full_ranking(hand_split):
    e = evaluate_backend(hand_split, "popularity", ks=[1, 5], seed=0)
    assert e.ranking == "full" and e.n_users == 2
    assert e.metrics[1]["hit_rate"] == pytest.approx(0.5)
    assert e.metrics[1]["mrr"] == pytest.approx(0.5)
    assert e.metrics[1]["ndcg"] == pytest.approx(0.5)
    assert e.metrics[5]["hit_rate"] == pytest.approx(1.0)
    assert e.metrics[5]["mrr"] == pytest.approx(0.6)
    assert e.metrics[5]["ndcg"] == pytest.approx((1 + 1 / math.log2(6)) / 2)
    assert e.metrics[5]["precision"] == pytest.approx(0.2)
    assert e.metrics[1]["novelty"] == pytest.approx(math.log2(8 / 5))
    bits = [math.log2(8 / c) for c in (5, 4, 3, 2, 1)]
    assert e.metrics[5]["novelty"] == pytest.approx(sum(bits) / 5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_hand_case_sampled_ranking(hand_split, seed):
    e = evaluate_backend(hand_split, "popularity", ks=[1, 3, 5], seed=seed, sampled_negatives=2)
    assert e.ranking == "sampled (2 negatives per user)"
    assert e.metrics[1]["hit_rate"] == pytest.approx(0.5)
    assert e.metrics[1]["mrr"] == pytest.approx(0.5)
    for k in (3, 5):
        assert e.metrics[k]["hit_rate"] == pytest.approx(1.0)
        assert e.metrics[k]["mrr"] == pytest.approx(2 / 3)
        assert e.metrics[k]["ndcg"] == pytest.approx(0.75)
        assert e.metrics[k]["recall"] == pytest.approx(1.0)
    assert e.metrics[3]["precision"] == pytest.approx(1 / 3)
    assert e.metrics[5]["precision"] == pytest.approx(0.2)


# ---------------------------------------------------------------------------------------------
# Item vectors and category codes.
# ---------------------------------------------------------------------------------------------
def test_item_vectors_for_diversity(small_shop):
    vectors = item_vectors_for_diversity(small_shop, seed=0)
    assert vectors.shape == (small_shop.n_items, 32)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_array_equal(vectors, item_vectors_for_diversity(small_shop, seed=0))
    # Clamped below min(n_users, n_items) = 40.
    assert item_vectors_for_diversity(small_shop, dims=500).shape == (small_shop.n_items, 39)
    assert item_vectors_for_diversity(small_shop, dims=3).shape == (small_shop.n_items, 3)


def test_item_vectors_norms_follow_singular_values(small_shop):
    # V scaled by the singular values: the squared column norms are the squared singular values,
    # in decreasing order.
    vectors = item_vectors_for_diversity(small_shop, dims=5).astype(np.float64)
    power = (vectors**2).sum(axis=0)
    assert (np.diff(power) <= 1e-6 * power[0]).all()
    binary = (small_shop.matrix != 0).astype(np.float64).toarray()
    top = np.linalg.svd(binary, compute_uv=False)[:5]
    np.testing.assert_allclose(np.sqrt(power), top, rtol=1e-3)


def test_item_vectors_reject_bad_arguments(small_shop):
    with pytest.raises(ParameterError, match="dims=0"):
        item_vectors_for_diversity(small_shop, dims=0)
    tiny = build_interactions(np.array(["u", "u"]), np.array(["a", "b"]))
    with pytest.raises(ParameterError, match="at least 2 customers and 2 items"):
        item_vectors_for_diversity(tiny)


def test_categories_from():
    codes = categories_from(np.array(["toys", "", "books", "toys", ""]))
    # Sorted distinct values "", "books", "toys": the empty string is one category of its own.
    np.testing.assert_array_equal(codes, [2, 0, 1, 2, 0])
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(categories_from(np.array([], dtype=str)), [])
    with pytest.raises(ParameterError, match="1-D"):
        categories_from(np.array([["a"]]))
