"""Relevance as the re-rankers see it: min-max scaled per user, less a popularity penalty.

Raw scores differ in scale from backend to backend, so each user's candidate scores are scaled
to [0, 1] (best 1, worst 0; all 1 when they are equal); a strength then means the same for
every backend. The popularity penalty subtracts ``beta * log(1 + n_i) / log(1 + max n)``, the
item's log popularity scaled to [0, 1], and scales the result to [0, 1] again: ``beta = 1``
lets the least popular candidate tie the best one when it is the worst and the best is the
most popular item of the catalogue.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_popularity", "min_max_rows", "penalised_relevance"]


def min_max_rows(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each row's valid scores scaled to [0, 1] (all 1 when equal); -inf where not valid."""
    low = np.where(valid, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(valid, scores, -np.inf).max(axis=1, keepdims=True)
    span = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(span > 0, (scores - low) / np.where(span > 0, span, 1.0), 1.0)
    return np.where(valid, scaled, -np.inf)


def log_popularity(popularity: np.ndarray) -> np.ndarray:
    """``log(1 + n_i) / log(1 + max n)`` per item: 0 for an item nobody bought, 1 for the top."""
    logs = np.log1p(np.asarray(popularity, dtype=np.float64))
    top = logs.max() if logs.size else 0.0
    return logs / top if top > 0 else np.zeros_like(logs)


def penalised_relevance(
    scores: np.ndarray,
    candidates: np.ndarray,
    penalty: float,
    item_log_popularity: np.ndarray | None,
) -> np.ndarray:
    """(b, M) relevance in [0, 1] after the popularity penalty; -inf for padding."""
    valid = candidates >= 0
    relevance = min_max_rows(scores.astype(np.float64), valid)
    if penalty > 0 and item_log_popularity is not None:
        pop = item_log_popularity[np.where(valid, candidates, 0)]
        relevance = min_max_rows(relevance - penalty * pop, valid)
    return relevance
