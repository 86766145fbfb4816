"""Top-k ranking of score rows: batched, with exclusions, ties broken by the lower item index."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.errors import ParameterError

__all__ = ["ScoreBatch", "batch_rows", "top_k", "top_k_batched"]

#: Scores of rows ``start:stop``: a dense float array of shape (stop - start, n_items).
ScoreBatch = Callable[[int, int], np.ndarray]

#: Bytes of dense scores one batch may hold; keeps memory flat whatever the user count.
DEFAULT_BATCH_BYTES = 64 * 2**20


def batch_rows(n_items: int, batch_bytes: int = DEFAULT_BATCH_BYTES) -> int:
    """How many score rows of ``n_items`` float32 values fit in ``batch_bytes``."""
    return max(1, batch_bytes // (4 * max(n_items, 1)))


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of each row, best first, and their scores.

    Ties go to the lower item index. Items scored ``-inf`` count as excluded: where a row has
    fewer than ``k`` others, the tail is padded with item ``-1`` and score ``-inf``.
    """
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    scores = np.asarray(scores)
    if scores.dtype.kind != "f":  # negating unsigned scores would wrap around
        scores = scores.astype(np.float64)
    n_items = scores.shape[1]
    k_eff = min(k, n_items)
    if k_eff < n_items:
        idx = np.argpartition(scores, n_items - k_eff, axis=1)[:, n_items - k_eff :]
        vals = np.take_along_axis(scores, idx, axis=1)
        # argpartition picks arbitrarily among items tied with the k-th score; redo such rows.
        kth = vals.min(axis=1, keepdims=True)
        n_tied = np.count_nonzero(scores == kth, axis=1)
        ambiguous = np.flatnonzero(n_tied != np.count_nonzero(vals == kth, axis=1))
        if ambiguous.size:
            sub = scores[ambiguous]
            columns = np.broadcast_to(np.arange(n_items), sub.shape)
            idx[ambiguous] = np.lexsort((columns, -sub), axis=-1)[:, :k_eff]
            vals[ambiguous] = np.take_along_axis(sub, idx[ambiguous], axis=1)
    else:
        idx = np.broadcast_to(np.arange(n_items), scores.shape).copy()
        vals = scores.copy()
    order = np.lexsort((idx, -vals), axis=-1)
    idx = np.take_along_axis(idx, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    idx[np.isneginf(vals)] = -1
    if k_eff < k:
        idx = np.pad(idx, ((0, 0), (0, k - k_eff)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return idx, vals


def top_k_batched(
    score_batch: ScoreBatch,
    n_rows: int,
    n_items: int,
    k: int,
    *,
    exclude_rows: sp.csr_matrix | None = None,
    exclude_items: np.ndarray | None = None,
    allow_items: np.ndarray | None = None,
    batch_size: int | None = None,
    n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items of ``n_rows`` score rows computed batch by batch.

    ``exclude_rows`` (one CSR row per score row, e.g. what each user already bought) and
    ``exclude_items`` (for everybody) are never returned; when ``allow_items`` is given only
    those items can be. With ``n_threads`` > 1 batches run on a thread pool with BLAS capped
    at one thread each, so the cores are not oversubscribed.
    """
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    if exclude_rows is not None and exclude_rows.shape != (n_rows, n_items):
        raise ParameterError(
            f"exclude_rows has shape {exclude_rows.shape}, expected {(n_rows, n_items)}"
        )
    banned = np.zeros(n_items, dtype=bool)
    if exclude_items is not None:
        banned[np.asarray(exclude_items, dtype=np.int64)] = True
    if allow_items is not None:
        allowed = np.zeros(n_items, dtype=bool)
        allowed[np.asarray(allow_items, dtype=np.int64)] = True
        banned |= ~allowed
    banned_items = np.flatnonzero(banned)
    size = batch_size or batch_rows(n_items)
    items = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)

    def run(start: int) -> None:
        stop = min(start + size, n_rows)
        batch = np.array(score_batch(start, stop), dtype=np.float32, copy=True)
        if banned_items.size:
            batch[:, banned_items] = -np.inf
        if exclude_rows is not None:
            seen = exclude_rows[start:stop]
            batch[np.repeat(np.arange(stop - start), np.diff(seen.indptr)), seen.indices] = -np.inf
        items[start:stop], scores[start:stop] = top_k(batch, k)

    starts = range(0, n_rows, size)
    if n_threads <= 1 or len(starts) <= 1:
        for start in starts:
            run(start)
    else:
        with threadpool_limits(1, "blas"), ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(run, starts))
    return items, scores
