"""Maximal marginal relevance (Carbonell & Goldstein 1998), one batch of users at a time.

Each position goes to the candidate maximising ``λ · relevance − (1 − λ) · max similarity to the
items already chosen``, with ``λ = 1 − strength`` and relevance in [0, 1] per user.
"""

from __future__ import annotations

import numpy as np

from growthrec.core.reranking.rules import ListBuilder
from growthrec.core.reranking.similarity import similarity_to

__all__ = ["mmr_lists"]


def mmr_lists(
    relevance: np.ndarray, block: np.ndarray, builder: ListBuilder, strength: float
) -> None:
    """Fill ``builder``'s lists by MMR; ``block`` holds the candidates' similarity rows."""
    weight = 1.0 - strength
    nearest = np.zeros_like(relevance)  # no item chosen yet: nothing to be similar to
    for step in range(builder.positions.shape[1]):
        chosen, found = builder.take(step, weight * relevance - strength * nearest)
        if not found.any():
            break
        similar = similarity_to(block, chosen)
        nearest = similar if step == 0 else np.maximum(nearest, similar)
