"""``content``: a customer's purchases scored against every product by feature similarity.

Each feature is weighted by a power of its inverse document frequency over the catalogue's
products, ``(log((1 + n) / (1 + df)) + 1) ** idf``: a word or genre few products share says
more about a product than one most share. A customer's profile is the sum of the weighted
feature rows of what they bought (weighted like every backend's input), scaled to unit
length; a product's score is the profile's dot product with its weighted feature row. Rows
are not scaled back to unit length, so a product described by rare features scores higher
for everybody: on ml-latest-small's and Online Retail's cold-items protocol, ``idf=2`` raised
the cold task's NDCG@10 from 0.038 to 0.125 and from 0.109 to 0.170 over the plain cosine
(``idf=0``, each feature column's rows unit length, see ``growthrec.core.features``).

It needs item features (``--item-features``) and scores a product nobody has bought exactly
like any other: the baseline every hybrid must beat on new products, and a model in its own
right for a new catalogue.
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
    width = arrays["feature_weights"].size
    return sp.csr_matrix(
        (arrays["features_data"], arrays["features_indices"], arrays["features_indptr"]),
        shape=(n_items, width),
    )


def _features_problem(arrays: Arrays, n_items: int) -> str | None:
    indptr, indices = arrays["features_indptr"], arrays["features_indices"]
    if indptr.shape != (n_items + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        return "features_indptr is not a non-decreasing row pointer starting at 0"
    if indptr[-1] != indices.size or arrays["features_data"].shape != indices.shape:
        return f"features_indptr ends at {indptr[-1]} but there are {indices.size} indices"
    if indices.size and indices.min() < 0:
        return "features_indices holds a negative index"
    width = arrays["feature_weights"].size
    if indices.size and indices.max() >= width:
        return f"features_indices holds {indices.max()} but there are {width} feature weights"
    return None


def _weighted(features: sp.csr_matrix, weights: np.ndarray) -> dict[str, np.ndarray]:
    """``features`` with column ``j`` times ``weights[j]``, as sorted CSR arrays."""
    out = sp.csr_matrix(features.multiply(weights[None, :]), dtype=np.float32)
    out.sort_indices()
    return {
        "features_indptr": out.indptr.astype(np.int64),
        "features_indices": out.indices.astype(np.int32),
        "features_data": out.data.astype(np.float32),
    }


def _unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix)


class ContentBackend:
    """Content-based: cosine between a customer's feature profile and each product's features."""

    name = "content"
    description = (
        "Content-based: a customer's purchases scored against each product by feature "
        "similarity (needs --item-features); scores new products like any other"
    )
    params = (
        Param(
            "idf",
            2.0,
            "power of each feature's inverse document frequency over the products "
            "(0: features as given, a cosine)",
            minimum=0.0,
            search=(0.0, 4.0),
        ),
        Param(
            "profile",
            "unit",
            "unit: the profile scaled to length 1 (cosine); sum: the plain sum of features",
            choices=("unit", "sum"),
            search=("unit", "sum"),
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
        """Keep the items' feature rows, each feature weighted by its idf: scoring needs
        nothing else; the weights stay for products added later."""
        features = sp.csr_matrix(item_features, dtype=np.float32)
        n_items = features.shape[0]
        present = np.bincount(features.indices[features.data != 0], minlength=features.shape[1])
        idf = np.log((1.0 + n_items) / (1.0 + present)) + 1.0
        weights = (idf ** float(params["idf"])).astype(np.float32)
        return {**_weighted(features, weights), "feature_weights": weights}

    def add_items(
        self, arrays: Arrays, params: Mapping[str, Any], item_features: sp.csr_matrix
    ) -> Arrays:
        """The new items' feature rows, weighted as the fit weighted the others, appended:
        they are scored like every other item."""
        weights = arrays["feature_weights"]
        new = sp.csr_matrix(item_features, dtype=np.float32)
        if new.shape[1] > weights.size:
            raise ParameterError(
                f"content: the new products have {new.shape[1]} features, the model {weights.size}"
            )
        new.resize((new.shape[0], weights.size))
        new = _weighted(new, weights)
        indptr = arrays["features_indptr"]
        return {
            "feature_weights": weights,
            "features_indptr": np.concatenate(
                [indptr, indptr[-1] + new["features_indptr"][1:]]
            ).astype(np.int64),
            "features_indices": np.concatenate(
                [arrays["features_indices"], new["features_indices"]]
            ).astype(np.int32),
            "features_data": np.concatenate([arrays["features_data"], new["features_data"]]).astype(
                np.float32
            ),
        }

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """The items' weighted feature rows as CSR, and each feature's weight."""
        most = n_items * (n_items + n_users + 2**16)
        return {
            "feature_weights": ArraySpec((None,), max_size=most, meaning="features"),
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
            profile = _unit_rows(profile)
        return np.asarray((profile @ features.T).toarray(), dtype=np.float32)

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Cosine between the items' weighted feature rows."""
        n_items = arrays["features_indptr"].size - 1
        features = _unit_rows(_features(arrays, n_items))
        return np.asarray((features[np.asarray(items)] @ features.T).toarray(), dtype=np.float32)


@hookimpl
def register_backends(register):
    register(ContentBackend())
