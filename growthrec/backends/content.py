"""``content``: a customer's purchases scored against every product by feature similarity.

A customer's profile is the sum of the feature rows of what they bought (weighted like every
backend's input), scaled to unit length; a product's score is the profile's dot product with
its feature row (unit length per feature column: see ``growthrec.core.features``), a cosine
between the customer's taste and the product. It needs item features (``--item-features``)
and scores a product nobody has bought exactly like any other: the baseline every hybrid must
beat on new products, and a model in its own right for a new catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import Arrays, ArraySpec, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.errors import ModelFileError, ParameterError

__all__ = ["ContentBackend"]


def _features(arrays: Arrays, n_items: int) -> sp.csr_matrix:
    problem = _features_problem(arrays, n_items)
    if problem:
        raise ModelFileError(f"content: the stored item features are damaged ({problem})")
    indices = arrays["features_indices"]
    width = int(indices.max()) + 1 if indices.size else 0
    return sp.csr_matrix(
        (arrays["features_data"], indices, arrays["features_indptr"]), shape=(n_items, width)
    )


def _features_problem(arrays: Arrays, n_items: int) -> str | None:
    indptr, indices = arrays["features_indptr"], arrays["features_indices"]
    if indptr.shape != (n_items + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        return "features_indptr is not a non-decreasing row pointer starting at 0"
    if indptr[-1] != indices.size or arrays["features_data"].shape != indices.shape:
        return f"features_indptr ends at {indptr[-1]} but there are {indices.size} indices"
    if indices.size and indices.min() < 0:
        return "features_indices holds a negative index"
    return None


class ContentBackend:
    """Content-based: cosine between a customer's feature profile and each product's features."""

    name = "content"
    description = (
        "Content-based: a customer's purchases scored against each product by feature "
        "similarity (needs --item-features); scores new products like any other"
    )
    params = (
        Param(
            "profile",
            "unit",
            "unit: the profile scaled to length 1 (cosine); sum: the plain sum of features",
            choices=("unit", "sum"),
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        raise ParameterError(
            "content: needs item features; give them with --item-features (e.g. "
            "--item-features category,title:text) or fit_model(..., item_features=...)"
        )

    def fit_with_features(
        self,
        matrix: sp.csr_matrix,
        item_features: sp.csr_matrix,
        params: Mapping[str, Any],
        rng: np.random.Generator,
    ) -> Arrays:
        """Keep the items' feature rows: scoring needs nothing else."""
        features = sp.csr_matrix(item_features, dtype=np.float32)
        features.sort_indices()
        return {
            "features_indptr": features.indptr.astype(np.int64),
            "features_indices": features.indices.astype(np.int32),
            "features_data": features.data.astype(np.float32),
        }

    def add_items(
        self, arrays: Arrays, params: Mapping[str, Any], item_features: sp.csr_matrix
    ) -> Arrays:
        """The new items' feature rows appended: they are scored like every other item."""
        new = sp.csr_matrix(item_features, dtype=np.float32)
        new.sort_indices()
        indptr = arrays["features_indptr"]
        return {
            "features_indptr": np.concatenate([indptr, indptr[-1] + new.indptr[1:]]).astype(
                np.int64
            ),
            "features_indices": np.concatenate([arrays["features_indices"], new.indices]).astype(
                np.int32
            ),
            "features_data": np.concatenate([arrays["features_data"], new.data]).astype(np.float32),
        }

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """The items' feature rows as CSR."""
        most = n_items * (n_items + n_users + 2**16)
        return {
            "features_indptr": ArraySpec((n_items + 1,), "iu", meaning="items + 1"),
            "features_indices": ArraySpec((None,), "iu", max_size=most),
            "features_data": ArraySpec((None,), max_size=most, learned=True),
        }

    def check_arrays(
        self, arrays: Arrays, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> None:
        """The CSR arrays agree with each other."""
        problem = _features_problem(arrays, n_items)
        if problem:
            raise ValueError(problem)

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        features = _features(arrays, rows.shape[1])
        profile = sp.csr_matrix(rows.astype(np.float32, copy=False) @ features)
        if params["profile"] == "unit":
            norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
            scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            profile = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ profile)
        return np.asarray((profile @ features.T).toarray(), dtype=np.float32)

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Cosine between the items' feature rows."""
        n_items = arrays["features_indptr"].size - 1
        features = _features(arrays, n_items)
        return np.asarray((features[np.asarray(items)] @ features.T).toarray(), dtype=np.float32)


@hookimpl
def register_backends(register):
    register(ContentBackend())
