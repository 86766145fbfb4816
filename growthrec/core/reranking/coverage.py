"""Coverage boosts: per-item relevance raises that bring items no list shows into one.

Catalogue coverage is a property of every customer's list at once, but a served list must
depend on its customer alone. The bridge is a price per item (the dual of the covering problem
of Antikacioglu & Ravi 2017, "Post processing recommender systems for diversity"): each round
ranks every customer's candidates with the boosts so far, and every candidate item that no list
shows has its boost raised by ``COVERAGE_STEP``, up to ``coverage``. An item therefore enters
the lists of the customers for whom it was closest to the top N first, which is where it costs
least accuracy, and stops rising once it is shown. The boosts are then a fixed table per model
and settings, so one customer's list is the same in a request, an export and an evaluation.

The popularity penalty pushes every customer towards the same rare items; the boosts push each
unseen item towards the customers nearest to wanting it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from growthrec.core.reranking.rerank import rerank
from growthrec.core.reranking.rules import Cap
from growthrec.core.reranking.spec import RerankSpec
from growthrec.errors import ParameterError

__all__ = ["COVERAGE_STEP", "coverage_boosts"]

#: How much an unshown item's boost grows a round. Small steps let an item enter only the lists
#: of the customers nearest to wanting it: on Online Retail a largest boost of 0.6 reached in
#: steps of 0.02 widened coverage by +61%, in steps of 0.03 by +53%, at the same accuracy.
COVERAGE_STEP = 0.02


def coverage_boosts(
    candidates: np.ndarray,
    scores: np.ndarray,
    n: int,
    spec: RerankSpec,
    n_items: int,
    *,
    step: float = COVERAGE_STEP,
    caps: Sequence[Cap] = (),
    **context: object,
) -> np.ndarray:
    """(n_items,) float64 boosts for ``spec.coverage``, from every customer's ``candidates``
    and ``scores`` (as ``rerank`` takes them; ``context``: its similarity, categories,
    popularity). 0 for an item some list shows from the start or that is nobody's candidate.

    Each round lists the top ``n`` under ``spec`` with the boosts so far and raises the boost
    of each candidate item no list shows by ``step`` (the last step short, so that the
    largest boost is ``spec.coverage``): ``ceil(coverage / step)`` rounds, fewer once every
    candidate item is shown.
    """
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step <= 1:
        raise ParameterError(f"coverage: step={step!r} must be a number in (0, 1]")
    candidates = np.asarray(candidates, dtype=np.int64)
    boosts = np.zeros(int(n_items), dtype=np.float64)
    if spec.coverage <= 0 or candidates.size == 0:
        return boosts
    if candidates.max() >= n_items:
        raise ParameterError(
            f"coverage: candidate item {candidates.max()} is outside the {n_items} items"
        )
    reachable = np.zeros(boosts.size, dtype=bool)
    reachable[candidates[(candidates >= 0) & ~np.isneginf(scores)]] = True
    rounds = math.ceil(spec.coverage / step - 1e-9)
    for _ in range(rounds):
        lists = rerank(candidates, scores, n, spec, boosts=boosts, caps=caps, **context).items
        unshown = reachable.copy()
        unshown[lists[lists >= 0]] = False
        if not unshown.any():
            break
        boosts[unshown] = np.minimum(boosts[unshown] + step, spec.coverage)
    return boosts
