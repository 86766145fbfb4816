"""als and bpr: the wrapping of the ``implicit`` library adds nothing wrong.

Each backend is compared with ``implicit`` called directly on the same matrix with the same
parameters and seed: identical factors and top-10 lists. The fold-ins are checked against
``implicit``'s own ``recalculate_user`` (ALS) and an independent least-squares solve (BPR).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends.als import bm25_rows, bm25_statistics
from growthrec.backends.registry import available_backends, get_backend
from growthrec.core.interactions import build_interactions
from growthrec.core.weighting import binary, count
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets, similar_items

implicit_als = pytest.importorskip("implicit.cpu.als")
implicit_bpr = pytest.importorskip("implicit.cpu.bpr")
nearest_neighbours = pytest.importorskip("implicit.nearest_neighbours")


@pytest.fixture(scope="module")
def shop():
    """A shop big enough for distinct scores: 600 customers x 120 products."""
    data = generate_shop(600, 120, 0.05, seed=4)
    return build_interactions(data.user_id, data.item_id, data.quantity, data.timestamp)


def _random_state(seed: int) -> int:
    """The ``random_state`` the backends hand ``implicit`` for ``fit_model(..., seed=seed)``."""
    return int(np.random.default_rng(seed).integers(2**31 - 1))


def _confidence(weighted: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    out = weighted.astype(np.float32, copy=True)
    out.data = np.float32(alpha) * out.data
    return out


def _direct_als(matrix: sp.csr_matrix, seed: int, **params) -> object:
    """implicit's ALS called as a user would: the (weighted) matrix and the same parameters."""
    with threadpool_limits(1, "blas"):
        model = implicit_als.AlternatingLeastSquares(random_state=_random_state(seed), **params)
        model.fit(matrix, show_progress=False)
    return model


def _implicit_top10(model, train: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    users = np.arange(train.shape[0])
    return model.recommend(users, train, N=10, filter_already_liked_items=True)


def test_both_backends_are_registered() -> None:
    assert {"als", "bpr"} <= set(available_backends())


@pytest.mark.parametrize(
    ("params", "weighted"),
    [
        ({}, lambda x: x),
        (
            {"weighting": "bm25", "alpha": 5.0, "regularization": 0.1},
            lambda x: nearest_neighbours.bm25_weight(x, K1=100, B=0.8).tocsr(),
        ),
    ],
    ids=["defaults", "bm25"],
)
def test_als_equals_implicit_called_directly(shop, params, weighted) -> None:
    params = {"factors": 16, "iterations": 5, **params}
    model = fit_model(shop, "als", params, seed=11)
    direct = _direct_als(
        weighted(binary(shop.matrix)).astype(np.float32),
        11,
        factors=16,
        iterations=5,
        alpha=params.get("alpha", 1.0),
        regularization=params.get("regularization", 0.01),
        num_threads=2,
    )
    np.testing.assert_array_equal(model.arrays["user_factors"], direct.user_factors)
    np.testing.assert_array_equal(model.arrays["item_factors"], direct.item_factors)
    ours = recommend(model, np.arange(shop.n_users), 10)
    theirs = _implicit_top10(direct, shop.matrix)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-4, atol=1e-6)


def test_als_defaults_give_bit_identical_factors_to_implicit(shop) -> None:
    model = fit_model(shop, "als", {"iterations": 3}, seed=5)
    direct = _direct_als(binary(shop.matrix), 5, factors=64, iterations=3)
    np.testing.assert_array_equal(model.arrays["user_factors"], direct.user_factors)
    np.testing.assert_array_equal(model.arrays["item_factors"], direct.item_factors)
    assert model.arrays["item_factors"].dtype == np.float32


def test_als_threads_do_not_change_the_model(shop) -> None:
    one = fit_model(shop, "als", {"factors": 16, "iterations": 4, "threads": 1}, seed=2)
    two = fit_model(shop, "als", {"factors": 16, "iterations": 4, "threads": 2}, seed=2)
    for name in one.arrays:
        np.testing.assert_array_equal(one.arrays[name], two.arrays[name])


@pytest.mark.parametrize("weighting", [binary, count])
def test_bm25_equals_implicit_bm25_weight_to_the_bit(shop, weighting) -> None:
    x = weighting(shop.matrix)
    stats = bm25_statistics(x)
    ours = bm25_rows(x, stats["bm25_idf"], stats["bm25_average_length"][0], 100.0, 0.8)
    theirs = nearest_neighbours.bm25_weight(x, K1=100, B=0.8).tocsr()
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_array_equal(ours.data, theirs.data.astype(np.float32))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"regularization": 10.0, "alpha": 20.0},
        {"weighting": "bm25", "alpha": 3.0, "bm25_b": 0.5},
        {"weighting": "log1p", "alpha": 4.0},
    ],
    ids=["defaults", "strong-regularization", "bm25", "log1p"],
)
def test_als_fold_in_equals_implicit_recalculate_user(shop, params) -> None:
    params = {"factors": 16, "iterations": 5, **params}
    model = fit_model(shop, "als", params, seed=1, weighting="count")
    users = np.arange(40)
    rows = count(shop.matrix[users])
    scores = get_backend("als").score(
        model.arrays, model.params, rows, np.full(users.size, -1, dtype=np.int64)
    )
    # implicit's own solve, on the confidences the backend computes for the same rows
    weighting = params.get("weighting", "none")
    if weighting == "bm25":
        stats = bm25_statistics(count(shop.matrix))
        rows = bm25_rows(rows, stats["bm25_idf"], stats["bm25_average_length"][0], 100.0, 0.5)
    elif weighting == "log1p":
        rows = rows.copy()
        rows.data = np.log1p(rows.data)
    direct = implicit_als.AlternatingLeastSquares(
        factors=16, regularization=params.get("regularization", 0.01), alpha=1.0
    )
    direct.user_factors = model.arrays["user_factors"]
    direct.item_factors = model.arrays["item_factors"]
    with threadpool_limits(1, "blas"):
        expected = direct.recalculate_user(users, _confidence(rows, params.get("alpha", 1.0)))
    np.testing.assert_allclose(
        scores, expected @ direct.item_factors.T, rtol=1e-4, atol=1e-4 * np.abs(scores).max()
    )


def test_als_basket_recommendations_equal_implicit_recalculated_users(shop) -> None:
    model = fit_model(shop, "als", {"factors": 16, "alpha": 10.0}, seed=3)
    users = np.arange(30)
    baskets = [shop.items.external(shop.matrix[u].indices).tolist() for u in users]
    ours = recommend_baskets(model, baskets, 10)
    direct = implicit_als.AlternatingLeastSquares(factors=16, regularization=0.01, alpha=1.0)
    direct.user_factors = model.arrays["user_factors"]
    direct.item_factors = model.arrays["item_factors"]
    rows = _confidence(binary(shop.matrix[users]), 10.0)
    with threadpool_limits(1, "blas"):
        theirs = direct.recommend(users, rows, N=10, recalculate_user=True)
    np.testing.assert_array_equal(ours[0], theirs[0])


def test_als_empty_basket_scores_zero(shop) -> None:
    model = fit_model(shop, "als", {"factors": 8, "iterations": 2}, seed=0)
    empty = sp.csr_matrix((1, shop.n_items), dtype=np.float32)
    scores = get_backend("als").score(model.arrays, model.params, empty, np.array([-1]))
    assert not scores.any()


def _direct_bpr(matrix: sp.csr_matrix, seed: int, **params) -> object:
    with threadpool_limits(1, "blas"):
        model = implicit_bpr.BayesianPersonalizedRanking(
            random_state=_random_state(seed), num_threads=1, **params
        )
        model.fit(matrix, show_progress=False)
    return model


def test_bpr_equals_implicit_called_directly(shop) -> None:
    params = {"factors": 16, "iterations": 30, "learning_rate": 0.05}
    model = fit_model(shop, "bpr", params, seed=9)
    direct = _direct_bpr(binary(shop.matrix), 9, **params)
    np.testing.assert_array_equal(model.arrays["user_factors"], direct.user_factors)
    np.testing.assert_array_equal(model.arrays["item_factors"], direct.item_factors)
    # implicit's extra column: 1 for users, the item bias for items
    assert np.all(model.arrays["user_factors"][:, -1] == 1)
    assert model.arrays["item_factors"].shape == (shop.n_items, 17)
    ours = recommend(model, np.arange(shop.n_users), 10)
    theirs = _implicit_top10(direct, shop.matrix)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)


def test_bpr_single_thread_is_reproducible(shop) -> None:
    params = {"factors": 8, "iterations": 10}
    first, second = fit_model(shop, "bpr", params, seed=4), fit_model(shop, "bpr", params, seed=4)
    other = fit_model(shop, "bpr", params, seed=5)
    for name in first.arrays:
        np.testing.assert_array_equal(first.arrays[name], second.arrays[name])
    assert not np.array_equal(first.arrays["item_factors"], other.arrays["item_factors"])


def test_bpr_fold_in_is_the_ridge_projection_of_the_basket(shop) -> None:
    model = fit_model(shop, "bpr", {"factors": 8, "iterations": 10}, seed=0)
    y = model.arrays["item_factors"].astype(np.float64)
    rows = binary(shop.matrix[:5])
    scores = get_backend("bpr").score(model.arrays, model.params, rows, np.full(5, -1))
    # independently: least squares on the stacked system [Y; sqrt(λ) I] x = [p; 0]
    lam = 10.0 * np.trace(y.T @ y) / y.shape[1]
    stacked = np.vstack([y, np.sqrt(lam) * np.eye(y.shape[1])])
    targets = np.hstack([rows.toarray(), np.zeros((5, y.shape[1]))])
    x = np.linalg.lstsq(stacked, targets.T, rcond=None)[0].T
    np.testing.assert_allclose(scores, x @ y.T, rtol=1e-4, atol=1e-5 * np.abs(scores).max())


@pytest.mark.parametrize("backend", ["als", "bpr"])
def test_similar_items_equal_implicit_similar_items(shop, backend) -> None:
    params = {"factors": 16, "iterations": 5}
    model = fit_model(shop, backend, params, seed=0)
    items = np.arange(20)
    ours, _ = similar_items(model, items, 10)
    library = {
        "als": implicit_als.AlternatingLeastSquares,
        "bpr": implicit_bpr.BayesianPersonalizedRanking,
    }
    direct = library[backend](factors=16)
    direct.item_factors = model.arrays["item_factors"]
    direct.user_factors = model.arrays["user_factors"]
    theirs, _ = direct.similar_items(items, N=11)
    for item in items:
        np.testing.assert_array_equal(ours[item], [i for i in theirs[item] if i != item][:10])


@pytest.mark.parametrize("backend", ["als", "bpr"])
def test_fit_without_implicit_says_how_to_install_it(shop, backend, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "implicit" or m.startswith("implicit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "implicit", None)  # import implicit -> ImportError
    assert backend in available_backends()
    with pytest.raises(ParameterError, match=r'pip install "growthrec\[als\]"'):
        fit_model(shop, backend, {"factors": 4})


def test_als_rejects_an_unknown_weighting(shop) -> None:
    with pytest.raises(ParameterError, match="weighting='tfidf'; choose one of none, log1p"):
        fit_model(shop, "als", {"weighting": "tfidf"})
