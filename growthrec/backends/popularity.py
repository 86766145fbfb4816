"""``popularity``: every customer gets the best sellers; the baseline any model must beat."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import Arrays, ArraySpec
from growthrec.backends.hookspecs import hookimpl


class PopularityBackend:
    """Scores each item by its column sum in training (distinct buyers, with binary weighting)."""

    name = "popularity"
    description = "Best sellers for everyone: the baseline every evaluation is compared against"
    params = ()

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        return {"item_popularity": np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()}

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """One number per item."""
        return {"item_popularity": ArraySpec((n_items,), learned=True, meaning="items")}

    def add_items(
        self, arrays: Arrays, params: Mapping[str, Any], item_features: sp.csr_matrix
    ) -> Arrays:
        """New items have no buyers yet: popularity 0."""
        counts = np.zeros(item_features.shape[0], dtype=arrays["item_popularity"].dtype)
        return {"item_popularity": np.concatenate([arrays["item_popularity"], counts])}

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        # A writable array of its own, like every backend's scores (not a read-only view).
        return np.tile(arrays["item_popularity"], (rows.shape[0], 1))

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Everybody's neighbours are the best sellers: popularity knows no item-item relation."""
        return np.tile(arrays["item_popularity"], (len(items), 1))


@hookimpl
def register_backends(register):
    register(PopularityBackend())
