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
    "with_mapped_items",
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
) -> tuple[Mapping[str, np.ndarray], dict[str, np.ndarray]]:
    """A fitted dot-product backend's arrays with its items nobody bought given their mapped
    factors (``with_mapped_items``), and its cold-start arrays: ``item_map``,
    ``item_factors`` (learned blended with mapped) and ``user_map``; for other backends the
    arrays as they are and no cold-start array."""
    if not factor_capable(impl) or (item_features is None and user_features is None):
        return arrays, {}
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
        arrays = with_mapped_items(impl, arrays, params, np.flatnonzero(~warm), mapped[~warm])
    if user_features is not None:
        learned = _all_user_factors(impl, arrays, params, train, weighting)
        bought = np.diff(train.indptr) > 0
        out["user_map"] = ridge_map(
            user_features.matrix[bought], learned[bought], options.regularization
        )
    return arrays, out


def with_mapped_items(
    impl: Backend,
    arrays: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    items: np.ndarray,
    mapped: np.ndarray,
) -> Mapping[str, np.ndarray]:
    """``arrays`` with rows ``items`` of the backend's stored ``item_factors`` set to their
    ``mapped`` factors: items nobody bought, which a fit (or ``add_items``) leaves at zero.

    A basket is folded in through the stored item factors, so without this a basket of
    products nobody bought yet folds into a zero customer and every score is 0; with it the
    basket's customer lands where those products' features put them. Done for a backend that
    stores ``arrays["item_factors"]`` shaped like its ``item_factors`` output (svd, als, bpr,
    spark, ials); when that output rescales the stored rows (``svd --normalize``), the mapped
    rows are scaled back by the median ratio of the two on the other items. Other backends'
    arrays are returned as they are.
    """
    stored = arrays.get("item_factors")
    if stored is None or len(items) == 0:
        return arrays
    given = np.asarray(impl.item_factors(arrays, params))
    if stored.shape != given.shape or mapped.shape != (len(items), stored.shape[1]):
        return arrays
    others = np.ones(stored.shape[0], dtype=bool)
    others[items] = False
    stored_norms = np.linalg.norm(stored[others], axis=1)
    given_norms = np.linalg.norm(given[others], axis=1)
    known = (stored_norms > 0) & (given_norms > 0)
    scale = float(np.median(stored_norms[known] / given_norms[known])) if known.any() else 1.0
    rows = np.array(stored, dtype=stored.dtype, copy=True)
    rows[items] = mapped * scale
    return {**arrays, "item_factors": rows}


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
