"""Maximal marginal relevance (Carbonell & Goldstein 1998), one batch of users at a time.

Each position goes to the candidate maximising ``λ · relevance − (1 − λ) · max similarity to the
items already chosen``, with ``λ = 1 − strength`` and relevance in [0, 1] per user.

With ``aggregate="mean"`` the penalty is the *mean* similarity to the items already chosen
instead of the largest: the greedy of Ziegler et al. 2005 ("topic diversification") and of
Vargas & Castells 2011 (MMR with average similarity). Intra-list diversity is the mean pairwise
distance of a list, and each pick of this greedy adds to it exactly the mean distance it is
credited with; the max form stops telling candidates apart once every one is near *some*
chosen item (with a few categories, after the first few picks), so the rest fill by relevance.
"""

from __future__ import annotations

import numpy as np

from growthrec.core.reranking.rules import ListBuilder
from growthrec.core.reranking.similarity import similarity_to

__all__ = ["mmr_lists"]


def mmr_lists(
    relevance: np.ndarray,
    block: np.ndarray,
    builder: ListBuilder,
    strength: float,
    aggregate: str = "max",
) -> None:
    """Fill ``builder``'s lists by MMR; ``block`` holds the candidates' similarity rows.

    ``max``: the gains are kept whole and lowered after each pick: ``min(gain, λ r − (1 − λ)
    sim)`` equals ``λ r − (1 − λ) max sim``, one pass per step instead of two. (Category
    similarity is never negative, so there the empty list's 0 may stay in the minimum.)
    ``mean``: the similarities to the chosen items are summed and divided by their count.
    """
    weighted = ((1.0 - strength) * relevance).astype(np.float32)
    gains = weighted.copy()  # no item chosen yet: nothing to be similar to
    penalty = np.float32(strength)
    total = np.zeros_like(weighted) if aggregate == "mean" else None
    n = builder.positions.shape[1]
    for step in range(n):
        chosen, found = builder.take(step, gains)
        if not found.any() or step == n - 1:
            break
        if total is not None:
            # A row whose list ended adds nothing more: its gains no longer matter.
            total += similarity_to(block, chosen)
            np.multiply(total, -penalty / np.float32(step + 1), out=gains)
            gains += weighted
        elif block.ndim == 2:  # one category per item: similarity 1 within it, else 0
            code = block[builder.rows, chosen][:, None]
            same = (block == code) & (code >= 0)
            np.minimum(gains, np.where(same, weighted - penalty, np.inf), out=gains)
        elif step == 0:  # cosine may be negative: the first pick's similarity replaces the 0
            gains = weighted - penalty * similarity_to(block, chosen)
        else:
            np.minimum(gains, weighted - penalty * similarity_to(block, chosen), out=gains)
