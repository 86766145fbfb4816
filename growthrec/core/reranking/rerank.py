"""The re-ranking stage: a user's candidates and their scores in, the top N out, in one pass.

The popularity penalty and the coverage boosts adjust relevance first; then MMR, the DPP or
calibration fills each list a position at a time, under the caps, batched over users (a
Python loop runs over the N positions, never over users). Lists that rules leave short end in
-1 padding and say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.core.ranking import top_k
from growthrec.core.reranking.calibration import calibration_lists
from growthrec.core.reranking.dpp import dpp_lists
from growthrec.core.reranking.mmr import mmr_lists
from growthrec.core.reranking.relevance import log_popularity, penalised_relevance
from growthrec.core.reranking.rules import Cap, ListBuilder, mask_candidates
from growthrec.core.reranking.similarity import CategoryTable, SimilarityTable, gather_similarity
from growthrec.core.reranking.spec import RerankSpec
from growthrec.errors import ParameterError

__all__ = ["RERANK_BATCH_BYTES", "Reranked", "rerank"]

#: Bytes of one batch's temporaries: small enough that a batch stays in cache over N steps.
RERANK_BATCH_BYTES = 4 * 2**20

_array_eq = attrs.cmp_using(eq=np.array_equal)


@attrs.frozen
class Reranked:
    """Re-ranked lists: ``items`` (n_users, N) int64, -1 padded; ``scores`` (n_users, N), what
    each item won its place with (relevance for the plain order, else the re-ranker's marginal
    objective; -inf for padding); ``counts`` (n_users,), the real items of each list;
    ``positions`` (n_users, N), each item's column in its row of the candidates (-1 padded)."""

    items: np.ndarray = attrs.field(eq=_array_eq)
    scores: np.ndarray = attrs.field(eq=_array_eq)
    counts: np.ndarray = attrs.field(eq=_array_eq)
    positions: np.ndarray = attrs.field(eq=_array_eq)

    @property
    def short(self) -> np.ndarray:
        """Rows whose list has fewer than N real items."""
        return np.flatnonzero(self.counts < self.items.shape[1])


def _check(
    candidates: np.ndarray,
    scores: np.ndarray,
    n: int,
    spec: RerankSpec,
    similarity: SimilarityTable | None,
    categories: CategoryTable | None,
    user_categories: np.ndarray | sp.spmatrix | None,
    popularity: np.ndarray | None,
    boosts: np.ndarray | None = None,
) -> None:
    """Every mistake a caller can make, as one line, before any work."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"rerank: n={n!r} must be an integer of at least 1")
    if candidates.ndim != 2:
        raise ParameterError(f"rerank: candidates must be 2-D (users x M), got {candidates.ndim}-D")
    if scores.shape != candidates.shape:
        raise ParameterError(
            f"rerank: scores have shape {scores.shape} but candidates {candidates.shape}"
        )
    if np.isnan(scores).any() and np.isnan(scores[candidates >= 0]).any():
        raise ParameterError("rerank: candidate scores include NaN; they cannot be ranked")
    if candidates.size and candidates.min() < -1:
        raise ParameterError(f"rerank: candidate {candidates.min()} is below -1 (-1 pads a row)")
    top = int(candidates.max()) if candidates.size else -1
    if spec.needs_similarity and similarity is None:
        if spec.similarity == "categories":
            raise ParameterError(
                f"rerank: {spec.kind} compares items by their categories, and the model has none "
                "(train with a catalogue that has a category column, or choose another similarity)"
            )
        raise ParameterError(
            f"rerank: {spec.kind} compares items by their {spec.similarity}, and there are none "
            "(choose another similarity)"
        )
    if spec.needs_categories and categories is None:
        raise ParameterError(
            f"rerank: {spec.kind} needs item categories, and the model has none "
            "(train with a catalogue that has a category column)"
        )
    if spec.kind == "calibration" and spec.strength > 0:
        if user_categories is None:
            raise ParameterError("rerank: calibration needs each customer's category history")
        if user_categories.shape != (candidates.shape[0], categories.n_categories):
            raise ParameterError(
                f"rerank: user_categories has shape {user_categories.shape}, expected "
                f"({candidates.shape[0]}, {categories.n_categories}): a row per user, a column "
                "per category"
            )
    if spec.popularity_penalty > 0 and popularity is None:
        raise ParameterError("rerank: popularity_penalty needs each item's popularity")
    if spec.coverage > 0 and boosts is None:
        raise ParameterError("rerank: coverage needs each item's boost (coverage_boosts)")
    tables = {
        "similarity": similarity.n_items
        if similarity is not None and spec.needs_similarity
        else None,
        "categories": categories.n_items
        if categories is not None and spec.needs_categories
        else None,
        "popularity": np.shape(popularity)[0] if popularity is not None else None,
        "boosts": np.shape(boosts)[0] if boosts is not None and spec.coverage > 0 else None,
    }
    for what, size in tables.items():
        if size is not None and top >= size:
            raise ParameterError(
                f"rerank: candidate item {top} is outside the {size} rows of {what}"
            )


def _check_allowed(allowed: np.ndarray, candidates: np.ndarray) -> None:
    """``allowed`` is a bool per item, or a row of them per user, covering every candidate."""
    shape = np.shape(allowed)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[0] != candidates.shape[0]):
        raise ParameterError(
            f"rerank: allowed has shape {shape}; expected (n_items,) or "
            f"({candidates.shape[0]}, n_items)"
        )
    top = int(candidates.max()) if candidates.size else -1
    if top >= shape[-1]:
        raise ParameterError(f"rerank: candidate item {top} is outside the {shape[-1]} of allowed")


def _batch_rows(spec: RerankSpec, m: int, n: int, width: int, k: int, n_categories: int) -> int:
    """Users per batch so that one batch's temporaries stay within ``RERANK_BATCH_BYTES``."""
    per_user = 8 * m * (2 * n + 8) + 4 * m * width
    if spec.kind == "calibration":
        per_user += 8 * (6 * m * k + 4 * n_categories)
    return max(1, RERANK_BATCH_BYTES // per_user)


def rerank(
    candidates: np.ndarray,
    scores: np.ndarray,
    n: int,
    spec: RerankSpec | None = None,
    *,
    similarity: SimilarityTable | None = None,
    categories: CategoryTable | None = None,
    user_categories: np.ndarray | sp.spmatrix | None = None,
    popularity: np.ndarray | None = None,
    boosts: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    caps: Sequence[Cap] = (),
) -> Reranked:
    """The top ``n`` of each row of ``candidates`` (n_users, M; item indices, -1 padded, no
    repeats) by ``scores`` (same shape; -inf excludes a candidate), re-ranked as ``spec`` says.

    ``similarity`` serves MMR and the DPP, ``categories`` and ``user_categories`` (each user's
    category distribution, ``user_category_distribution``) calibration, ``popularity`` (buyers
    per item) the penalty, ``boosts`` (per item, ``coverage_boosts``) coverage. ``allowed``
    (per item, or per user and item) drops candidates before anything else; ``caps`` limit
    items per group while lists fill.
    """
    spec = RerankSpec() if spec is None else spec
    candidates = np.asarray(candidates, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    _check(candidates, scores, n, spec, similarity, categories, user_categories, popularity, boosts)
    if allowed is not None:
        _check_allowed(allowed, candidates)
        candidates = mask_candidates(candidates, allowed)
    candidates = np.where(np.isneginf(scores), -1, candidates)
    n_users, m = candidates.shape
    logpop = log_popularity(popularity) if spec.popularity_penalty > 0 else None
    boosts = np.asarray(boosts, dtype=np.float64) if spec.coverage > 0 else None
    plain = spec.kind == "none" or spec.strength == 0
    width = similarity.width if similarity is not None and spec.needs_similarity else 0
    k = categories.codes.shape[1] if categories is not None else 1
    c = categories.n_categories if categories is not None else 0
    size = _batch_rows(spec, m, n, width, k, c) if not (plain and not caps) else 8192
    items = np.full((n_users, n), -1, dtype=np.int64)
    columns = np.full((n_users, n), -1, dtype=np.int64)
    values = np.full((n_users, n), -np.inf)
    for start in range(0, n_users, size):
        stop = min(start + size, n_users)
        batch = candidates[start:stop]
        if plain and spec.popularity_penalty == 0 and boosts is None:
            relevance = np.where(batch >= 0, scores[start:stop], -np.inf)
        else:
            relevance = penalised_relevance(
                scores[start:stop], batch, spec.popularity_penalty, logpop
            )
            if boosts is not None:  # -inf padding stays -inf
                relevance = relevance + boosts[np.where(batch >= 0, batch, 0)]
        if plain and not caps:
            positions, gains = top_k(relevance, min(n, m))  # ties: the earlier candidate
        else:
            builder = ListBuilder(batch, n, caps)  # never takes padding, so its relevance is moot
            relevance = np.where(batch >= 0, relevance, 0.0)
            if plain:
                for step in range(n):
                    if not builder.take(step, relevance)[1].any():
                        break
            elif spec.kind == "calibration":
                safe = np.where(batch >= 0, batch, 0)
                target = user_categories[start:stop]
                target = target.toarray() if sp.issparse(target) else np.asarray(target, float)
                calibration_lists(
                    relevance,
                    categories.codes[safe],
                    categories.weights[safe],
                    target,
                    builder,
                    spec.strength,
                )
            else:
                block = gather_similarity(similarity, batch)
                if spec.kind == "mmr":
                    mmr_lists(relevance, block, builder, spec.strength, spec.aggregate)
                else:
                    dpp_lists(relevance, block, builder, spec.strength, spec.window)
            positions, gains = builder.positions, builder.gains
        found = positions >= 0
        width_n = positions.shape[1]
        picked = np.take_along_axis(batch, np.where(found, positions, 0), axis=1)
        items[start:stop, :width_n] = np.where(found, picked, -1)
        columns[start:stop, :width_n] = np.where(found, positions, -1)
        values[start:stop, :width_n] = np.where(found, gains, -np.inf)
    counts = (items >= 0).sum(axis=1)
    return Reranked(items=items, scores=values, counts=counts, positions=columns)
