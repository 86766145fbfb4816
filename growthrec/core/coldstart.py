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

    # Measured on the cold-items protocol (ml-latest-small, Online Retail; svd and als):
    # a penalty of 3 (a feature seen on fewer than ~3 warm items is mostly shrunk away) was
    # best or near it on both; a shrinkage of 0.5 keeps the warm task within 0.6% of the
    # backend without features (2 cost svd 1.1% and als 2.5% on ml-latest-small).
    regularization: float = 3.0
    shrinkage: float = 0.5
    feature_weight: float = 1.0

    def __attrs_post_init__(self) -> None:
        for name in ("regularization", "feature_weight"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ParameterError(f"cold start: {name}={value} must be a positive number")
        if not (np.isfinite(self.shrinkage) and self.shrinkage >= 0):
            raise ParameterError(f"cold start: shrinkage={self.shrinkage} must be at least 0")


#: Below this many unknowns per side the dense solve is the cheapest (a few ms).
DENSE_LIMIT = 1024
#: Relative residual at which the conjugate-gradient solve stops (each factor column): about
#: float32's precision for sums of thousands of terms.
CG_TOLERANCE = 1e-5
#: Most conjugate-gradient steps (about 30 at MovieLens-20M shape with a 5,000-word title
#: vocabulary; a tiny ``regularization`` needs more).
CG_MAX_STEPS = 1000


def ridge_map(
    features: sp.csr_matrix,
    factors: np.ndarray,
    regularization: float,
    sample_weight: np.ndarray | None = None,
    *,
    dense_limit: int = DENSE_LIMIT,
) -> np.ndarray:
    """``W`` (n_features, n_factors) minimising ``Σ_i s_i ‖F_i W − V_i‖² + λ‖W‖²``, float32.

    ``sample_weight`` (``s``, default 1) says how much each row's factors are to be trusted.

    Small problems are solved directly in the smaller of the two forms: ``(FᵀF + λI)⁻¹ FᵀV``
    or ``Fᵀ(FFᵀ + λI)⁻¹V`` (the same ``W``, by the push-through identity). When both sides
    exceed ``dense_limit`` (a text vocabulary of thousands of words over thousands of items),
    the dense solve would cost seconds, so ``(FᵀF + λI) W = FᵀV`` is solved by conjugate
    gradients on all factor columns at once, multiplying by the sparse ``F`` and ``Fᵀ`` and
    never forming the Gram matrix: each step costs two passes over the features' nonzeros.
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
    if min(n_rows, n_features) > dense_limit:
        return _ridge_cg(f, v, regularization)
    if n_features <= n_rows:
        gram = (f.T @ f).toarray()
        gram[np.diag_indices_from(gram)] += regularization
        w = scipy.linalg.solve(gram, np.asarray(f.T @ v), assume_a="pos")
    else:
        gram = (f @ f.T).toarray()
        gram[np.diag_indices_from(gram)] += regularization
        w = np.asarray(f.T @ scipy.linalg.solve(gram, v, assume_a="pos"))
    return w.astype(np.float32)


def _ridge_cg(f: sp.csr_matrix, v: np.ndarray, regularization: float) -> np.ndarray:
    """``(FᵀF + λI)⁻¹ FᵀV`` by conjugate gradients, one system per column of ``V``, all
    stepped together in float32 (the map is stored in float32: its last digits are noise).

    Preconditioned by the diagonal (a feature's squared column norm + λ), which evens out
    features as common as a genre and as rare as one word. Stops when every column's residual
    is below ``CG_TOLERANCE`` of its right-hand side, or after ``CG_MAX_STEPS``.
    """
    f = sp.csr_matrix(f, dtype=np.float32)
    ft = f.T.tocsr()
    lam = np.float32(regularization)
    diagonal = (np.asarray(f.multiply(f).sum(axis=0)).ravel() + lam).astype(np.float32)[:, None]

    def gram_times(p: np.ndarray) -> np.ndarray:
        return ft @ (f @ p) + lam * p

    rhs = np.asarray(ft @ v.astype(np.float32), dtype=np.float32)
    w = rhs / diagonal
    residual = rhs - gram_times(w)
    goal = CG_TOLERANCE * np.linalg.norm(rhs, axis=0)
    z = residual / diagonal
    direction = z.copy()
    rz = np.einsum("ij,ij->j", residual, z)
    for _ in range(min(f.shape[1], CG_MAX_STEPS)):
        if np.all(np.linalg.norm(residual, axis=0) <= goal):
            break
        product = gram_times(direction)
        curvature = np.einsum("ij,ij->j", direction, product)
        step = np.divide(rz, curvature, out=np.zeros_like(rz), where=curvature > 0)
        w += step * direction
        residual -= step * product
        z = residual / diagonal
        rz_next = np.einsum("ij,ij->j", residual, z)
        beta = np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0)
        direction = z + beta * direction
        rz = rz_next
    return w


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
