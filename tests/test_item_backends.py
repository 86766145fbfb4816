"""itemknn and ease: cross-checked against implicit and against float64 numpy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.backends import ease as ease_module
from growthrec.backends import itemknn as itemknn_module
from growthrec.backends.ease import EASEBackend, ease_weights
from growthrec.backends.itemknn import ItemKNNBackend, bm25_item_weights, item_neighbours
from growthrec.core.interactions import Interactions, build_interactions
from growthrec.core.weighting import binary
from growthrec.errors import ModelFileError, ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets, similar_items


@pytest.fixture(scope="module")
def continuous_shop() -> Interactions:
    """300 customers x 60 products, 4-10 purchases each, continuous weights: no exact ties."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(300), rng.integers(4, 11, 300))
    items = rng.integers(0, 60, users.size)
    return build_interactions(users, items, rng.uniform(0.5, 5.0, users.size))


def _similarity(model) -> sp.csr_matrix:
    a, n = model.arrays, model.train.n_items
    return sp.csr_matrix(
        (a["similarity_data"], a["similarity_indices"], a["similarity_indptr"]), shape=(n, n)
    )


def _implicit_model(similarity: str, neighbors: int, matrix: sp.csr_matrix, **bm25):
    nn = pytest.importorskip("implicit.nearest_neighbours")
    if similarity == "cosine":
        model = nn.CosineRecommender(K=neighbors)
    else:
        model = nn.BM25Recommender(K=neighbors, **bm25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # implicit converts its own COO output to CSR, noisily
        model.fit(matrix, show_progress=False)
    return model


@pytest.mark.parametrize(
    ("similarity", "neighbors", "bm25"),
    [
        ("cosine", 20, {}),
        ("cosine", 5, {}),
        ("bm25", 20, {}),
        ("bm25", 5, {"K1": 2.0, "B": 0.5}),
    ],
    ids=["cosine-20", "cosine-5", "bm25-20", "bm25-5-k1=2-b=0.5"],
)
def test_itemknn_top10_equals_implicit(continuous_shop, similarity, neighbors, bm25) -> None:
    params = {"neighbors": neighbors, "similarity": similarity}
    if bm25:
        params |= {"bm25_k1": bm25["K1"], "bm25_b": bm25["B"]}
    ours = fit_model(continuous_shop, "itemknn", params, weighting="count")
    x = continuous_shop.matrix
    theirs = _implicit_model(similarity, neighbors, x, **bm25)

    # Same neighbours, same similarities (implicit keeps the diagonal; ours drops it).
    reference = theirs.similarity.tolil()
    reference.setdiag(0)
    reference = reference.tocsr()
    reference.eliminate_zeros()
    similarity_matrix = _similarity(ours)
    assert ((similarity_matrix != 0) != (reference != 0)).nnz == 0
    np.testing.assert_allclose(similarity_matrix.toarray(), reference.toarray(), rtol=2e-5)

    users = np.arange(continuous_shop.n_users)
    their_items, their_scores = theirs.recommend(users, x, N=10)
    our_items, our_scores = recommend(ours, users, 10)
    # implicit only ranks items some bought item points to, then pads with bought items at
    # score 0; past its positive scores ours are unreached items at score 0.
    positive = their_scores > 0
    assert positive.sum() > 0.8 * positive.size
    for user in users:
        n = int(positive[user].sum())
        np.testing.assert_array_equal(our_items[user, :n], their_items[user, :n])
        np.testing.assert_allclose(our_scores[user, :n], their_scores[user, :n], rtol=1e-5)
        assert np.all(our_scores[user, n:] == 0)
    if neighbors == 20:  # every customer has ten positive scores: the whole lists agree
        assert positive.all()
        np.testing.assert_array_equal(our_items, their_items)


def test_itemknn_counts_the_item_itself_among_its_neighbours() -> None:
    # Item 0 is bought lightly alongside heavy items 1-3: under BM25 each of them is more
    # similar to item 0 than item 0 is to itself, so item 0 keeps three others while every
    # other item is its own best match and keeps neighbors - 1 = 2 (implicit's rule).
    rng = np.random.default_rng(0)
    users = np.r_[np.repeat(np.arange(100), 6), np.repeat(np.arange(10), 4)]
    others = [rng.choice(np.arange(4, 30), 6, replace=False) for _ in range(100)]
    items = np.r_[np.concatenate(others), np.tile([0, 1, 2, 3], 10)]
    weights = np.r_[rng.uniform(0.5, 2, 600), np.tile([0.01, 20, 15, 10], 10)]
    data = build_interactions(users, items, weights)
    ours = _similarity(
        fit_model(data, "itemknn", {"neighbors": 3, "similarity": "bm25"}, weighting="count")
    )
    assert ours[0].indices.tolist() == [1, 2, 3]
    assert set(np.diff(ours.indptr)[1:]) == {2}
    theirs = _implicit_model("bm25", 3, data.matrix).similarity
    assert theirs[0, 0] == 0 and np.all(theirs.diagonal()[1:] > 0)


def test_bm25_weights_equal_implicits(continuous_shop) -> None:
    nn = pytest.importorskip("implicit.nearest_neighbours")
    x = continuous_shop.matrix
    expected = sp.csr_matrix(nn.bm25_weight(x.T, K1=1.7, B=0.4).T)
    ours = bm25_item_weights(x, 1.7, 0.4)
    np.testing.assert_allclose(ours.toarray(), expected.toarray(), rtol=1e-6)


def test_itemknn_cosine_and_shrink_match_a_dense_computation(small_shop) -> None:
    x = binary(small_shop.matrix).toarray().astype(np.float64)
    dot = x.T @ x
    norms = np.sqrt(np.diag(dot))
    for shrink in (0.0, 10.0):
        model = fit_model(small_shop, "itemknn", {"neighbors": 40, "shrink": shrink})
        expected = dot / (np.outer(norms, norms) + shrink)
        np.fill_diagonal(expected, 0)
        np.testing.assert_allclose(_similarity(model).toarray(), expected, rtol=1e-5, atol=1e-7)


def test_itemknn_shrink_is_for_cosine_only(small_shop) -> None:
    with pytest.raises(ParameterError, match=r"shrink=5 applies to similarity=cosine only"):
        fit_model(small_shop, "itemknn", {"similarity": "bm25", "shrink": 5})


def test_itemknn_ties_at_the_last_neighbour_go_to_the_lower_index() -> None:
    # Column 0 is bought with columns 1-4 exactly once each: four equal cosines, two places.
    x = sp.csr_matrix(
        np.array(
            [[1, 1, 0, 0, 0], [1, 0, 1, 0, 0], [1, 0, 0, 1, 0], [1, 0, 0, 0, 1]],
            dtype=np.float32,
        )
    )
    unit = x.multiply(1 / np.sqrt(x.multiply(x).sum(axis=0))).tocsr().astype(np.float32)
    s = item_neighbours(unit, 3)
    assert s[0].indices.tolist() == [1, 2]  # the item itself, then 1 and 2 of the four ties


def test_itemknn_blocks_do_not_change_the_result(continuous_shop, monkeypatch) -> None:
    params = {"neighbors": 7, "similarity": "bm25"}
    whole = fit_model(continuous_shop, "itemknn", params, weighting="count")
    monkeypatch.setattr(itemknn_module, "BLOCK_BYTES", 1)  # one item row per block
    blocked = fit_model(continuous_shop, "itemknn", params, weighting="count")
    for name in whole.arrays:
        np.testing.assert_array_equal(whole.arrays[name], blocked.arrays[name])
    assert whole.arrays["similarity_data"].dtype == np.float32
    assert whole.arrays["similarity_indices"].dtype == np.int32


@pytest.mark.parametrize(("backend", "params"), [("itemknn", {"neighbors": 10}), ("ease", {})])
def test_fold_in_of_a_known_basket_equals_the_known_user(small_shop, backend, params) -> None:
    model = fit_model(small_shop, backend, params)
    users = np.arange(20)
    baskets = [small_shop.items.external(small_shop.matrix[u].indices).tolist() for u in users]
    known = recommend(model, users, 10)
    folded = recommend_baskets(model, baskets, 10)
    np.testing.assert_array_equal(known[0], folded[0])
    np.testing.assert_array_equal(known[1], folded[1])


def test_itemknn_similar_items_are_the_rows_of_s(small_shop) -> None:
    model = fit_model(small_shop, "itemknn", {"neighbors": 6})
    s = _similarity(model).toarray()
    items, scores = similar_items(model, np.arange(10), 3)
    for item in range(10):
        row = s[item].copy()
        row[item] = -np.inf
        order = np.lexsort((np.arange(row.size), -row))[:3]
        np.testing.assert_array_equal(items[item], order)
        np.testing.assert_array_equal(scores[item], row[order])


def test_ease_equals_a_float64_inverse(continuous_shop) -> None:
    l2 = 10.0
    model = fit_model(continuous_shop, "ease", {"l2": l2}, weighting="count")
    b = model.arrays["item_weights"]
    assert b.dtype == np.float32 and b.shape == (60, 60)
    x = continuous_shop.matrix.toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(b, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert np.all(np.diag(b) == 0)
    # Top-10 lists equal (continuous weights: no two items tie exactly, as twins would).
    scores = x @ expected
    scores[x > 0] = -np.inf
    columns = np.broadcast_to(np.arange(60), scores.shape)
    exact = np.lexsort((columns, -scores), axis=-1)[:, :10]
    items, _ = recommend(model, np.arange(continuous_shop.n_users), 10)
    np.testing.assert_array_equal(items, exact)


def test_ease_gram_blocks_and_threads_do_not_change_the_result(
    continuous_shop, monkeypatch
) -> None:
    whole = ease_weights(continuous_shop.matrix, 50.0)
    monkeypatch.setattr(ease_module, "BLOCK_BYTES", 1)  # one Gram row per block
    np.testing.assert_array_equal(ease_weights(continuous_shop.matrix, 50.0), whole)
    monkeypatch.setattr(ease_module, "THREADED_CHOLESKY_MAX_ITEMS", 0)  # the big-catalogue path
    np.testing.assert_allclose(ease_weights(continuous_shop.matrix, 50.0), whole, rtol=1e-5)


@pytest.mark.parametrize("step", [1, 7, 256])
def test_ease_symmetrising_copies_the_lower_triangle(step) -> None:
    a = np.random.default_rng(0).random((50, 50), dtype=np.float32)
    expected = np.tril(a) + np.tril(a, -1).T
    ease_module._symmetrise_from_lower(a, step)
    np.testing.assert_array_equal(a, expected)


def test_ease_refuses_a_catalogue_above_max_items(small_shop) -> None:
    with pytest.raises(ParameterError) as caught:
        fit_model(small_shop, "ease", {"max_items": 39})
    message = str(caught.value)
    assert "40 items" in message
    assert "GB" in message and "items² x 4 bytes x 2" in message
    assert "max_items=40" in message
    fit_model(small_shop, "ease", {"max_items": 40})  # at the limit it fits


def test_ease_needs_a_positive_definite_gram_matrix() -> None:
    x = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 1]], dtype=np.float32))  # item 1: no buyer
    with pytest.raises(ParameterError, match=r"not positive definite at l2=0.*larger l2"):
        EASEBackend().fit(x, {"l2": 0.0, "max_items": 10}, np.random.default_rng(0))


def test_ease_similar_items_are_the_rows_of_b(small_shop) -> None:
    model = fit_model(small_shop, "ease", {"l2": 50.0})
    b = model.arrays["item_weights"]
    items, scores = similar_items(model, np.arange(8), 4)
    for item in range(8):
        row = b[item].copy()
        row[item] = -np.inf
        order = np.lexsort((np.arange(row.size), -row))[:4]
        np.testing.assert_array_equal(items[item], order)
        np.testing.assert_array_equal(scores[item], row[order])


def test_itemknn_rejects_damaged_arrays(small_shop) -> None:
    model = fit_model(small_shop, "itemknn", {"neighbors": 5})
    arrays = dict(model.arrays)
    arrays["similarity_indices"] = arrays["similarity_indices"].copy()
    arrays["similarity_indices"][0] = 10_000
    rows = binary(small_shop.matrix[:3])
    with pytest.raises(ModelFileError, match="damaged"):
        ItemKNNBackend().score(arrays, model.params, rows, np.arange(3))
