"""The ``hybrid`` backend: a factor model and ``content``, standardised and blended per item."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from growthrec.backends.content import ContentBackend
from growthrec.backends.hybrid import HybridBackend, blend, content_weights, standardised
from growthrec.core.features import fit_features
from growthrec.core.interactions import build_interactions
from growthrec.core.weighting import apply_weighting
from growthrec.data.features import with_cold_items
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ParameterError
from growthrec.pipeline.catalog import add_items
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets
from growthrec.pipeline.scores import basket_scores, scores
from growthrec.store.modelfile import load_model, save_model

COLUMNS = ("brand", "line", "category")
WEIGHTS = {"content_weight": 0.2, "cold_content_weight": 0.6, "shrinkage": 1.0}


@pytest.fixture(scope="module")
def shop():
    return generate_shop(400, 60, 0.06, seed=3)


def _data_and_features(shop, cold: int = 0):
    """The shop's purchases (the first ``cold`` catalogue products never bought: their
    purchases left out) and its products' features."""
    unsold = shop.catalog_item_id[:cold]
    kept = ~np.isin(shop.item_id, unsold)
    data = build_interactions(shop.user_id[kept], shop.item_id[kept], shop.quantity[kept])
    data = with_cold_items(data, np.setdiff1d(unsold, data.items.ids))
    position = {item: n for n, item in enumerate(shop.catalog_item_id.tolist())}
    order = np.array([position[i] for i in data.items.ids.tolist()])
    columns = {c: getattr(shop, f"catalog_{c}")[order] for c in COLUMNS}
    features = fit_features([(c, "category") for c in COLUMNS], columns, data.n_items)
    return data, features, columns


def _fit(shop, params: dict | None = None, backend: str = "hybrid"):
    data, features, columns = _data_and_features(shop)
    return fit_model(
        data,
        backend,
        {} if backend == "content" else {"factors": 16, **(params or {})},
        seed=0,
        item_attributes=columns,
        item_features=features,
    )


@pytest.fixture(scope="module")
def hybrid(shop):
    return _fit(shop, WEIGHTS)


# the blend, by hand


def test_standardised_rows_by_hand() -> None:
    got = standardised(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    root = np.sqrt(2 / 3)  # the population standard deviation of 1, 2, 3
    np.testing.assert_allclose(got, [[-1 / root, 0, 1 / root], [0, 0, 0]], rtol=1e-6)


def test_content_weights_move_from_cold_to_warm_with_buyers() -> None:
    params = {"content_weight": 0.2, "cold_content_weight": 0.6, "shrinkage": 1.0}
    got = content_weights(np.array([0, 1, 3]), params)
    # newness = shrinkage / (buyers + shrinkage): 1, 1/2, 1/4
    np.testing.assert_allclose(got, [0.6, 0.4, 0.3], rtol=1e-6)
    no_shrinkage = content_weights(np.array([0, 1, 3]), {**params, "shrinkage": 0.0})
    np.testing.assert_allclose(no_shrinkage, [0.6, 0.2, 0.2], rtol=1e-6)


def test_blend_of_a_tiny_case_by_hand() -> None:
    collaborative = np.array([[3.0, 1.0, 2.0]])  # z: 1.2247, -1.2247, 0
    content = np.array([[0.0, 0.0, 3.0]])  # mean 1, std sqrt(2): -0.7071, -0.7071, 1.4142
    got = blend(collaborative, content, np.array([0.0, 0.5, 1.0]))
    z = np.sqrt(1.5)
    np.testing.assert_allclose(got, [[z, 0.5 * -z + 0.5 * -np.sqrt(0.5), np.sqrt(2)]], rtol=1e-5)
    assert got.dtype == np.float32


def test_scores_are_the_blend_of_the_two_models_scores(hybrid) -> None:
    """The backend's scores: svd's user factors times the blended item factors, and content's
    scores, each standardised per customer and weighted by the item's buyers."""
    users = np.arange(30)
    rows = apply_weighting(hybrid.train.matrix[users], hybrid.weighting)
    arrays = hybrid.arrays
    collaborative = (rows @ arrays["cf_item_factors"]) @ arrays["scoring_factors"].T
    content = ContentBackend().score(arrays, {"idf": 2.0, "profile": "unit"}, rows, users)
    buyers = np.diff(hybrid.train.matrix.tocsc().indptr)
    newness = WEIGHTS["shrinkage"] / (buyers + WEIGHTS["shrinkage"])
    w = 0.2 + (0.6 - 0.2) * newness

    def z(s):
        s = np.asarray(s, dtype=np.float64)
        return (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)

    expected = (1 - w) * z(collaborative) + w * z(content)
    np.testing.assert_allclose(scores(hybrid, users), expected, atol=2e-5)


@pytest.mark.parametrize(("weight", "alone"), [(0.0, "svd"), (1.0, "content")])
def test_the_extreme_weights_rank_as_one_model_alone(shop, weight, alone) -> None:
    """content_weight 0 everywhere ranks as the base model, 1 as content (z-scores keep order)."""
    params = {"content_weight": weight, "cold_content_weight": weight}
    ours = recommend(_fit(shop, params), np.arange(100), 10)[0]
    theirs = recommend(_fit(shop, None, alone), np.arange(100), 10)[0]
    np.testing.assert_array_equal(ours, theirs)


# products nobody bought, and products added later


def test_a_product_nobody_bought_gets_its_mapped_factors_and_the_cold_weight(shop) -> None:
    data, features, _ = _data_and_features(shop, cold=3)
    unbought = np.flatnonzero(np.diff(data.matrix.tocsc().indptr) == 0)
    assert unbought.size == 3
    model = fit_model(data, "hybrid", {"factors": 16}, seed=0, item_features=features)
    mapped = features.matrix[unbought] @ model.arrays["item_map"]
    np.testing.assert_allclose(model.arrays["scoring_factors"][unbought], mapped, rtol=1e-5)
    np.testing.assert_allclose(model.arrays["cf_item_factors"][unbought], mapped, rtol=1e-5)
    assert np.all(model.arrays["item_buyers"][unbought] == 0)


def test_added_products_are_scored_like_products_nobody_bought(hybrid) -> None:
    """A new product with an existing one's features gets that product's mapped factors and
    content row, and customers who bought its line rank it high."""
    popular = int(np.argmax(np.bincount(hybrid.train.matrix.indices)))
    attrs = hybrid.item_attributes
    table = pa.table({"item_id": ["NEW"], **{c: [str(attrs[c][popular])] for c in COLUMNS}})
    grown = add_items(hybrid, table)
    new = grown.train.n_items - 1
    assert grown.train.n_items == hybrid.train.n_items + 1
    expected = hybrid.item_features.matrix[popular] @ hybrid.arrays["item_map"]
    np.testing.assert_allclose(grown.arrays["scoring_factors"][new], expected.ravel(), rtol=1e-5)
    assert grown.arrays["item_buyers"][new] == 0
    users = np.arange(hybrid.train.n_users)
    line = np.flatnonzero(attrs["line"] == attrs["line"][popular])
    buyers = np.flatnonzero(np.asarray(hybrid.train.matrix[:, line].sum(axis=1)).ravel() > 0)
    reached = (recommend(grown, users, 10)[0] == new).any(axis=1)
    assert buyers.size >= 10 and reached[buyers].mean() >= 0.6
    assert reached[buyers].mean() > 2 * reached[np.setdiff1d(users, buyers)].mean()
    # a basket of only the new product folds in by its features: its line comes first
    top = np.argsort(-basket_scores(grown, [["NEW"]], exclude_seen=True)[0])[: line.size]
    assert sorted(top.tolist()) == line.tolist()


# the model file


@pytest.mark.parametrize("base", ["svd", "als"])
def test_round_trip_through_the_model_file(shop, base, tmp_path) -> None:
    if base == "als":
        pytest.importorskip("implicit")
    model = _fit(shop, {"base": base, "iterations": 5})
    loaded = load_model(save_model(model, tmp_path / "hybrid.npz"))
    assert loaded.backend == "hybrid" and loaded.params["base"] == base
    assert sorted(loaded.arrays) == sorted(model.arrays)
    users = np.arange(model.train.n_users)
    np.testing.assert_array_equal(scores(loaded, users), scores(model, users))
    basket = [model.train.items.ids[[1, 2]].tolist()]
    np.testing.assert_array_equal(
        recommend_baskets(loaded, basket, 5)[0], recommend_baskets(model, basket, 5)[0]
    )


def test_a_model_file_with_a_map_unlike_its_features_is_refused(hybrid) -> None:
    arrays = {**hybrid.arrays, "item_map": hybrid.arrays["item_map"][:-1]}
    with pytest.raises(ValueError, match=r"item_map has \d+ rows but there are \d+ feature"):
        HybridBackend().check_arrays(
            arrays, hybrid.params, hybrid.train.n_users, hybrid.train.n_items
        )


# what a user can get wrong


def test_fitting_without_item_features_is_one_line(shop) -> None:
    data, _, _ = _data_and_features(shop)
    with pytest.raises(ParameterError, match=r"^hybrid: needs item features; give them with"):
        fit_model(data, "hybrid", {"factors": 16})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"content_weight": 1.5}, "hybrid: parameter content_weight=1.5 must be at most 1"),
        ({"base": "ease"}, "hybrid: parameter base='ease'; choose one of svd, als"),
        ({"factors": 80}, "hybrid: svd: factors=80 must be smaller than the number of items"),
    ],
)
def test_bad_parameters_are_one_line(shop, params, message) -> None:
    with pytest.raises(ParameterError) as caught:
        _fit(shop, params)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_similar_items_blend_both_similarities(hybrid) -> None:
    sims = HybridBackend().similar_items(hybrid.arrays, hybrid.params, np.array([0, 1]))
    assert sims.shape == (2, hybrid.train.n_items) and np.isfinite(sims).all()
    # an item is its own nearest neighbour under both similarities
    assert sims[0].argmax() == 0 and sims[1].argmax() == 1
    unbought = sp.csr_matrix(hybrid.train.matrix).getnnz(axis=0) == 0
    assert not unbought.any() or np.isfinite(sims[:, unbought]).all()
