"""Greedy MAP inference of a DPP (Chen, Zhang & Zhou, NeurIPS 2018), batched over users.

The kernel is ``L = diag(q) · S · diag(q)`` with ``q_i = exp(α · r_i)``, ``α = θ / (2(1 − θ))``
and ``θ = 1 − strength``, so that ``log det L_Y = θ/(1−θ) · Σ r + log det S_Y`` (the paper's
trade-off). ``S`` is the cosine similarity with a small ridge, ``(1 − ε) S + ε I``, so that a
list can grow past the number of independent directions (one item per category) by relevance.
Because ``L``'s Cholesky factor is ``diag(q)`` times ``S``'s, the incremental Cholesky runs on
``S`` alone and each step picks ``argmax 2α r_i + log d_i²``: exact, and no ``exp`` overflows.
Per user this is ``O(N² M)`` plus the similarity rows; with ``window`` (Chen's Algorithm 2) the
items need only be diverse from the ``window − 1`` items chosen last.
"""

from __future__ import annotations

import numpy as np

from growthrec.core.reranking.rules import ListBuilder
from growthrec.core.reranking.similarity import similarity_to

__all__ = ["DPP_RIDGE", "dpp_lists"]

#: ``ε`` of the ridge ``(1 − ε) S + ε I``: items of one category keep a small gain.
DPP_RIDGE = 1e-3
#: Floor of ``d_i²`` before its log (rounding can leave a chosen direction a hair below 0).
_TINY = 1e-300


def _extend(c: np.ndarray, d2: np.ndarray, t: int, row: np.ndarray, chosen: np.ndarray) -> None:
    """Add the chosen candidate (its kernel ``row``) to the Cholesky rows ``c[:, :t]``."""
    rows = np.arange(c.shape[0])
    valid = chosen >= 0
    at = np.where(valid, chosen, 0)
    projection = np.einsum("btm,bt->bm", c[:, :t], c[rows, :t, at]) if t else 0.0
    scale = np.sqrt(np.maximum(d2[rows, at], _TINY))
    e = np.where(valid[:, None], (row - projection) / scale[:, None], 0.0)
    c[:, t] = e
    d2 -= e * e


def dpp_lists(
    relevance: np.ndarray,
    block: np.ndarray,
    builder: ListBuilder,
    strength: float,
    window: int | None = None,
    ridge: float = DPP_RIDGE,
) -> None:
    """Fill ``builder``'s lists by greedy DPP MAP inference (``strength`` > 0)."""
    b, m = relevance.shape
    n = builder.positions.shape[1]
    # 2α r; past 1e12 (strength below 1e-12) the order is the relevance order anyway.
    factor = min((1.0 - strength) / strength, 1e12)
    quality = factor * relevance
    depth = n if window is None else min(n, window - 1)
    c = np.zeros((b, depth, m))
    d2 = np.ones((b, m))
    kernel_rows = np.zeros((b, n, m))
    rows = np.arange(b)
    for step in range(n):
        chosen, found = builder.take(step, quality + np.log(np.maximum(d2, _TINY)))
        if not found.any() or step == n - 1:
            break
        row = (1.0 - ridge) * similarity_to(block, chosen)
        row[rows, chosen] = 1.0
        kernel_rows[:, step] = row
        if window is None or step < depth:
            _extend(c, d2, step, row, np.where(found, chosen, -1))
            continue
        # Sliding window: condition on the last window - 1 items only, rebuilt from their rows.
        c[:] = 0.0
        d2[:] = 1.0
        for t, past in enumerate(range(step - depth + 1, step + 1)):
            _extend(c, d2, t, kernel_rows[:, past], builder.positions[:, past])
