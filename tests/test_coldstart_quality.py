"""Cold start that is fast and sound: the iterative ridge map against dense numpy, cold items
inside baskets, warm items kept as learned, and the content backend's weighting."""

from __future__ import annotations

import attrs
import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from growthrec.backends.registry import get_backend
from growthrec.core.coldstart import ridge_map
from growthrec.core.features import fit_features
from growthrec.core.interactions import build_interactions
from growthrec.data.features import with_cold_items
from growthrec.data.synthetic import generate_shop
from growthrec.pipeline.catalog import add_items
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend_baskets


def _dense_ridge(dense: np.ndarray, factors: np.ndarray, lam: float, weight: np.ndarray):
    s = np.diag(weight)
    gram = dense.T @ s @ dense + lam * np.eye(dense.shape[1])
    return np.linalg.solve(gram, dense.T @ s @ factors)


@pytest.mark.parametrize(("n_rows", "n_features"), [(1500, 1200), (1100, 1400)])
def test_iterative_ridge_map_equals_dense_numpy(n_rows, n_features):
    """Above the dense limit both sides are large: the conjugate-gradient solve gives the
    dense solution to float32 precision, with common and rare features and row weights."""
    rng = np.random.default_rng(4)
    # Zipf-like columns: a few features on most rows, most on a handful (genres and words).
    popularity = 1.0 / np.arange(1, n_features + 1) ** 0.8
    dense = (rng.random((n_rows, n_features)) < 0.02 * popularity / popularity.mean()) * 1.0
    dense *= rng.random((n_rows, n_features))
    factors = rng.normal(size=(n_rows, 16))
    weight = rng.random(n_rows)
    ours = ridge_map(sp.csr_matrix(dense), factors, 0.8, sample_weight=weight)
    reference = _dense_ridge(dense, factors, 0.8, weight)
    assert ours.dtype == np.float32 and ours.shape == (n_features, 16)
    scale = np.abs(reference).max()
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4 * scale)


def test_iterative_and_direct_ridge_maps_agree_on_a_small_problem():
    """``dense_limit=0`` forces the iterative solve; it matches the direct one."""
    rng = np.random.default_rng(5)
    dense = (rng.random((40, 12)) < 0.3) * 1.0
    factors = rng.normal(size=(40, 3))
    direct = ridge_map(sp.csr_matrix(dense), factors, 0.5)
    iterative = ridge_map(sp.csr_matrix(dense), factors, 0.5, dense_limit=0)
    np.testing.assert_allclose(iterative, direct, rtol=0, atol=1e-4 * np.abs(direct).max())
    # A feature no warm row has gets nothing: the penalty alone decides it.
    dense[:, 0] = 0
    assert not np.any(ridge_map(sp.csr_matrix(dense), factors, 0.5, dense_limit=0)[0])


# baskets of products nobody bought

COLUMNS = (("brand", "category"), ("line", "category"), ("category", "category"))


@pytest.fixture(scope="module")
def shop():
    return generate_shop(400, 60, 0.06, seed=3)


def _fit_without(shop, backend: str, params: dict, unsold: list[int]):
    """``backend`` with features, fitted on the shop with the purchases of the catalogue's
    products ``unsold`` removed: they stay in the model as products nobody bought."""
    ids = shop.catalog_item_id
    keep = ~np.isin(shop.item_id, ids[unsold])
    data = build_interactions(shop.user_id[keep], shop.item_id[keep], shop.quantity[keep])
    data = with_cold_items(data, ids[unsold])
    position = {item: n for n, item in enumerate(ids.tolist())}
    order = np.array([position[i] for i in data.items.ids.tolist()])
    columns = {
        "brand": shop.catalog_brand[order],
        "line": shop.catalog_line[order],
        "category": shop.catalog_category[order],
    }
    features = fit_features(COLUMNS, columns, data.n_items)
    model = fit_model(
        data, backend, params, seed=0, item_attributes=columns, item_features=features
    )
    return model, data.items.index(ids[unsold])


def _siblings_first(model, items: np.ndarray) -> float:
    """Mean share of each item's line siblings among the first places of a one-item basket."""
    line = model.item_attributes["line"]
    shares = []
    for item in items:
        siblings = np.setdiff1d(np.flatnonzero(line == line[item]), [item])
        if siblings.size:
            top, _ = recommend_baskets(model, [[model.train.items.ids[item]]], siblings.size)
            shares.append(np.isin(top[0], siblings).mean())
    return float(np.mean(shares))


@pytest.mark.parametrize(
    ("backend", "params"),
    [
        ("svd", {"factors": 16}),
        ("svd", {"factors": 16, "normalize": True}),
        ("als", {"factors": 16}),
        ("bpr", {"factors": 16}),
    ],
)
def test_a_fit_gives_products_nobody_bought_their_mapped_factors(shop, backend, params):
    """The backend's stored rows of products nobody bought hold their mapped factors (not the
    fit's zeros), so a basket of one of them folds in to a customer with scores."""
    model, cold = _fit_without(shop, backend, params, [0, 20, 40])
    stored = model.arrays["item_factors"]
    mapped = model.coldstart["item_factors"][cold]
    if params.get("normalize"):  # stored unscaled; ranked as unit rows, the mapped direction
        given = get_backend(backend).item_factors(model.arrays, model.params)[cold]
        cosine = np.sum(given * mapped, axis=1) / np.linalg.norm(mapped, axis=1)
        np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)
    else:
        np.testing.assert_array_equal(stored[cold], mapped)
    _, scores = recommend_baskets(model, [[i] for i in model.train.items.ids[cold]], 5)
    assert np.all(np.any(scores != 0, axis=1))
    # What a fit gave before: zero rows, so the same baskets scored 0 everywhere.
    zeroed = stored.copy()
    zeroed[cold] = 0
    before = attrs.evolve(model, arrays={**model.arrays, "item_factors": zeroed})
    _, scores = recommend_baskets(before, [[i] for i in model.train.items.ids[cold]], 5)
    assert not np.any(scores)


@pytest.mark.parametrize(("backend", "floor"), [("svd", 0.7), ("als", 0.7), ("bpr", 0.5)])
def test_a_basket_of_one_new_product_ranks_its_line_first(shop, backend, floor):
    """A product added from its features alone (a new SKU with the features of each product
    in turn): a basket of it ranks its line's products (the one it copies among them) first,
    about as well as a basket of a product with buyers (0.78 for svd). Measured: svd 0.73,
    als 0.73, bpr 0.54 (before the fix: every score 0)."""
    model, _ = _fit_without(shop, backend, {"factors": 16}, [])
    shares = []
    for item in range(0, 60, 3):
        table = pa.table(
            {"item_id": ["NEW"], **{c: [model.item_attributes[c][item]] for c, _ in COLUMNS}}
        )
        new = add_items(model, table)
        n = new.train.n_items - 1
        assert np.any(new.arrays["item_factors"][n])
        shares.append(_siblings_first(new, np.array([n])))
    assert np.mean(shares) >= floor


# content: features weighted by their rarity


def _content(idf: float):
    """content on four products: feature 0 on three of them, feature 1 on product 3 only."""
    data = build_interactions(np.array([1, 1, 2]), np.array([10, 13, 11]))
    data = with_cold_items(data, np.array([12]))
    columns = {"tag": np.array(["a", "a", "a|b", ""])}  # items 10, 11, 13, 12 (added last)
    features = fit_features((("tag", "multi"),), columns, data.n_items)
    return data, fit_model(data, "content", {"idf": idf}, item_features=features)


def test_content_weighs_each_feature_by_a_power_of_its_idf():
    data, model = _content(2.0)
    assert data.items.ids.tolist() == [10, 11, 13, 12]
    idf = np.log(5 / np.array([4, 2])) + 1  # "a" on 3 products, "b" on 1, of 4
    np.testing.assert_allclose(model.arrays["feature_weights"], idf**2, rtol=1e-6)
    h = 1 / np.sqrt(2)  # product 13's row: "a" and "b", unit length before weighting
    rows = np.array([[1, 0], [1, 0], [h, h], [0, 0]]) * idf**2
    profile = rows[0] + rows[2]  # customer 1 bought 10 and 13
    expected = rows @ (profile / np.linalg.norm(profile))
    got = get_backend("content").score(
        model.arrays, model.params, model.train.matrix[[0]], np.array([0])
    )
    np.testing.assert_allclose(got[0], expected, rtol=1e-5)
    # the rarer feature lifts product 13 above the others for everybody
    assert got[0, 2] > got[0, 0] == pytest.approx(got[0, 1])


def test_content_idf_zero_is_the_plain_cosine_and_new_products_are_weighted_alike():
    _, plain = _content(0.0)
    np.testing.assert_array_equal(plain.arrays["feature_weights"], [1, 1])
    _, model = _content(2.0)
    new = add_items(model, pa.table({"item_id": [99], "tag": ["a|b"]}))
    n = model.train.n_items
    np.testing.assert_array_equal(new.arrays["feature_weights"], model.arrays["feature_weights"])
    impl = get_backend("content")
    rows = new.train.matrix[[0]]
    got = impl.score(new.arrays, new.params, rows, np.array([0]))[0]
    assert got[n] == pytest.approx(got[2])  # the same features as product 13: the same score
