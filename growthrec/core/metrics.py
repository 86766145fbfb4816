"""Top-K ranking metrics over many users at once, with binary relevance.

``recommended`` is an (n_users, >= K) int array of item indices, best first, padded with -1;
``truth`` is a CSR matrix with one row per recommended row holding that user's held-out items.
Every mean is over the users with at least one held-out item; the exact definitions are in the
README ("Metrics").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from growthrec.errors import ParameterError

__all__ = [
    "METRIC_NAMES",
    "catalog_coverage_at_k",
    "hit_matrix",
    "hit_rate_at_k",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]

METRIC_NAMES = ("hit_rate", "precision", "recall", "ndcg", "map", "mrr", "coverage")


def hit_matrix(recommended: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """``hits[u, r]``: is the item at rank ``r`` for user ``u`` one of its held-out items."""
    recommended = np.asarray(recommended, dtype=np.int64)
    n_users, depth = recommended.shape
    if truth.shape[0] != n_users:
        raise ParameterError(f"truth has {truth.shape[0]} rows but recommendations have {n_users}")
    n_items = truth.shape[1]
    if recommended.size and recommended.max() >= n_items:
        raise ParameterError(f"recommended item {recommended.max()} is outside 0..{n_items - 1}")
    ordered = np.sort(recommended, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise ParameterError("a recommendation list names the same item twice")
    truth = truth.tocsr()
    truth.sort_indices()
    # Global sorted keys user * n_items + item turn the lookup into one searchsorted.
    truth_rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(truth.indptr))
    truth_keys = truth_rows * n_items + truth.indices
    rec_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + recommended
    if truth_keys.size == 0:
        return np.zeros((n_users, depth), dtype=bool)
    pos = np.minimum(np.searchsorted(truth_keys, rec_keys), truth_keys.size - 1)
    return (truth_keys[pos] == rec_keys) & (recommended >= 0)


def _relevant_counts(truth: sp.csr_matrix) -> np.ndarray:
    return np.diff(truth.tocsr().indptr)


def _checked(hits: np.ndarray, k: int) -> np.ndarray:
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    if k > hits.shape[1]:
        raise ParameterError(f"k={k} is deeper than the {hits.shape[1]} recommended items")
    return hits[:, :k]


def _per_user(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each metric's value per evaluated user (users with no held-out item are left out)."""
    users = n_relevant > 0
    h = _checked(hits, k)[users]
    rel = n_relevant[users].astype(np.float64)
    n_hits = h.sum(axis=1, dtype=np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(ranks + 1.0)
    ideal = np.cumsum(discounts)[np.minimum(rel, k).astype(np.int64) - 1]
    precision_at_rank = np.cumsum(h, axis=1) / ranks
    first_hit = np.where(h.any(axis=1), h.argmax(axis=1) + 1, np.inf)
    return {
        "hit_rate": (n_hits > 0).astype(np.float64),
        "precision": n_hits / k,
        "recall": n_hits / rel,
        "ndcg": (h * discounts).sum(axis=1) / ideal,
        "map": (precision_at_rank * h).sum(axis=1) / np.minimum(rel, k),
        "mrr": 1.0 / first_hit,
    }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def hit_rate_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Share of users with at least one held-out item in their top ``k``."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["hit_rate"])


def precision_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean of (held-out items in the top ``k``) / ``k``."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["precision"])


def recall_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean of (held-out items in the top ``k``) / (all the user's held-out items)."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["recall"])


def ndcg_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean of DCG@k / ideal DCG@k, gain 1 per hit discounted by log2(rank + 1)."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["ndcg"])


def map_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean average precision: sum of precision@rank at each hit, over min(k, held-out items)."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["map"])


def mrr_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean of 1 / rank of the first hit within the top ``k`` (0 without a hit)."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["mrr"])


def catalog_coverage_at_k(recommended: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue's ``n_items`` that appear in at least one user's top ``k``."""
    if n_items < 1:
        raise ParameterError(f"n_items={n_items} must be at least 1")
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    top = np.asarray(recommended)[:, :k]
    top = top[top >= 0]
    return float(np.count_nonzero(np.bincount(top, minlength=n_items))) / n_items


def ranking_metrics(
    recommended: np.ndarray, truth: sp.csr_matrix, ks: Sequence[int], n_items: int
) -> dict[int, dict[str, float]]:
    """Every metric at every ``k`` in ``ks``, as ``{k: {name: value}}``, from one hit lookup.

    Coverage counts the items recommended to the evaluated users only.
    """
    n_relevant = _relevant_counts(truth)
    hits = hit_matrix(recommended, truth)
    evaluated = np.asarray(recommended)[n_relevant > 0]
    out: dict[int, dict[str, float]] = {}
    for k in ks:
        values = {name: _mean(v) for name, v in _per_user(hits, n_relevant, k).items()}
        values["coverage"] = catalog_coverage_at_k(evaluated, n_items, k)
        out[int(k)] = values
    return out
