"""Paired comparison of two models over the same customers: per-customer NDCG and a bootstrap.

Two models ranked for the same customers give two NDCG@k values per customer; their difference
is paired (a customer easy for one model is easy for the other), so the bootstrap resamples
customers, not the two lists separately, and reads a one-sided lower confidence bound of the
mean difference off the resampled means (percentile bootstrap).
"""

from __future__ import annotations

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.core.metrics import hit_matrix
from growthrec.core.seeds import resolve_rng
from growthrec.errors import ParameterError

__all__ = ["PairedBootstrap", "ndcg_per_user", "paired_bootstrap"]

#: Resamples drawn at a time: memory stays at a few MiB of indices whatever the customer count.
_BATCH_BYTES = 16 * 2**20


def ndcg_per_user(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """NDCG@k of each row (binary relevance, gain 1/log2(rank+1)); 0 for a row without truth.

    The same definition as ``growthrec.core.metrics.ndcg_at_k``, per row instead of the mean.
    """
    hits = hit_matrix(recommended, truth)[:, :k]
    relevant = np.diff(truth.tocsr().indptr)
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    ideal = np.concatenate([[1.0], np.cumsum(discounts)])[np.minimum(relevant, k)]
    return np.where(relevant > 0, (hits * discounts[: hits.shape[1]]).sum(axis=1) / ideal, 0.0)


@attrs.frozen
class PairedBootstrap:
    """Mean of the paired differences and its one-sided lower bound at ``confidence``."""

    mean: float
    lower: float
    confidence: float
    n_pairs: int
    n_resamples: int

    def as_dict(self) -> dict[str, float | int]:
        return attrs.asdict(self)


def paired_bootstrap(
    differences: np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> PairedBootstrap:
    """Bootstrap the mean of ``differences`` (one per customer) by resampling customers.

    ``lower`` is the ``1 - confidence`` quantile of the resampled means: with 95% confidence
    the true mean difference is above it.
    """
    values = np.asarray(differences, dtype=np.float64).ravel()
    if values.size == 0:
        raise ParameterError("paired_bootstrap: no pairs to compare")
    if not 0.0 < confidence < 1.0:
        raise ParameterError(f"confidence={confidence}: expected a share between 0 and 1")
    if n_resamples < 1:
        raise ParameterError(f"n_resamples={n_resamples}: expected at least 1")
    rng = resolve_rng(seed)
    batch = max(1, _BATCH_BYTES // (8 * values.size))
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, batch):
        stop = min(start + batch, n_resamples)
        picks = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[picks].mean(axis=1)
    return PairedBootstrap(
        mean=float(values.mean()),
        lower=float(np.quantile(means, 1.0 - confidence)),
        confidence=confidence,
        n_pairs=int(values.size),
        n_resamples=int(n_resamples),
    )
