"""EASE's items form and users (Woodbury) form: the same B, checked against each other and
against a float64 numpy inverse; the form follows the data's shape and the model file stores
the users form's arrays, never B."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from form_helpers import assert_file_with_b_ranks_alike, weighted_matrix, weighted_shop

from growthrec.backends.contract import resolve_params
from growthrec.backends.ease import (
    USER_FORM_KEYS,
    EASEBackend,
    ease_weights,
    user_form,
    user_form_arrays,
    user_form_scores,
)
from growthrec.core.weighting import apply_weighting
from growthrec.errors import ModelFileError, ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets, similar_items
from growthrec.store.modelfile import load_model, save_model


def _reference(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """B from the float64 items x items inverse: B = I − P·diag(1/diag(P)), diagonal 0."""
    dense = x.toarray().astype(np.float64)
    p = np.linalg.inv(dense.T @ dense + l2 * np.eye(x.shape[1]))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    return b


@pytest.mark.parametrize(
    ("n_users", "n_items", "l2"),
    [(30, 80, 5.0), (200, 500, 50.0), (60, 25, 10.0), (50, 50, 1.0)],
    ids=["wide", "wide-large", "tall", "square"],
)
def test_both_forms_give_the_reference_b(n_users, n_items, l2) -> None:
    x = weighted_matrix(n_users, n_items)
    expected = _reference(x, l2)
    by_users = ease_weights(x, l2, form="users")
    by_items = ease_weights(x, l2, form="items")
    scale = np.abs(expected).max()
    assert by_users.dtype == by_items.dtype == np.float32
    assert by_users.shape == (n_items, n_items)
    np.testing.assert_allclose(by_users, expected, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(by_items, expected, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(by_users, by_items, rtol=0, atol=1e-5 * scale)
    assert np.all(np.diag(by_users) == 0) and np.all(np.diag(by_items) == 0)
    auto = ease_weights(x, l2)
    np.testing.assert_array_equal(auto, by_users if n_users < n_items else by_items)


def test_users_form_scores_without_b_equal_x_times_b() -> None:
    x = weighted_matrix(40, 150, seed=3)
    expected = x.toarray().astype(np.float64) @ _reference(x, 20.0)
    arrays = user_form_arrays(x, 20.0)
    assert "item_weights" not in arrays  # B is never formed
    scores = user_form_scores(arrays, x)
    assert scores.dtype == np.float32 and scores.flags.c_contiguous
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    # Blocks of customers, in any order, score the same (up to BLAS's blocking of the sums).
    top = np.abs(scores).max()
    np.testing.assert_allclose(user_form_scores(arrays, x[[7, 3]]), scores[[7, 3]], atol=1e-6 * top)


def test_users_form_stores_users_squared_plus_the_purchases() -> None:
    x = weighted_matrix(30, 90)
    arrays = user_form_arrays(x, 5.0)
    assert arrays["user_gram_inverse"].shape == (30, 30)
    assert arrays["item_scale"].shape == (90,)
    assert np.all(arrays["item_scale"] >= 1)  # 1 / (λ·P_jj), λ·P_jj in (0, 1]
    assert arrays["item_users_indptr"].shape == (91,)
    assert arrays["item_users_indices"].size == arrays["item_users_data"].size == x.nnz
    item_users = sp.csr_matrix(
        (arrays["item_users_data"], arrays["item_users_indices"], arrays["item_users_indptr"]),
        shape=(90, 30),
    )
    np.testing.assert_array_equal(item_users.toarray(), x.T.toarray())


def test_the_backend_picks_the_form_by_shape_and_declares_what_it_stores() -> None:
    backend = EASEBackend()
    params = resolve_params(backend, {"l2": 5.0})
    assert user_form(40, 120) and not user_form(120, 120) and not user_form(121, 120)
    wide = backend.fit(weighted_matrix(40, 120), params, np.random.default_rng(0))
    declared = backend.array_specs(params, 40, 120)
    assert sorted(wide) == sorted(USER_FORM_KEYS)
    # Either form may be stored with fewer customers (B in files from before the users form).
    assert sorted(declared) == sorted([*USER_FORM_KEYS, "item_weights"])
    assert all(spec.optional for spec in declared.values())
    tall = backend.fit(weighted_matrix(120, 40), params, np.random.default_rng(0))
    assert sorted(tall) == ["item_weights"] == sorted(backend.array_specs(params, 120, 40))


def test_max_items_guards_only_the_items_form() -> None:
    backend = EASEBackend()
    params = resolve_params(backend, {"max_items": 50})
    arrays = backend.fit(
        weighted_matrix(40, 120), params, np.random.default_rng(0)
    )  # users form: fits
    assert arrays["user_gram_inverse"].shape == (40, 40)
    with pytest.raises(ParameterError, match=r"120 items need about .* max_items=50"):
        backend.fit(weighted_matrix(130, 120), params, np.random.default_rng(0))


def test_users_form_needs_a_positive_l2() -> None:
    with pytest.raises(ParameterError) as caught:
        fit_model(weighted_shop(), "ease", {"l2": 0})
    message = str(caught.value)
    assert "not positive definite at l2=0" in message
    assert "40 customers and 120 items: XᵀX has rank at most 40" in message
    assert "use a larger l2" in message


def test_users_form_model_lists_similar_items_fold_in_and_file_round_trip(tmp_path) -> None:
    shop = weighted_shop()
    model = fit_model(shop, "ease", {"l2": 8.0})
    assert "user_gram_inverse" in model.arrays
    bought = shop.matrix.toarray() > 0
    b = _reference(sp.csr_matrix(bought.astype(np.float32)), 8.0)  # binary weighting
    users = np.arange(shop.n_users)
    expected = bought @ b
    expected[bought] = -np.inf
    columns = np.broadcast_to(np.arange(shop.n_items), expected.shape)
    exact = np.lexsort((columns, -expected), axis=-1)[:, :10]
    items, _ = recommend(model, users, 10)
    np.testing.assert_array_equal(items, exact)

    baskets = [shop.items.external(shop.matrix[u].indices).tolist() for u in users[:10]]
    folded, _ = recommend_baskets(model, baskets, 10)
    np.testing.assert_array_equal(folded, shop.items.external(items[:10]))

    neighbours, scores = similar_items(model, np.arange(5), 4)
    for item in range(5):
        row = b[item].copy()
        row[item] = -np.inf
        np.testing.assert_array_equal(neighbours[item], np.argsort(-row, kind="stable")[:4])
        np.testing.assert_allclose(scores[item], row[neighbours[item]], atol=1e-5)

    path = save_model(model, tmp_path / "wide.npz")
    loaded = load_model(path)
    for name, value in model.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[name], value)
    np.testing.assert_array_equal(recommend(loaded, users, 10)[0], items)


def test_damaged_users_form_arrays_are_refused_in_one_line() -> None:
    x = weighted_matrix(20, 60)
    arrays = dict(user_form_arrays(x, 5.0))
    arrays["item_users_indices"] = arrays["item_users_indices"].copy()
    arrays["item_users_indices"][0] = 10_000
    with pytest.raises(ModelFileError, match=r"ease: the stored users form is damaged "):
        user_form_scores(arrays, x[:2])
    backend = EASEBackend()
    with pytest.raises(ValueError, match=r"item_users_indices outside 0\.\.19"):
        backend.check_arrays(arrays, {}, 20, 60)


def test_a_file_with_b_from_before_the_users_form_still_loads_and_ranks_alike(tmp_path):
    """Files written before the users form stored B whatever the shape: they load, and rank
    as the users form does (the same B); a file mixing the two forms is refused."""
    data = weighted_shop()
    fitted = fit_model(data, "ease", {"l2": 5.0})
    assert set(fitted.arrays) == set(USER_FORM_KEYS)
    b = ease_weights(apply_weighting(data.matrix, fitted.weighting), 5.0, form="items")
    assert_file_with_b_ranks_alike(fitted, b, tmp_path)
