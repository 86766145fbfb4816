"""svd and popularity: cross-checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from growthrec.core.interactions import build_interactions
from growthrec.core.weighting import binary
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets


def test_svd_scores_are_the_projection_onto_the_exact_top_factors(small_shop) -> None:
    model = fit_model(small_shop, "svd", {"factors": 6, "n_iter": 30}, seed=0)
    x = binary(small_shop.matrix)
    _, _, vt = svds(x.astype(np.float64), k=6)  # scipy's ARPACK: an independent solver
    exact = x @ vt.T @ vt
    ours = x @ model.arrays["item_factors"] @ model.arrays["item_factors"].T
    np.testing.assert_allclose(ours, exact, atol=2e-4)
    np.testing.assert_allclose(
        np.sort(model.arrays["singular_values"]), np.sort(svds(x, k=6)[1]), rtol=1e-4
    )


def test_svd_fold_in_of_a_known_basket_equals_the_known_user(small_shop) -> None:
    model = fit_model(small_shop, "svd", {"factors": 8}, seed=0)
    user = 5
    basket = small_shop.items.external(small_shop.matrix[user].indices).tolist()
    known = recommend(model, np.array([user]), 10)
    folded = recommend_baskets(model, [basket], 10)
    np.testing.assert_array_equal(known[0], folded[0])
    np.testing.assert_allclose(known[1], folded[1], rtol=1e-5)


def test_svd_normalize_gives_cosine_scores(small_shop) -> None:
    model = fit_model(small_shop, "svd", {"factors": 8, "normalize": True}, seed=0)
    v = model.arrays["item_factors"]
    u = binary(small_shop.matrix[:3]) @ v
    cosine = (u / np.linalg.norm(u, axis=1, keepdims=True)) @ (
        v / np.linalg.norm(v, axis=1, keepdims=True)
    ).T
    _, scores = recommend(model, np.arange(3), 1, exclude_seen=False)
    np.testing.assert_allclose(scores[:, 0], cosine.max(axis=1), rtol=1e-5)
    assert np.all(cosine <= 1 + 1e-6)


@pytest.mark.parametrize("factors", [40, 41, 500])
def test_svd_factors_must_be_smaller_than_the_catalogue(small_shop, factors) -> None:
    with pytest.raises(ParameterError, match=rf"factors={factors} must be smaller.*\(40\)"):
        fit_model(small_shop, "svd", {"factors": factors})


def test_svd_is_float32_and_seeded(small_shop) -> None:
    a = fit_model(small_shop, "svd", {"factors": 8}, seed=1)
    b = fit_model(small_shop, "svd", {"factors": 8}, seed=2)
    assert a.arrays["item_factors"].dtype == np.float32
    assert a.arrays["item_factors"].shape == (40, 8)
    assert not np.array_equal(a.arrays["item_factors"], b.arrays["item_factors"])


def test_popularity_ranks_by_number_of_buyers() -> None:
    # items: a bought by 3 customers (one of them twice), b by 2, c by 1
    data = build_interactions(
        ["u1", "u1", "u2", "u3", "u2", "u3", "u4"],
        ["a", "a", "a", "a", "b", "b", "c"],
    )
    model = fit_model(data, "popularity")
    np.testing.assert_array_equal(model.arrays["item_popularity"], [3, 2, 1])
    items, scores = recommend(model, data.users.index(["u4"]), 3)
    assert data.items.external(items[0][items[0] >= 0]).tolist() == ["a", "b"]
    assert scores[0, :2].tolist() == [3.0, 2.0]
    # with count weighting repeat purchases count: a=4
    counted = fit_model(data, "popularity", weighting="count")
    np.testing.assert_array_equal(counted.arrays["item_popularity"], [4, 2, 1])


def test_popularity_is_the_same_for_everybody(small_shop) -> None:
    model = fit_model(small_shop, "popularity")
    items, _ = recommend(model, np.arange(small_shop.n_users), 3, exclude_seen=False)
    assert (items == items[0]).all()
    counts = np.asarray((small_shop.matrix > 0).sum(axis=0)).ravel()
    assert set(items[0]) == set(np.argsort(-counts, kind="stable")[:3])
    assert isinstance(model.train.matrix, sp.csr_matrix)
