"""``svd``: PureSVD, a truncated SVD of the interaction matrix (scikit-learn's TruncatedSVD).

A user's scores are the projection of their row onto the item factors, ``x V Vᵀ``; customers
not seen in training are scored the same way from their basket (fold-in), no refit needed.
Scores are ``(x V) · Vᵀ`` (with ``normalize``, unit rows of both), so the backend gives
``user_factors`` and ``item_factors`` and lists are ranked by the pruned ``top_k_factors``.

Threads: the fit runs BLAS on one thread (never more than a caller's limit, so no ``threads``
parameter): at MovieLens-1M shape, 50 factors, it took 0.16 s on one thread and 1.3 s on two
on the 2-core test machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends.contract import Arrays, ArraySpec, Param, with_zero_rows
from growthrec.backends.hookspecs import hookimpl
from growthrec.errors import ParameterError


def _unit_rows(factors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    return factors / np.where(norms > 0, norms, 1).astype(factors.dtype)


class SVDBackend:
    """Truncated SVD of the user x item matrix; scores are ``x V Vᵀ`` (or cosine, if normalised)."""

    name = "svd"
    description = "PureSVD: scikit-learn TruncatedSVD, scores x·V·Vᵀ (default backend)"
    params = (
        Param(
            "factors",
            50,
            "number of latent factors (SVD components)",
            minimum=1,
            search=(8, 256),
            log=True,
        ),
        Param(
            "normalize",
            False,
            "L2-normalise user and item factors: cosine scores, more catalogue coverage",
            search=(False, True),
        ),
        Param("n_iter", 5, "power iterations of the randomized SVD solver", minimum=1),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        from sklearn.decomposition import TruncatedSVD  # slow import: only when fitting

        factors = params["factors"]
        n_users, n_items = matrix.shape
        if min(n_users, n_items) < 2:
            raise ParameterError(
                f"svd: needs at least 2 customers and 2 products, the data has {n_users} "
                f"customer(s) and {n_items} product(s); use --model popularity for data this small"
            )
        if factors >= n_items or factors >= n_users:
            raise ParameterError(
                f"svd: factors={factors} must be smaller than the number of items ({n_items}) "
                f"and of users ({n_users}); use at most {min(n_items, n_users) - 1}"
            )
        svd = TruncatedSVD(
            n_components=factors,
            algorithm="randomized",
            n_iter=params["n_iter"],
            random_state=int(rng.integers(2**31 - 1)),
        )
        with threadpool_limits(1, "blas"):  # measured faster for thin SVDs on 2 cores
            svd.fit(matrix.astype(np.float32, copy=False))
        return {
            "item_factors": np.ascontiguousarray(svd.components_.T, dtype=np.float32),
            "singular_values": svd.singular_values_.astype(np.float32),
        }

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """Item factors (items x factors) and the singular values."""
        k = params["factors"]
        return {
            "item_factors": ArraySpec((n_items, k), learned=True, meaning="items x factors"),
            "singular_values": ArraySpec((k,), meaning="factors"),
        }

    def add_items(
        self, arrays: Arrays, params: Mapping[str, Any], item_features: sp.csr_matrix
    ) -> Arrays:
        """New items get zero rows of V: what the fit gives a product nobody bought."""
        return {
            **arrays,
            "item_factors": with_zero_rows(arrays["item_factors"], item_features.shape[0]),
        }

    def item_factors(self, arrays: Arrays, params: Mapping[str, Any]) -> np.ndarray:
        """V (unit rows with ``normalize``): scores are ``user_factors @ item_factors.T``."""
        items = arrays["item_factors"]
        return _unit_rows(items) if params["normalize"] else items

    def user_factors(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        """``x V`` of each row (unit rows with ``normalize``): known customers and baskets alike."""
        factors = np.asarray(rows @ arrays["item_factors"], dtype=np.float32)
        return _unit_rows(factors) if params["normalize"] else factors

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        users_x = self.user_factors(arrays, params, rows, users)
        return users_x @ self.item_factors(arrays, params).T


@hookimpl
def register_backends(register):
    register(SVDBackend())
