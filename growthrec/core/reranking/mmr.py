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
    """Fill ``builder``'s lists by MMR; ``block`` holds the candidates' similarity rows.

    The gains are kept whole and lowered after each pick: ``min(gain, λ r − (1 − λ) sim)``
    equals ``λ r − (1 − λ) max sim``, one pass per step instead of two. (Category similarity
    is never negative, so there the empty list's 0 may stay in the minimum.)
    """
    weighted = ((1.0 - strength) * relevance).astype(np.float32)
    gains = weighted.copy()  # no item chosen yet: nothing to be similar to
    penalty = np.float32(strength)
    for step in range(builder.positions.shape[1]):
        chosen, found = builder.take(step, gains)
        if not found.any() or step == builder.positions.shape[1] - 1:
            break
        if block.ndim == 2:  # one category per item: similarity 1 within it, else 0
            code = block[builder.rows, chosen][:, None]
            same = (block == code) & (code >= 0)
            np.minimum(gains, np.where(same, weighted - penalty, np.inf), out=gains)
        elif step == 0:  # cosine may be negative: the first pick's similarity replaces the 0
            gains = weighted - penalty * similarity_to(block, chosen)
        else:
            np.minimum(gains, weighted - penalty * similarity_to(block, chosen), out=gains)
