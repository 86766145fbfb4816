"""The models of issue 16 against independent dense references: RP3beta, EDLAE/DLAE, iALS and
the sparse approximate EASE."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.backends.contract import resolve_params
from growthrec.backends.ease import ease_weights
from growthrec.backends.edlae import dropout_penalty, edlae_weights
from growthrec.backends.ials import fold_in, frequency_regularization, solve_rows
from growthrec.backends.registry import available_backends, get_backend
from growthrec.backends.sparse_ease import sparse_ease_weights
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets

NEW = ("rp3beta", "edlae", "ials", "sparse_ease")


def _matrix(n_users: int = 60, n_items: int = 25, density: float = 0.2, seed: int = 0):
    """A random users x items matrix of counts 1..3, every item and user with a purchase."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * rng.integers(1, 4, (n_users, n_items))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] += 1
    dense[rng.integers(0, n_users, n_items), np.arange(n_items)] += 1
    return sp.csr_matrix(dense.astype(np.float32))


def _fit(backend: str, matrix: sp.csr_matrix, **given) -> dict[str, np.ndarray]:
    impl = get_backend(backend)
    return dict(impl.fit(matrix, resolve_params(impl, given), np.random.default_rng(0)))


def _csr(arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
    return sp.csr_matrix(
        (arrays["similarity_data"], arrays["similarity_indices"], arrays["similarity_indptr"]),
        shape=(n, n),
    ).toarray()


def test_every_new_model_is_registered_through_the_hook() -> None:
    registered = available_backends()
    for name in NEW:
        assert registered[name].plugin == f"growthrec.backends.{name}"
        assert registered[name].backend.description


# RP3beta ------------------------------------------------------------------------------------


def _rp3beta_dense(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """W straight from the transition matrices: (P_iu^α P_ui^α) / deg^β, diagonal zero."""
    p_ui = x / x.sum(axis=1, keepdims=True)
    binary = (x > 0).astype(float)
    degree = binary.sum(axis=0)
    p_iu = binary.T / degree[:, None]
    w = (p_iu**alpha) @ (p_ui**alpha) / degree[None, :] ** beta
    np.fill_diagonal(w, 0)
    return w


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (0.7, 0.3), (1.3, 0.8)])
def test_rp3beta_equals_the_transition_matrix_product(alpha: float, beta: float) -> None:
    x = _matrix()
    arrays = _fit("rp3beta", x, alpha=alpha, beta=beta, neighbors=100)
    expected = _rp3beta_dense(x.toarray().astype(float), alpha, beta)
    np.testing.assert_allclose(_csr(arrays, 25), expected, rtol=1e-5, atol=1e-7)


def test_rp3beta_keeps_each_items_largest_walk_scores() -> None:
    x = _matrix(seed=3)
    arrays = _fit("rp3beta", x, alpha=0.8, beta=0.4, neighbors=4)
    kept = _csr(arrays, 25)
    expected = _rp3beta_dense(x.toarray().astype(float), 0.8, 0.4)
    for item in range(25):
        assert np.count_nonzero(kept[item]) == 4
        np.testing.assert_allclose(
            np.sort(kept[item][kept[item] > 0]), np.sort(expected[item])[-4:], rtol=1e-5
        )


def test_rp3beta_scores_a_basket_by_its_items_rows() -> None:
    x = _matrix()
    model = fit_model(_interactions(x), "rp3beta", {"neighbors": 100}, weighting="count")
    impl = get_backend("rp3beta")
    rows = sp.csr_matrix(np.eye(25, dtype=np.float32)[[2]] * 2)
    scores = impl.score(model.arrays, model.params, rows, np.array([-1]))
    expected = 2 * _rp3beta_dense(x.toarray().astype(float), 1.0, 0.5)[2]
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5, atol=1e-7)


# EDLAE / DLAE -------------------------------------------------------------------------------


def _edlae_dense(x: np.ndarray, p: float, l2: float, variant: str) -> np.ndarray:
    """Steck (2020)'s closed forms in float64 numpy."""
    g = x.T @ x
    penalty = np.diag(np.diag(g) * p / (1 - p) + l2)
    inverse = np.linalg.inv(g + penalty)
    if variant == "dlae":
        return inverse @ g
    b = np.eye(len(g)) - inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(b, 0)
    return b


@pytest.mark.parametrize("variant", ["edlae", "dlae"])
@pytest.mark.parametrize(("dropout", "l2"), [(0.25, 5.0), (0.5, 0.0), (0.1, 30.0)])
def test_edlae_equals_the_papers_closed_forms(variant: str, dropout: float, l2: float) -> None:
    x = _matrix()
    arrays = _fit("edlae", x, dropout=dropout, l2=l2, variant=variant)
    expected = _edlae_dense(x.toarray().astype(float), dropout, l2, variant)
    assert arrays["item_weights"].dtype == np.float32
    np.testing.assert_allclose(arrays["item_weights"], expected, rtol=2e-3, atol=2e-5)


def test_edlae_without_dropout_is_ease() -> None:
    x = _matrix()
    np.testing.assert_allclose(
        edlae_weights(x, 0.0, 50.0, "edlae"), ease_weights(x, 50.0), rtol=1e-6, atol=1e-7
    )


def test_dropout_penalty_by_hand() -> None:
    """Λ = p/(1-p)·diag(G) + λ: an item with 4 buyers at p = 0.2 gets 1 + λ."""
    np.testing.assert_allclose(dropout_penalty(np.array([4.0, 0.0]), 0.2, 3.0), [4.0, 3.0])


def test_edlae_refuses_no_regularisation_in_one_line() -> None:
    with pytest.raises(ParameterError, match=r"dropout=0 and l2=0 .*positive value"):
        _fit("edlae", _matrix(), dropout=0.0, l2=0.0)


def test_edlae_refuses_catalogues_above_max_items() -> None:
    with pytest.raises(ParameterError, match=r"25 items need about .*max_items=10.*sparse_ease"):
        _fit("edlae", _matrix(), max_items=10)


# iALS ---------------------------------------------------------------------------------------


def test_frequency_regularization_by_hand() -> None:
    got = frequency_regularization(np.array([0, 3, 10]), 100, 0.5, 0.1, 1.0)
    np.testing.assert_allclose(got, [0.5 * 10, 0.5 * 13, 0.5 * 20])
    np.testing.assert_allclose(frequency_regularization(np.array([4]), 100, 2.0, 0.1, 0.0), [2.0])
    np.testing.assert_allclose(
        frequency_regularization(np.array([6]), 100, 2.0, 0.1, 0.5), [2.0 * 4.0]
    )


def _exact_rows(m: np.ndarray, h: np.ndarray, penalty: np.ndarray, a0: float) -> np.ndarray:
    """Every row's (Σ m h hᵀ + α0 HᵀH + λ_r I)⁻¹ Σ m h, one dense solve at a time."""
    out = np.zeros((m.shape[0], h.shape[1]))
    for r in range(m.shape[0]):
        a = h.T @ (m[r][:, None] * h) + a0 * h.T @ h + penalty[r] * np.eye(h.shape[1])
        out[r] = np.linalg.solve(a, h.T @ m[r])
    return out


def test_conjugate_gradient_reaches_the_exact_solve() -> None:
    x = _matrix()
    rng = np.random.default_rng(1)
    h = rng.standard_normal((25, 6)).astype(np.float32)
    penalty = frequency_regularization(np.diff(x.indptr), 25, 0.3, 0.2, 1.0)
    start = np.zeros((60, 6), dtype=np.float32)
    got = solve_rows(x, h, start, penalty, 0.2, cg_steps=30, n_threads=1)
    np.testing.assert_allclose(got, _exact_rows(x.toarray(), h, penalty, 0.2), atol=2e-4)
    few = solve_rows(x, h, start, penalty, 0.2, cg_steps=1, n_threads=1)
    assert np.abs(few - got).max() > 1e-3  # one step is not the answer: the test can fail


def test_conjugate_gradient_is_the_same_on_two_threads() -> None:
    x = _matrix(n_users=300)
    h = np.random.default_rng(2).standard_normal((25, 5)).astype(np.float32)
    penalty = np.full(300, 0.5, dtype=np.float32)
    start = np.zeros((300, 5), dtype=np.float32)
    one = solve_rows(x, h, start, penalty, 0.1, 3, n_threads=1)
    two = solve_rows(x, h, start, penalty, 0.1, 3, n_threads=2)
    np.testing.assert_array_equal(one, two)


def test_ials_fit_matches_a_dense_alternating_least_squares() -> None:
    """With enough CG steps each half-step is exact: the same factors as dense ALS."""
    x = _matrix()
    d, l2, a0, nu, iterations = 4, 0.05, 0.3, 1.0, 3
    arrays = _fit(
        "ials", x, factors=d, regularization=l2, unobserved_weight=a0, nu=nu,
        iterations=iterations, cg_steps=20, init_std=1.0,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    w = rng.standard_normal((60, d)) / np.sqrt(d)
    h = rng.standard_normal((25, d)) / np.sqrt(d)
    m = x.toarray().astype(float)
    user_penalty = l2 * ((m > 0).sum(axis=1) + a0 * 25) ** nu
    item_penalty = l2 * ((m > 0).sum(axis=0) + a0 * 60) ** nu
    for _ in range(iterations):
        w = _exact_rows(m, h, user_penalty, a0)
        h = _exact_rows(m.T, w, item_penalty, a0)
    np.testing.assert_allclose(arrays["user_factors"], w, atol=1e-3)
    np.testing.assert_allclose(arrays["item_factors"], h, atol=1e-3)


def test_ials_exact_solver_matches_a_dense_alternating_least_squares() -> None:
    x = _matrix()
    d, l2, a0, nu = 3, 0.1, 0.2, 0.5
    arrays = _fit(
        "ials", x, factors=d, regularization=l2, unobserved_weight=a0, nu=nu, iterations=2,
        cg_steps=0, init_std=1.0,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    rng.standard_normal((60, d))  # the users' start: the exact solve does not need it
    h = rng.standard_normal((25, d)) / np.sqrt(d)
    m = x.toarray().astype(float)
    user_penalty = l2 * ((m > 0).sum(axis=1) + a0 * 25) ** nu
    item_penalty = l2 * ((m > 0).sum(axis=0) + a0 * 60) ** nu
    for _ in range(2):
        w = _exact_rows(m, h, user_penalty, a0)
        h = _exact_rows(m.T, w, item_penalty, a0)
    np.testing.assert_allclose(arrays["user_factors"], w, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(arrays["item_factors"], h, rtol=1e-3, atol=1e-5)


def test_fold_in_is_the_exact_solve_for_each_basket() -> None:
    x = _matrix()
    h = np.random.default_rng(4).standard_normal((25, 5)).astype(np.float32)
    rows = sp.vstack([x[:7], sp.csr_matrix((1, 25), dtype=np.float32), x[7:9]]).tocsr()
    penalty = frequency_regularization(np.diff(rows.indptr), 25, 0.2, 0.5, 0.7)
    got = fold_in(h, rows, 0.2, 0.5, 0.7, block_cells=60)  # small batches: several of them
    expected = _exact_rows(rows.toarray(), h.astype(float), penalty, 0.5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not got[7].any()  # the empty basket


def test_ials_new_customer_scores_equal_a_known_customers_after_exact_fit() -> None:
    """The fold-in solves the equation the fit's last user half-step solved."""
    x = _matrix()
    data = _interactions(x)
    params = {"factors": 4, "iterations": 2, "cg_steps": 30}
    model = fit_model(data, "ials", params, weighting="count")
    impl = get_backend("ials")
    folded = impl.user_factors(model.arrays, model.params, x[:5], np.full(5, -1))
    # The item half-step came after the users' one: refit users against the final items.
    h = model.arrays["item_factors"]
    penalty = frequency_regularization(np.diff(x[:5].indptr), 25, 0.01, 0.1, 1.0)
    np.testing.assert_allclose(
        folded, _exact_rows(x[:5].toarray(), h.astype(float), penalty, 0.1), atol=1e-5
    )
    items, _ = recommend_baskets(model, [data.items.ids[x[0].indices].tolist()], 5)
    assert not set(items[0]) & set(x[0].indices)


# sparse EASE --------------------------------------------------------------------------------


def test_sparse_ease_with_every_neighbour_is_ease() -> None:
    x = _matrix(density=0.6)  # every pair of items bought together: every item a neighbour
    got = sparse_ease_weights(x, 20.0, neighbors=24, gram_neighbors=24).toarray()
    np.testing.assert_allclose(got, ease_weights(x, 20.0), rtol=1e-3, atol=1e-5)


def test_sparse_ease_with_dropout_and_every_neighbour_is_edlae() -> None:
    x = _matrix(density=0.6)
    got = sparse_ease_weights(x, 5.0, 24, 24, dropout=0.3).toarray()
    np.testing.assert_allclose(got, edlae_weights(x, 0.3, 5.0), rtol=1e-3, atol=1e-5)


def test_sparse_ease_columns_are_ridge_regressions_on_the_nearest_items() -> None:
    x = _matrix(seed=7)
    k, l2 = 5, 10.0
    got = sparse_ease_weights(x, l2, neighbors=k, gram_neighbors=24).toarray()
    g = (x.T @ x).toarray().astype(float)
    norms = np.sqrt(np.diag(g))
    cosine = g / np.outer(norms, norms)
    np.fill_diagonal(cosine, -1)
    for j in range(25):
        near = np.argsort(-cosine[j], kind="stable")[:k]
        near = near[g[j, near] > 0]
        b = np.linalg.solve(g[np.ix_(near, near)] + l2 * np.eye(near.size), g[near, j])
        np.testing.assert_allclose(got[near, j], b, rtol=1e-3, atol=1e-6)
        assert np.count_nonzero(got[:, j]) <= k
        assert got[j, j] == 0


def test_sparse_ease_with_a_pruned_gram_stays_close_to_ease() -> None:
    """Pairs not kept count as 0: the more Gram entries kept, the closer to the exact B."""
    x = _matrix(n_users=200, n_items=40, density=0.15, seed=2)
    exact = sparse_ease_weights(x, 20.0, neighbors=10, gram_neighbors=39).toarray()
    errors = [
        np.linalg.norm(sparse_ease_weights(x, 20.0, 10, kept).toarray() - exact)
        for kept in (10, 20, 30, 35)
    ]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.1 * np.linalg.norm(exact) < errors[0]


def test_sparse_ease_scores_and_lists_through_the_pipeline() -> None:
    x = _matrix(density=0.6)
    data = _interactions(x)
    model = fit_model(data, "sparse_ease", {"l2": 20.0, "neighbors": 24, "gram_neighbors": 24})
    users = np.arange(10)
    items, _ = recommend(model, users, 3)
    binary = (x > 0).astype(np.float32)
    expected = binary[users] @ ease_weights(binary, 20.0)
    expected[binary[users].toarray() > 0] = -np.inf
    np.testing.assert_array_equal(items, np.argsort(-expected, axis=1, kind="stable")[:, :3])


def _interactions(x: sp.csr_matrix):
    """``x`` as growthrec Interactions (customer i is row i, item j column j)."""
    from growthrec.core.interactions import build_interactions

    coo = x.tocoo()
    return build_interactions(coo.row, coo.col, coo.data)
