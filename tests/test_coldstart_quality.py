"""Cold start that is fast and sound: the iterative ridge map against dense numpy, cold items
inside baskets, warm items kept as learned, and the content backend's weighting."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.core.coldstart import ridge_map


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
