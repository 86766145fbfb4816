"""Cold start for every backend: products nobody bought and customers who bought nothing.

Two ways, chosen by what the backend is:

* a dot-product backend (one with ``item_factors``/``user_factors``, see the backend contract):
  a ridge map learned on the warm items from their features to the backend's own item factors
  gives every item mapped factors; an item's factors are then its learned ones blended with the
  mapped ones by how many customers bought it (``w = n / (n + shrinkage)``), so a product nobody
  bought is scored from its features alone. Customers the same way, from customer features.
* an item-item backend (``ease``, ``itemknn``): features join the training matrix as extra rows
  (one per feature value, its items as the "purchases"), so items that share features become
  similar and a cold item gets weights from the warm ones it resembles (for EASE: Jeunen et al.,
  "Closed-form models for collaborative filtering with side-information", RecSys 2020).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import Backend
from growthrec.core.coldstart import ColdStart, blend_factors, mapped_factors, ridge_map
from growthrec.core.features import Features
from growthrec.core.ranking import batch_rows
from growthrec.core.weighting import apply_weighting

__all__ = [
    "ColdStart",
    "factor_capable",
    "feature_rows",
    "fit_coldstart",
    "item_features_as_rows",
]

#: Backends whose items are scored from an item-item matrix fit on the training rows; their
#: cold start appends feature rows to the matrix they are fit on.
FEATURE_ROW_BACKENDS = ("ease", "itemknn")


def factor_capable(impl: Backend) -> bool:
    """Whether ``impl`` scores by a dot product of factors it can hand over."""
    return callable(getattr(impl, "item_factors", None)) and callable(
        getattr(impl, "user_factors", None)
    )


def item_features_as_rows(impl: Backend) -> bool:
    """Whether ``impl`` learns from features given as extra rows of the training matrix."""
    return getattr(impl, "name", None) in FEATURE_ROW_BACKENDS or bool(
        getattr(impl, "item_features_as_rows", False)
    )


def feature_rows(matrix: sp.csr_matrix, features: Features, weight: float) -> sp.csr_matrix:
    """``matrix`` with one row per feature appended: ``weight`` times the features' transpose."""
    extra = sp.csr_matrix(features.matrix.T * np.float32(weight), dtype=np.float32)
    return sp.vstack([matrix, extra], format="csr", dtype=np.float32)


def fit_coldstart(
    impl: Backend,
    arrays: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    train: sp.csr_matrix,
    weighting: str,
    item_features: Features | None,
    user_features: Features | None,
    options: ColdStart,
) -> dict[str, np.ndarray]:
    """The cold-start arrays of a fitted dot-product backend: ``item_map``, ``item_factors``
    (learned blended with mapped) and ``user_map``; empty for other backends."""
    if not factor_capable(impl) or (item_features is None and user_features is None):
        return {}
    out: dict[str, np.ndarray] = {}
    if item_features is not None:
        learned = np.asarray(impl.item_factors(arrays, params), dtype=np.float32)
        buyers = np.diff(train.tocsc().indptr).astype(np.float64)
        confidence = buyers / (buyers + max(options.shrinkage, 1e-12))
        warm = buyers > 0
        weights = ridge_map(
            item_features.matrix[warm],
            learned[warm],
            options.regularization,
            sample_weight=confidence[warm],
        )
        mapped = mapped_factors(item_features.matrix, weights)
        out["item_map"] = weights
        out["item_factors"] = blend_factors(learned, mapped, buyers, options.shrinkage)
    if user_features is not None:
        learned = _all_user_factors(impl, arrays, params, train, weighting)
        bought = np.diff(train.indptr) > 0
        out["user_map"] = ridge_map(
            user_features.matrix[bought], learned[bought], options.regularization
        )
    return out


def _all_user_factors(
    impl: Backend,
    arrays: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    train: sp.csr_matrix,
    weighting: str,
) -> np.ndarray:
    """Every training customer's factors, a batch at a time."""
    n_users = train.shape[0]
    step = batch_rows(train.shape[1])
    parts = []
    for start in range(0, n_users, step):
        stop = min(start + step, n_users)
        rows = apply_weighting(train[start:stop], weighting)
        parts.append(impl.user_factors(arrays, params, rows, np.arange(start, stop)))
    return np.vstack(parts).astype(np.float32) if parts else np.empty((0, 0), np.float32)
