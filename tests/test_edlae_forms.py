"""EDLAE's and DLAE's items form and users (Woodbury) form: the same B, checked against each
other and against Steck's closed forms in float64 numpy; the form follows the data's shape, the
users form never stores B, and files from before it (B with fewer customers) still load."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import scipy.sparse as sp
from form_helpers import assert_file_with_b_ranks_alike, weighted_matrix, weighted_shop

from growthrec.backends import ease
from growthrec.backends.contract import resolve_params
from growthrec.backends.edlae import (
    VARIANTS,
    EDLAEBackend,
    edlae_weights,
    user_form_arrays,
    user_form_keys,
    user_form_scores,
)
from growthrec.core.weighting import apply_weighting
from growthrec.errors import ModelFileError, ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets, similar_items
from growthrec.store.modelfile import load_model, save_model


def _inverse(x: sp.csr_matrix, dropout: float, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """P = (G + Λ)⁻¹ by numpy's float64 items x items inverse, and Λ's diagonal."""
    dense = x.toarray().astype(np.float64)
    g = dense.T @ dense
    penalty = np.diag(g) * dropout / (1 - dropout) + l2
    return np.linalg.inv(g + np.diag(penalty)), penalty


def _reference(x: sp.csr_matrix, dropout: float, l2: float, variant: str) -> np.ndarray:
    """Steck (2020)'s B: DLAE (G + Λ)⁻¹ G; EDLAE I − P·diag(1/diag P) with diag(B) = 0."""
    p, _ = _inverse(x, dropout, l2)
    dense = x.toarray().astype(np.float64)
    if variant == "dlae":
        return p @ (dense.T @ dense)
    b = np.eye(len(p)) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0)
    return b


def _exact_top(scores: np.ndarray, k: int) -> np.ndarray:
    """The top ``k`` columns of each row, ties to the lower column (growthrec's rule)."""
    columns = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return np.lexsort((columns, -scores), axis=-1)[:, :k]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    ("n_users", "n_items", "dropout", "l2"),
    [
        (30, 80, 0.25, 5.0),
        (30, 80, 0.5, 0.0),  # no l2: the dropout penalty alone makes XᵀX + Λ invertible
        (200, 500, 0.4, 50.0),
        (60, 25, 0.25, 10.0),
        (50, 50, 0.1, 1.0),
    ],
    ids=["wide", "wide-no-l2", "wide-large", "tall", "square"],
)
def test_both_forms_give_the_reference_b(n_users, n_items, dropout, l2, variant) -> None:
    x = weighted_matrix(n_users, n_items)
    expected = _reference(x, dropout, l2, variant)
    by_users = edlae_weights(x, dropout, l2, variant, form="users")
    by_items = edlae_weights(x, dropout, l2, variant, form="items")
    scale = np.abs(expected).max()
    assert by_users.dtype == by_items.dtype == np.float32
    assert by_users.shape == by_items.shape == (n_items, n_items)
    np.testing.assert_allclose(by_users, expected, rtol=0, atol=2e-5 * scale)
    np.testing.assert_allclose(by_items, expected, rtol=0, atol=2e-5 * scale)
    np.testing.assert_allclose(by_users, by_items, rtol=0, atol=2e-5 * scale)
    if variant == "edlae":
        assert np.all(np.diag(by_users) == 0) and np.all(np.diag(by_items) == 0)
    else:  # DLAE keeps its diagonal: B_jj = 1 − λ_j P_jj, strictly between 0 and 1
        assert np.all((np.diag(by_users) > 0) & (np.diag(by_users) < 1))
    auto = edlae_weights(x, dropout, l2, variant)
    np.testing.assert_array_equal(auto, by_users if n_users < n_items else by_items)


@pytest.mark.parametrize("variant", VARIANTS)
def test_users_form_scores_without_b_equal_x_times_b(variant: str) -> None:
    x = weighted_matrix(40, 150, seed=3)
    expected = x.toarray().astype(np.float64) @ _reference(x, 0.3, 20.0, variant)
    arrays = user_form_arrays(x, 0.3, 20.0, variant)
    assert "item_weights" not in arrays  # B is never formed
    scores = user_form_scores(arrays, x)
    assert scores.dtype == np.float32 and scores.flags.c_contiguous
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    # Blocks of customers, in any order, score the same (up to BLAS's blocking of the sums).
    top = np.abs(scores).max()
    np.testing.assert_allclose(user_form_scores(arrays, x[[7, 3]]), scores[[7, 3]], atol=1e-6 * top)
    # A new basket with its own weights (fold-in), unsorted and with a repeated item.
    basket = sp.csr_matrix(
        (np.array([2.0, 0.5, 1.0], np.float32), np.array([9, 4, 9]), np.array([0, 3])),
        shape=(1, 150),
    )
    row = np.zeros(150)
    row[[9, 4]] = [3.0, 0.5]
    want = row @ _reference(x, 0.3, 20.0, variant)
    np.testing.assert_allclose(user_form_scores(arrays, basket)[0], want, atol=1e-5 * top)


@pytest.mark.parametrize("variant", VARIANTS)
def test_users_form_stores_users_squared_plus_the_purchases(variant: str) -> None:
    x = weighted_matrix(30, 90)
    dropout, l2 = 0.2, 5.0
    arrays = user_form_arrays(x, dropout, l2, variant)
    assert tuple(arrays) == user_form_keys(variant)
    assert ("item_scale" in arrays) == (variant == "edlae")
    assert max(a.size for a in arrays.values()) < 90 * 90  # nothing items x items
    assert arrays["user_gram_inverse"].shape == (30, 30)
    # λ_j = p/(1-p)·Σ_u x_uj² + l2, by hand from the matrix.
    column_squares = (x.toarray().astype(np.float64) ** 2).sum(axis=0)
    np.testing.assert_allclose(arrays["item_penalty"], column_squares * 0.25 + 5.0, rtol=1e-6)
    # K⁻¹ = (I + X Λ⁻¹ Xᵀ)⁻¹ against numpy's inverse.
    dense = x.toarray().astype(np.float64)
    k = np.eye(30) + dense @ np.diag(1 / (column_squares * 0.25 + 5.0)) @ dense.T
    np.testing.assert_allclose(arrays["user_gram_inverse"], np.linalg.inv(k), atol=1e-6)
    if variant == "edlae":  # s_j = 1 / (λ_j P_jj), λ_j P_jj in (0, 1]
        p, penalty = _inverse(x, dropout, l2)
        np.testing.assert_allclose(arrays["item_scale"], 1 / (penalty * np.diag(p)), rtol=1e-5)
        assert np.all(arrays["item_scale"] >= 1)
    assert arrays["item_users_indices"].size == arrays["item_users_data"].size == x.nnz
    item_users = sp.csr_matrix(
        (arrays["item_users_data"], arrays["item_users_indices"], arrays["item_users_indptr"]),
        shape=(90, 30),
    )
    np.testing.assert_array_equal(item_users.toarray(), x.T.toarray())


def test_without_dropout_the_users_form_is_eases() -> None:
    x = weighted_matrix(40, 130, seed=5)
    got = user_form_scores(user_form_arrays(x, 0.0, 30.0, "edlae"), x)
    want = ease.user_form_scores(ease.user_form_arrays(x, 30.0), x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_backend_picks_the_form_by_shape_and_declares_what_it_stores(variant) -> None:
    backend = EDLAEBackend()
    params = resolve_params(backend, {"dropout": 0.3, "l2": 5.0, "variant": variant})
    assert ease.user_form(40, 120) and not ease.user_form(120, 120)
    wide = fit_model(weighted_shop(40, 120), "edlae", params)
    assert sorted(wide.arrays) == sorted(user_form_keys(variant))
    declared = backend.array_specs(params, 40, 120)
    # Either form may be stored with fewer customers (B in files from before the users form).
    assert sorted(declared) == sorted([*user_form_keys(variant), "item_weights"])
    assert all(spec.optional for spec in declared.values())
    for n_users in (120, 121):
        tall = fit_model(weighted_shop(n_users, 120), "edlae", params)
        assert sorted(tall.arrays) == ["item_weights"]
        assert sorted(backend.array_specs(params, n_users, 120)) == ["item_weights"]


def test_max_items_guards_only_the_items_form() -> None:
    params = {"max_items": 50, "dropout": 0.3, "l2": 5.0}
    wide = fit_model(weighted_shop(40, 120), "edlae", params)  # users form: fits
    assert wide.arrays["user_gram_inverse"].shape == (40, 40)
    with pytest.raises(ParameterError, match=r"120 items need about .* max_items=50"):
        fit_model(weighted_shop(130, 120), "edlae", params)


def test_users_form_without_l2_refuses_items_nobody_bought_in_one_line() -> None:
    x = weighted_matrix(30, 80).tolil()
    x[:, 7] = 0  # item 7 has no buyer: λ_7 = p/(1-p)·0 + 0
    with pytest.raises(ParameterError) as caught:
        user_form_arrays(x.tocsr(), 0.5, 0.0)
    message = str(caught.value)
    assert "\n" not in message
    assert "not positive definite at l2=0, dropout=0.5" in message
    assert "(1 of 80 items have no buyer, so no penalty)" in message
    assert "use a larger l2" in message
    assert np.isfinite(user_form_arrays(x.tocsr(), 0.5, 0.1)["item_penalty"]).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_users_form_model_agrees_with_the_items_form_everywhere(variant, tmp_path) -> None:
    """Lists for known customers, fold-in of baskets, similar items and a model file round
    trip: the users-form model against the same model holding the items form's B, and both
    against the float64 reference."""
    shop = weighted_shop()
    params = {"dropout": 0.4, "l2": 8.0, "variant": variant}
    model = fit_model(shop, "edlae", params)
    assert "user_gram_inverse" in model.arrays
    weighted = apply_weighting(shop.matrix, model.weighting)
    b_items = edlae_weights(weighted, 0.4, 8.0, variant, form="items")
    by_items = attrs.evolve(model, arrays={"item_weights": b_items})
    reference = _reference(weighted, 0.4, 8.0, variant)

    users = np.arange(shop.n_users)
    items, scores = recommend(model, users, 10)
    np.testing.assert_array_equal(items, recommend(by_items, users, 10)[0])
    expected = weighted.toarray().astype(np.float64) @ reference
    expected[shop.matrix.toarray() > 0] = -np.inf  # bought items are not recommended
    np.testing.assert_array_equal(items, _exact_top(expected, 10))
    np.testing.assert_allclose(scores, np.take_along_axis(expected, items, 1), atol=1e-5)

    baskets = [shop.items.external(shop.matrix[u].indices).tolist() for u in users[:10]]
    folded, _ = recommend_baskets(model, baskets, 10)
    np.testing.assert_array_equal(folded, recommend_baskets(by_items, baskets, 10)[0])
    np.testing.assert_array_equal(folded, shop.items.external(items[:10]))

    neighbours, similarity = similar_items(model, np.arange(6), 4)
    np.testing.assert_array_equal(neighbours, similar_items(by_items, np.arange(6), 4)[0])
    for item in range(6):
        row = reference[item].copy()
        row[item] = -np.inf
        np.testing.assert_array_equal(neighbours[item], _exact_top(row[None], 4)[0])
        np.testing.assert_allclose(similarity[item], row[neighbours[item]], atol=1e-5)

    loaded = load_model(save_model(model, tmp_path / "wide.npz"))
    assert set(loaded.arrays) == set(user_form_keys(variant))
    for name, value in model.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[name], value)
    np.testing.assert_array_equal(recommend(loaded, users, 10)[0], items)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_file_with_b_from_before_the_users_form_still_loads_and_ranks_alike(
    variant, tmp_path
) -> None:
    """Files written before the users form stored B whatever the shape: they load, and rank
    as the users form does (the same B); a file mixing the two forms is refused."""
    data = weighted_shop()
    fitted = fit_model(data, "edlae", {"dropout": 0.3, "l2": 5.0, "variant": variant})
    assert set(fitted.arrays) == set(user_form_keys(variant))
    weighted = apply_weighting(data.matrix, fitted.weighting)
    b = edlae_weights(weighted, 0.3, 5.0, variant, form="items")
    assert_file_with_b_ranks_alike(fitted, b, tmp_path)


def test_damaged_users_form_arrays_are_refused_in_one_line(tmp_path) -> None:
    data = weighted_shop(20, 60)
    model = fit_model(data, "edlae", {"dropout": 0.3, "l2": 5.0, "variant": "edlae"})
    x = apply_weighting(data.matrix, model.weighting)
    backend = EDLAEBackend()
    params = model.params

    bad_index = dict(model.arrays)
    bad_index["item_users_indices"] = bad_index["item_users_indices"].copy()
    bad_index["item_users_indices"][0] = 10_000
    with pytest.raises(ModelFileError, match=r"^edlae: the stored users form is damaged \("):
        user_form_scores(bad_index, x[:2])
    with pytest.raises(ValueError, match=r"^item_users_indices outside 0\.\.19$"):
        backend.check_arrays(bad_index, params, 20, 60)

    no_penalty = {**model.arrays, "item_penalty": model.arrays["item_penalty"].copy()}
    no_penalty["item_penalty"][3] = 0
    with pytest.raises(ValueError, match=r"^item_penalty holds 0\.0 at item 3; every λ_j"):
        backend.check_arrays(no_penalty, params, 20, 60)

    # DLAE's users form has no item_scale: an EDLAE users form under variant=dlae is refused.
    dlae_params = {**params, "variant": "dlae"}
    with pytest.raises(ValueError, match=r"neither B \(item_weights\) nor the users form"):
        backend.check_arrays(model.arrays, dlae_params, 20, 60)

    for name, arrays in (("index", bad_index), ("penalty", no_penalty)):
        path = save_model(attrs.evolve(model, arrays=arrays), tmp_path / f"{name}.npz")
        with pytest.raises(ModelFileError) as caught:
            load_model(path)
        assert "\n" not in str(caught.value)
        assert "item_users_indices" in str(caught.value) or "item_penalty" in str(caught.value)
