"""Factors for items and customers nobody has seen buy: a ridge map from features to factors.

On the warm rows a closed-form ridge regression learns ``W`` with ``features @ W ≈ factors``;
a cold row's factors are then ``features @ W``, from its features alone. Rows with few
interactions get a blend that moves from the mapped to the learned factors as they accumulate:
``w = n / (n + shrinkage)``.
"""

from __future__ import annotations

import attrs
import numpy as np
import scipy.linalg
import scipy.sparse as sp

from growthrec.errors import ParameterError

__all__ = ["ColdStart", "blend_factors", "mapped_factors", "ridge_map"]


@attrs.frozen
class ColdStart:
    """How features become factors: ridge ``regularization`` of the map, ``shrinkage`` of the
    blend (buyers at which learned and mapped factors weigh the same), and ``feature_weight``
    of the feature rows given to item-item backends."""

    regularization: float = 1.0
    shrinkage: float = 2.0
    feature_weight: float = 1.0

    def __attrs_post_init__(self) -> None:
        for name in ("regularization", "feature_weight"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ParameterError(f"cold start: {name}={value} must be a positive number")
        if not (np.isfinite(self.shrinkage) and self.shrinkage >= 0):
            raise ParameterError(f"cold start: shrinkage={self.shrinkage} must be at least 0")


def ridge_map(
    features: sp.csr_matrix,
    factors: np.ndarray,
    regularization: float,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """``W`` (n_features, n_factors) minimising ``Σ_i s_i ‖F_i W − V_i‖² + λ‖W‖²``, float32.

    ``sample_weight`` (``s``, default 1) says how much each row's factors are to be trusted.

    Solved in the smaller of its two forms: ``(FᵀF + λI)⁻¹ FᵀV`` when there are fewer features
    than rows, ``Fᵀ(FFᵀ + λI)⁻¹V`` otherwise (the same ``W``, by the push-through identity).
    """
    if regularization <= 0:
        raise ParameterError(f"ridge map: regularization={regularization} must be positive")
    n_rows, n_features = features.shape
    if factors.shape[0] != n_rows:
        raise ParameterError(f"ridge map: {n_rows} feature rows but {factors.shape[0]} factor rows")
    f = sp.csr_matrix(features, dtype=np.float64)
    v = np.asarray(factors, dtype=np.float64)
    if sample_weight is not None:
        root = np.sqrt(np.asarray(sample_weight, dtype=np.float64))
        if root.shape != (n_rows,) or not np.isfinite(root).all():
            raise ParameterError("ridge map: sample_weight needs one finite weight >= 0 per row")
        f = sp.csr_matrix(sp.diags(root) @ f)
        v = root[:, None] * v
    if n_features <= n_rows:
        gram = (f.T @ f).toarray()
        gram[np.diag_indices_from(gram)] += regularization
        w = scipy.linalg.solve(gram, np.asarray(f.T @ v), assume_a="pos")
    else:
        gram = (f @ f.T).toarray()
        gram[np.diag_indices_from(gram)] += regularization
        w = np.asarray(f.T @ scipy.linalg.solve(gram, v, assume_a="pos"))
    return w.astype(np.float32)


def mapped_factors(features: sp.csr_matrix, weights: np.ndarray) -> np.ndarray:
    """Factors of rows from their features alone: ``features @ W``, float32."""
    return np.asarray(features @ weights, dtype=np.float32)


def blend_factors(
    learned: np.ndarray, mapped: np.ndarray, counts: np.ndarray, shrinkage: float
) -> np.ndarray:
    """``w·learned + (1 − w)·mapped`` per row with ``w = counts / (counts + shrinkage)``.

    A row with no interactions takes its mapped factors exactly; ``shrinkage = 0`` keeps every
    row that has any interaction as learned.
    """
    if shrinkage < 0:
        raise ParameterError(f"cold start: shrinkage={shrinkage} must be at least 0")
    counts = np.asarray(counts, dtype=np.float64)
    denominator = counts + shrinkage
    w = np.divide(counts, denominator, out=np.zeros_like(counts), where=denominator > 0)
    w = w.astype(np.float32)[:, None]
    return (w * learned + (1 - w) * mapped).astype(np.float32)
