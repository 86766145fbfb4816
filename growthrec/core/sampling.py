"""Sampled-negative evaluation: rank each user's held-out items among a few random other items.

The NCF paper's protocol (He et al., 2017) ranks each held-out item among 100 items the user
never bought. It is cheap and it is easier than ranking the whole catalogue, so its numbers are
higher and not comparable with full-ranking ones; results made this way must say so.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from growthrec.core.ranking import top_k
from growthrec.core.seeds import Seed, resolve_rng
from growthrec.errors import ParameterError

__all__ = ["candidate_items", "candidate_scores", "rank_candidates", "sample_candidates"]

#: Random draws held at once while sampling; bounds memory whatever the number of users.
_DRAW_BUDGET = 2**22
#: Cells of the dense (rows x items) mask used for users who get every available item.
_MASK_BUDGET = 2**24


def _pattern(matrix: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """The stored entries of ``matrix`` as a canonical CSR of ones (sorted, no repeats)."""
    m = sp.csr_matrix(matrix)
    ones = np.ones(m.indices.size, np.int32)
    # Copies: sum_duplicates sorts in place, and the caller's arrays must stay as they are.
    out = sp.csr_matrix((ones, m.indices.copy(), m.indptr.copy()), shape=m.shape)
    out.sum_duplicates()  # also sorts each row's indices
    return out


def _keys(pattern: sp.csr_matrix) -> np.ndarray:
    """``row * n_items + item`` of each entry; ascending for a canonical matrix."""
    rows = np.repeat(np.arange(pattern.shape[0], dtype=np.int64), np.diff(pattern.indptr))
    return rows * pattern.shape[1] + pattern.indices


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def _every_available(rows: np.ndarray, forbidden: np.ndarray, n_items: int) -> np.ndarray:
    """Keys of every item not in ``forbidden`` for each of ``rows``, a block of rows at a time."""
    out = []
    size = max(1, _MASK_BUDGET // max(n_items, 1))
    for start in range(0, rows.size, size):
        block = rows[start : start + size]
        lo, hi = np.searchsorted(forbidden, [block[0] * n_items, (block[-1] + 1) * n_items])
        keys = forbidden[lo:hi]
        position = np.full(int(block[-1] - block[0]) + 1, -1, dtype=np.int64)
        position[block - block[0]] = np.arange(block.size)
        at = position[keys // n_items - block[0]]
        mask = np.ones((block.size, n_items), dtype=bool)
        mask[at[at >= 0], (keys % n_items)[at >= 0]] = False
        r, c = np.nonzero(mask)
        out.append(block[r] * n_items + c)
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def _draws_needed(need: np.ndarray, available: np.ndarray, n_items: int) -> np.ndarray:
    # Expected uniform draws over the catalogue to collect `need` new items out of `available`
    # (a coupon collector's partial sum, n * ln(a / (a - need))), with a margin.
    expected = n_items * np.log((available + 0.5) / (available - need + 0.5))
    return np.ceil(1.1 * expected).astype(np.int64) + 8


def _sample_rows(
    rows: np.ndarray,
    take: np.ndarray,
    available: np.ndarray,
    forbidden: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Keys of ``take[j]`` distinct non-forbidden items drawn uniformly for each ``rows[j]``.

    Rejection sampling in rounds over all rows at once: each row draws about as many items as it
    should need, keeps the first new, allowed ones in draw order, and rows still short go again.
    Keeping draws in order makes each row's sample a uniform subset of its available items.
    """
    out = []
    first = 0
    while first < rows.size:
        # A chunk of rows whose first round fits in the draw budget (at least one row).
        cost = np.cumsum(_draws_needed(take[first:], available[first:], n_items))
        stop = first + max(1, int(np.searchsorted(cost, _DRAW_BUDGET, side="right")))
        chunk = rows[first:stop]
        need = take[first:stop].copy()
        left = available[first:stop].copy()
        chosen = np.empty(0, dtype=np.int64)
        lo, hi = np.searchsorted(forbidden, [chunk[0] * n_items, (chunk[-1] + 1) * n_items])
        barred = forbidden[lo:hi]
        while (short := np.flatnonzero(need > 0)).size:
            n_draws = _draws_needed(need[short], left[short], n_items)
            owner = np.repeat(short, n_draws)
            keys = chunk[owner] * n_items + rng.integers(0, n_items, size=owner.size)
            # Sorted draws make the lookups cache-friendly; a stable sort keeps draw order among
            # repeats of an item, so only its first draw can count.
            order = np.argsort(keys, kind="stable")
            ordered = keys[order]
            rejected = _contains(barred, ordered) | _contains(chosen, ordered)
            rejected[1:] |= ordered[1:] == ordered[:-1]
            ok = np.empty(keys.size, dtype=bool)
            ok[order] = ~rejected
            # Keep each row's first need[row] accepted draws.
            accepted = np.cumsum(ok)
            group_end = np.cumsum(n_draws) - 1
            before = np.repeat(np.r_[0, accepted[group_end][:-1]], n_draws)
            ok &= accepted - before <= need[owner]
            new = keys[ok]
            got = np.bincount(owner[ok], minlength=chunk.size)
            need -= got
            left -= got
            chosen = np.sort(np.concatenate([chosen, new]))
        out.append(chosen)
        first = stop
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def sample_candidates(
    truth: sp.csr_matrix, exclude: sp.csr_matrix, n_negatives: int = 100, seed: Seed = None
) -> np.ndarray:
    """Each user's candidates: their held-out items plus ``n_negatives`` random other items.

    For each row of ``truth`` with at least one held-out item, the negatives are distinct items
    drawn uniformly from those the user has neither in ``exclude`` (what they bought in train)
    nor in ``truth``; a user with fewer such items than ``n_negatives`` gets all of them. Rows
    hold their candidates in ascending item order, padded with -1; rows without truth are all
    -1. The width is the longest row's. Seeded: the same arguments give the same candidates.
    """
    if int(n_negatives) != n_negatives or n_negatives < 1:
        raise ParameterError(f"n_negatives={n_negatives} must be a whole number of at least 1")
    n_negatives = int(n_negatives)
    if truth.shape != exclude.shape:
        raise ParameterError(
            f"truth has shape {truth.shape} but exclude has {exclude.shape}; they must match"
        )
    rng = resolve_rng(seed)
    n_rows, n_items = truth.shape
    held = _pattern(truth)
    barred = held + _pattern(exclude)  # the union: a canonical merge, no global sort
    barred.sort_indices()
    forbidden = _keys(barred)
    tested = np.diff(held.indptr) > 0
    available = n_items - np.diff(barred.indptr)
    take = np.minimum(available, n_negatives)
    everything = np.flatnonzero(tested & (available <= n_negatives))
    sampled = np.flatnonzero(tested & (available > n_negatives))
    negatives = np.concatenate(
        [
            _every_available(everything, forbidden, n_items),
            _sample_rows(sampled, take[sampled], available[sampled], forbidden, n_items, rng),
        ]
    )
    rows, items = np.divmod(negatives, max(n_items, 1))
    ones = np.ones(negatives.size, np.int32)
    candidates = held + sp.csr_matrix((ones, (rows, items)), shape=truth.shape)
    candidates.sort_indices()
    counts = np.diff(candidates.indptr)
    out = np.full((n_rows, int(counts.max(initial=0))), -1, dtype=np.int64)
    row_of = np.repeat(np.arange(n_rows), counts)
    out[row_of, np.arange(row_of.size) - candidates.indptr[row_of]] = candidates.indices
    return out


def _ascending(candidates: np.ndarray) -> np.ndarray:
    """Each row's candidates in ascending order, the -1 padding moved to the end."""
    big = np.iinfo(np.int64).max
    ordered = np.sort(np.where(candidates >= 0, candidates, big), axis=1)
    return np.where(ordered == big, -1, ordered)


def candidate_scores(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The score of each candidate: ``scores[u, candidates[u, j]]``, ``-inf`` for -1 padding.

    With candidates in ascending item order (as ``sample_candidates`` gives them), ranking the
    result with ``top_k`` breaks ties by the lower item index, as full ranking does.
    """
    scores = np.asarray(scores)
    valid = candidates >= 0
    gathered = np.take_along_axis(scores, np.where(valid, candidates, 0), axis=1)
    gathered = gathered.astype(np.result_type(gathered.dtype, np.float32))
    gathered[~valid] = -np.inf
    return gathered


def candidate_items(candidates: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Item indices of ranked candidate columns (``top_k`` of ``candidate_scores``); -1 stays."""
    items = np.take_along_axis(candidates, np.maximum(columns, 0), axis=1)
    return np.where(columns >= 0, items, -1)


def rank_candidates(
    scores: np.ndarray, candidates: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indices (and scores) of each row among its candidates only.

    ``scores`` are full rows (users x items); ``candidates`` holds item indices per row, padded
    with -1, in any order. The items returned are catalogue indices, usable by the metrics as
    they are; ties go to the lower item index; rows with fewer than ``k`` candidates are padded
    with -1 (and ``-inf``).
    """
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    candidates = np.asarray(candidates, dtype=np.int64)
    scores = np.asarray(scores)
    if candidates.ndim != 2 or candidates.shape[0] != scores.shape[0]:
        raise ParameterError(
            f"candidates has shape {candidates.shape}; expected one row per score row "
            f"({scores.shape[0]})"
        )
    if candidates.size and candidates.max() >= scores.shape[1]:
        raise ParameterError(
            f"candidate item {candidates.max()} is outside 0..{scores.shape[1] - 1}"
        )
    ordered = _ascending(candidates)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise ParameterError("a candidate row names the same item twice")
    if ordered.shape[1] == 0:
        return np.full((scores.shape[0], k), -1, np.int64), np.full((scores.shape[0], k), -np.inf)
    columns, values = top_k(candidate_scores(scores, ordered), k)
    return candidate_items(ordered, columns), values
