"""Top-k ranking of score rows: batched, with exclusions, ties broken by the lower item index.

Two ways in. ``top_k_batched`` ranks dense score rows that a callable hands over batch by batch.
``top_k_factors`` ranks the scores of a dot-product model, ``user · item``, without ever
computing most of them: items are visited in decreasing order of their factor norm, and once a
user's k-th best score beats ``‖user‖ · ‖item‖`` (Cauchy–Schwarz) for every item not yet
visited, nothing left can enter the list, so the user is done. Both are exact: the same
lists as a full sort of every score, ties going to the lower item index.

The item order ``top_k_factors`` needs does not depend on the request: ``items_by_norm``
builds it once (an ``ItemsByNorm``), and a server hands that value in on every call, so one
customer's list costs the few products it needs, not a sort and a copy of the catalogue.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import attrs
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.core.threads import thread_count
from growthrec.errors import ParameterError

__all__ = [
    "FactorBatch",
    "ItemsByNorm",
    "ScoreBatch",
    "batch_rows",
    "items_by_norm",
    "thread_count",
    "top_k",
    "top_k_batched",
    "top_k_factors",
]

#: Scores of rows ``start:stop``: a dense float array of shape (stop - start, n_items).
ScoreBatch = Callable[[int, int], np.ndarray]
#: Factors of rows ``start:stop``: a float array of shape (stop - start, n_factors).
FactorBatch = Callable[[int, int], np.ndarray]

#: Bytes of dense scores one batch may hold; keeps memory flat whatever the user count.
DEFAULT_BATCH_BYTES = 64 * 2**20
#: Users per batch of ``top_k_factors``.
FACTOR_BATCH_ROWS = 4096
#: Items scored in the first block of ``top_k_factors`` (the ones with the largest norms);
#: the later blocks double in width while users are left who might still gain an item.
FIRST_BLOCK_ITEMS = 1536
#: Users who need more than the first block are taken this many at a time, in order of how
#: far the bound says they must go, so that each group goes no further than its users need.
GROUP_ROWS = 512
#: Scores one block of ``top_k_factors`` may hold (32 MiB of float32): wide blocks take
#: fewer users at a time, so memory stays flat even when no user can stop early.
BLOCK_CELLS = 8 * 2**20
#: Batches of at most this many users are ranked one user at a time, on vectors (``_rank_one``):
#: for a request or two the batch bookkeeping costs more than the products.
ONE_BY_ONE_ROWS = 4
#: At most this many users in one batch are ranked without capping BLAS at one thread: their
#: products are too small for BLAS to split, and entering ``threadpool_limits`` costs ~2 ms
#: (it scans the loaded libraries) and changes process-wide state that concurrent requests
#: would race on.
SMALL_BATCH_ROWS = 64
#: Lists at least this long (re-ranking's candidates: the top 100-200) are collected by
#: threshold (``_Collected``) rather than merged exactly block by block (``_Merged``): a block
#: then costs one comparison per score, not a sort of 2k candidates per user.
WIDE_K = 48
#: Rows narrower than this are ranked whole, with one ``np.partition`` (grouping would not pay).
_GROUPED_MIN_ITEMS = 512


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
    return _select(scores, k)


def _select(
    scores: np.ndarray, k: int, ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``top_k`` of ``scores`` whose columns are the items ``ids`` (default: 0, 1, 2, ...).

    Ties go to the lower item id. Wide rows take the grouped path (see ``_select_grouped``).
    """
    n_items = scores.shape[1]
    k_eff = min(k, n_items)
    groups = _group_count(n_items, k_eff)
    if groups:
        idx, vals = _select_grouped(scores, k_eff, ids, groups)
    else:
        idx, vals = _select_plain(scores, k_eff, ids)
    if k_eff < k:
        idx = np.pad(idx, ((0, 0), (0, k - k_eff)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return idx, vals


def _group_count(n_items: int, k: int) -> int:
    """How many column groups the grouped selection uses for rows this wide; 0: don't group.

    About sqrt(n_items / k) groups balances its two steps: ranking one maximum per group,
    then ranking the k * groups candidates of the best k groups.
    """
    if n_items < _GROUPED_MIN_ITEMS:
        return 0
    groups = int(np.clip(round(np.sqrt(n_items / k)), 4, 128))
    return groups if n_items // groups >= 4 * k else 0


def _select_plain(
    scores: np.ndarray, k: int, ids: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` <= n_items of each row; ``ids`` are the columns' items, 1-D or per row.

    ``np.partition`` finds each row's k-th score (values only: SIMD, several times faster than
    ``argpartition``); the columns scoring at least that are the top k, unless the k-th score
    is tied, where the tied columns with the lowest item ids complete the list.
    """
    n_rows, n_items = scores.shape
    if k < n_items:
        kth = np.partition(scores, n_items - k, axis=1)[:, n_items - k, None]
        chosen = scores >= kth
        tied = np.flatnonzero(np.count_nonzero(chosen, axis=1) != k)
        if tied.size:
            sub, cut = scores[tied], kth[tied]
            if ids is None:
                tie_ids = np.broadcast_to(np.arange(n_items), sub.shape)
            else:
                tie_ids = np.broadcast_to(ids, scores.shape)[tied]
            equal = sub == cut
            missing = k - np.count_nonzero(sub > cut, axis=1)  # >= 1 tied column to take
            lowest = np.sort(np.where(equal, tie_ids, np.iinfo(np.int64).max), axis=1)
            last_id = np.take_along_axis(lowest, missing[:, None] - 1, axis=1)
            chosen[tied] = (sub > cut) | (equal & (tie_ids <= last_id))
            short = tied[np.count_nonzero(chosen[tied], axis=1) != k]
            if short.size:  # only NaN compares false both ways
                raise ParameterError(f"scores of row {short[0]} include NaN; they cannot be ranked")
        idx = np.nonzero(chosen)[1].reshape(n_rows, k)
        vals = np.take_along_axis(scores, idx, axis=1)
    else:
        idx = np.broadcast_to(np.arange(n_items), scores.shape).copy()
        vals = scores.copy()
    if ids is None:
        items = idx.astype(np.int64)
    elif ids.ndim == 1:
        items = ids[idx].astype(np.int64, copy=False)
    else:
        items = np.take_along_axis(ids, idx, axis=1).astype(np.int64, copy=False)
    order = np.lexsort((items, -vals), axis=-1)
    items = np.take_along_axis(items, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    items[np.isneginf(vals)] = -1
    return items, vals


def _select_grouped(
    scores: np.ndarray, k: int, ids: np.ndarray | None, groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` of wide rows without partitioning whole rows.

    Columns ``j, j + w, j + 2w, ...`` (``w = n_items // groups``) form strand ``j``; one pass
    of elementwise maxima gives each strand's best score. The k strands with the best maxima
    hold k items scoring at least the k-th of those maxima ``t``, so every item of the top k
    scores ``>= t`` and sits in a strand whose maximum is ``>= t``: exactly those k strands,
    unless another strand's maximum equals ``t``. Such rows (and rows with too few finite
    scores) go through ``_select_plain``; the others rank only their k strands, plus the
    ``n_items % groups`` columns past the last full strand, which are always candidates.
    """
    n_rows, n_items = scores.shape
    width = n_items // groups
    full = width * groups
    strands = scores[:, :full].reshape(n_rows, groups, width)
    best = strands.max(axis=1)  # (n_rows, width): elementwise maxima, SIMD over contiguous runs
    threshold = np.partition(best, width - k, axis=1)[:, width - k, None]
    chosen = best >= threshold
    clear = np.count_nonzero(chosen, axis=1) == k
    chosen[~clear] = False
    chosen[~clear, :k] = True  # placeholders: these rows are ranked in full below
    top = np.nonzero(chosen)[1].reshape(n_rows, k)
    columns = (top[:, :, None] + np.arange(0, full, width)[None, None, :]).reshape(n_rows, -1)
    if full < n_items:
        tail = np.broadcast_to(np.arange(full, n_items), (n_rows, n_items - full))
        columns = np.concatenate([columns, tail], axis=1)
    candidates = np.take_along_axis(scores, columns, axis=1)
    column_ids = columns if ids is None else ids[columns]
    items, vals = _select_plain(candidates, k, column_ids)
    unclear = np.flatnonzero(~clear)
    if unclear.size:
        items[unclear], vals[unclear] = _select_plain(scores[unclear], k, ids)
    return items, vals


def _item_mask(
    n_items: int, exclude_items: np.ndarray | None, allow_items: np.ndarray | None
) -> np.ndarray:
    """True for the items nobody may get (``exclude_items``, or outside ``allow_items``)."""
    banned = np.zeros(n_items, dtype=bool)
    if exclude_items is not None:
        banned[np.asarray(exclude_items, dtype=np.int64)] = True
    if allow_items is not None:
        allowed = np.zeros(n_items, dtype=bool)
        allowed[np.asarray(allow_items, dtype=np.int64)] = True
        banned |= ~allowed
    return banned


def _check(k: int, exclude_rows: sp.csr_matrix | None, n_rows: int, n_items: int) -> None:
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    if exclude_rows is not None and exclude_rows.shape != (n_rows, n_items):
        raise ParameterError(
            f"exclude_rows has shape {exclude_rows.shape}, expected {(n_rows, n_items)}"
        )


def _run_batches(
    run: Callable[[int], None], starts: Iterable[int], n_threads: int, *, one_blas: bool = False
) -> None:
    """``run(start)`` for each batch start, on ``n_threads`` threads with BLAS at one each.

    ``n_threads`` follows ``growthrec.core.threads.thread_count`` (0: every core, never more
    than the caller's limit).

    On one thread BLAS keeps its own threads unless ``one_blas``: right for one large product
    per batch, wasteful for many small ones.
    """
    starts = list(starts)
    n_threads = thread_count(n_threads)
    if n_threads <= 1 or len(starts) <= 1:
        with threadpool_limits(1, "blas") if one_blas else contextlib.nullcontext():
            for start in starts:
                run(start)
        return
    with threadpool_limits(1, "blas"), ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(run, starts))


class _Buffers(threading.local):
    """One reusable float32 work buffer per thread: no fresh pages for every batch."""

    def __init__(self) -> None:
        self.data = np.empty(0, dtype=np.float32)

    def take(self, n_rows: int, n_cols: int) -> np.ndarray:
        if self.data.size < n_rows * n_cols:
            self.data = np.empty(n_rows * n_cols, dtype=np.float32)
        return self.data[: n_rows * n_cols].reshape(n_rows, n_cols)


def _row_entries(rows: sp.csr_matrix | None, start: int, stop: int) -> tuple[np.ndarray, ...]:
    """Local row number and column of each stored entry of ``rows[start:stop]``.

    ``rows`` is a CSR matrix, or anything whose ``[start:stop]`` is one (rows cut out of a
    larger matrix batch by batch, say).
    """
    if rows is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    part = rows[start:stop]
    counts = np.diff(part.indptr)
    return np.repeat(np.arange(stop - start, dtype=np.int64), counts), part.indices


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
    those items can be. With ``n_threads`` > 1 (0: every core) batches run on a thread pool
    with BLAS capped at one thread each, so the cores are not oversubscribed.
    """
    _check(k, exclude_rows, n_rows, n_items)
    banned_items = np.flatnonzero(_item_mask(n_items, exclude_items, allow_items))
    size = batch_size or batch_rows(n_items)
    items = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    buffers = _Buffers()

    def run(start: int) -> None:
        stop = min(start + size, n_rows)
        # A copy into this thread's buffer: exclusions are written into it, never into an
        # array the caller may still hold.
        batch = buffers.take(stop - start, n_items)
        np.copyto(batch, score_batch(start, stop), casting="unsafe")
        if banned_items.size:
            batch[:, banned_items] = -np.inf
        rows, columns = _row_entries(exclude_rows, start, stop)
        if rows.size:
            batch.reshape(-1)[rows * n_items + columns] = -np.inf
        items[start:stop], scores[start:stop] = _select(batch, k)

    _run_batches(run, range(0, n_rows, size), n_threads)
    return items, scores


@attrs.frozen(eq=False)
class ItemsByNorm:
    """Item factors in the order ``top_k_factors`` visits them: by decreasing norm.

    Nothing here depends on a request, so it is built once per model (``items_by_norm``) and
    shared by every call, from any number of threads: the arrays are read-only.
    """

    #: (n_items, n_factors) float32, C-contiguous: row p is the item visited at position p.
    factors: np.ndarray
    #: The item at each visiting position.
    ids: np.ndarray
    #: Each visiting position's factor norm (float64), falling.
    norms: np.ndarray
    #: The visiting position of each item: the inverse of ``ids``.
    position: np.ndarray

    @property
    def n_items(self) -> int:
        return int(self.ids.size)

    @property
    def n_factors(self) -> int:
        return int(self.factors.shape[1])


def items_by_norm(item_factors: np.ndarray) -> ItemsByNorm:
    """``item_factors`` (items x factors) sorted by decreasing norm, ties by item index."""
    factors = np.asarray(item_factors, dtype=np.float32)
    if factors.ndim != 2:
        raise ParameterError(f"item_factors has shape {factors.shape}, expected (items, factors)")
    norms = np.sqrt(np.square(factors, dtype=np.float64).sum(axis=1))
    ids = np.argsort(-norms, kind="stable").astype(np.int64, copy=False)
    position = np.empty(ids.size, dtype=np.int64)
    position[ids] = np.arange(ids.size)
    arrays = (np.ascontiguousarray(factors[ids]), ids, norms[ids], position)
    for array in arrays:
        array.flags.writeable = False
    return ItemsByNorm(*arrays)


def top_k_factors(
    user_batch: FactorBatch,
    n_rows: int,
    item_factors: np.ndarray | ItemsByNorm,
    k: int,
    *,
    exclude_rows: sp.csr_matrix | None = None,
    exclude_items: np.ndarray | None = None,
    allow_items: np.ndarray | None = None,
    batch_size: int | None = None,
    n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items of the scores ``user_batch(start, stop) @ item_factors.T``, in float32.

    The same result as ``top_k_batched`` over those scores (exclusions, ties, padding and
    threads alike), but the items are visited in blocks by decreasing factor norm and a user
    stops as soon as no unvisited item can reach their k-th score: ``u · v <= ‖u‖ ‖v‖``. With
    the skewed norms of real factor models most users stop after the first block, so most
    scores are never computed. Nothing is approximated; the bound carries a margin for
    float32 rounding.

    ``item_factors`` may be given already sorted (``items_by_norm``): then a call costs only
    what its users need, which is what makes one customer's list cheap.
    """
    index = item_factors if isinstance(item_factors, ItemsByNorm) else items_by_norm(item_factors)
    n_items = index.n_items
    _check(k, exclude_rows, n_rows, n_items)
    ordered, ordered_ids, falling_norms, position, banned_at = _visiting_order(
        index, exclude_items, allow_items
    )
    # A float32 dot product is within n_factors * eps of its exact value, relative to the
    # bound; this margin makes the bound safe whatever the rounding.
    margin = 1.0 + max(1e-4, 8 * index.n_factors * float(np.finfo(np.float32).eps))
    size = batch_size or FACTOR_BATCH_ROWS
    items = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    buffers = _Buffers()

    def run(start: int) -> None:
        stop = min(start + size, n_rows)
        users = np.ascontiguousarray(user_batch(start, stop), dtype=np.float32)
        rows, columns = _row_entries(exclude_rows, start, stop)
        at = position[columns]
        if stop - start <= ONE_BY_ONE_ROWS:
            rising = -falling_norms
            for row in range(stop - start):
                seen = np.sort(at[(rows == row) & (at >= 0)])
                items[start + row], scores[start + row] = _rank_one(
                    users[row], ordered, ordered_ids, rising, seen, banned_at, k, margin
                )
            return
        items[start:stop], scores[start:stop] = _rank_by_norm(
            users,
            ordered,
            ordered_ids,
            falling_norms,
            rows[at >= 0],
            at[at >= 0],
            banned_at,
            k,
            margin,
            buffers,
        )

    # Many small products (a block of users by a block of items): BLAS threads only add work.
    # A few users (one request) are left alone: see SMALL_BATCH_ROWS.
    _run_batches(run, range(0, n_rows, size), n_threads, one_blas=n_rows > SMALL_BATCH_ROWS)
    return items, scores


def _visiting_order(
    index: ItemsByNorm, exclude_items: np.ndarray | None, allow_items: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    """The arrays one ``top_k_factors`` call visits, and the visiting positions it must skip.

    No item list: ``index``'s own arrays, nothing copied. A few items banned: the same arrays,
    the banned positions scored ``-inf`` as they are visited. Most banned (a short allow
    list): only the allowed rows, copied in visiting order, so the call scores no others.
    """
    none = np.empty(0, dtype=np.int64)
    whole = (index.factors, index.ids, index.norms, index.position, none)
    if exclude_items is None and allow_items is None:
        return whole
    banned = _item_mask(index.n_items, exclude_items, allow_items)[index.ids]
    n_banned = int(np.count_nonzero(banned))
    if n_banned == 0:
        return whole
    if 2 * n_banned <= index.n_items:
        return (*whole[:4], np.flatnonzero(banned))
    kept = np.flatnonzero(~banned)
    ids = index.ids[kept]
    position = np.full(index.n_items, -1, dtype=np.int64)
    position[ids] = np.arange(ids.size)
    return index.factors[kept], ids, index.norms[kept], position, none


def _rank_one(
    user: np.ndarray,
    ordered: np.ndarray,
    ordered_ids: np.ndarray,
    rising: np.ndarray,
    seen_at: np.ndarray,
    banned_at: np.ndarray,
    k: int,
    margin: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``_rank_by_norm`` for one user, on vectors: what one request needs, without the
    bookkeeping of a batch (a few matrix-vector products and partitions, well under 1 ms).

    ``rising`` is the negated falling norms; ``seen_at`` and ``banned_at`` are sorted visiting
    positions to skip. Blocks double in width until the bound rules the rest out; the final
    list is an exact sort of the candidates by (score descending, item ascending).
    """
    n_pool = ordered.shape[0]
    scores = np.empty(n_pool, dtype=np.float32)
    user_norm = float(np.sqrt(np.square(user, dtype=np.float64).sum()))
    top = np.empty(0, dtype=np.float32)  # the k best scores so far, in no order
    kth = -np.inf
    lo, width, reach = 0, max(min(FIRST_BLOCK_ITEMS, BLOCK_CELLS), 4 * k, 64), n_pool
    while lo < reach:
        hi = min(lo + width, reach)
        block = scores[lo:hi]
        # BLAS, as the batch's products: its rounding agrees with theirs where numpy's own
        # loop (einsum) split near-duplicate items differently. A server runs BLAS on one
        # thread per worker (set once at start): a 27k x 64 product on two BLAS threads of
        # a busy machine took 9 ms at the median against 0.3 ms on one.
        np.matmul(ordered[lo:hi], user, out=block)
        for skip in (seen_at, banned_at):
            if skip.size:
                lo_skip, hi_skip = np.searchsorted(skip, [lo, hi])
                block[skip[lo_skip:hi_skip] - lo] = -np.inf
        pool = np.concatenate([top, block])
        top = np.partition(pool, pool.size - k)[pool.size - k :] if pool.size > k else pool
        if top.size == k:
            kth = float(top.min())
            if kth > 0:  # items past the reach score below the k-th (a k-th <= 0 bounds nothing)
                bound = kth / (user_norm * margin)
                reach = int(np.searchsorted(rising, -bound, "right"))
        if lo == 0 and reach >= n_pool - (n_pool - hi) // 4:
            width = n_pool  # flat norms (as BPR's): the bound spares little, so one more block
        lo, width = hi, 2 * width
    visited = scores[:lo]
    if np.isnan(visited).any():
        raise ParameterError("scores of row 0 include NaN; they cannot be ranked")
    candidates = np.flatnonzero(visited >= kth)
    ids, values = ordered_ids[candidates], visited[candidates]
    order = np.lexsort((ids, -values))[:k]
    items = np.full(k, -1, dtype=np.int64)
    best = np.full(k, -np.inf, dtype=np.float32)
    items[: order.size], best[: order.size] = ids[order], values[order]
    items[np.isneginf(best)] = -1
    return items, best


class _Merged:
    """The exact top k of each user so far, merged after every block (best for short lists)."""

    def __init__(self, n_users: int, k: int, ordered_ids: np.ndarray) -> None:
        self.k, self.ordered_ids = k, ordered_ids
        self.ids = np.full((n_users, k), -1, dtype=np.int64)
        self.best = np.full((n_users, k), -np.inf, dtype=np.float32)

    def add(self, rows: np.ndarray, lo: int, hi: int, block: np.ndarray) -> np.ndarray:
        """Merge the scores of items lo:hi for ``rows``; each row's k-th score now."""
        new_ids, new = _select(block, self.k, self.ordered_ids[lo:hi])
        if lo:  # merge with what earlier blocks found: an exact top k of the 2k candidates
            merged_ids = np.concatenate([self.ids[rows], new_ids], axis=1)
            merged = np.concatenate([self.best[rows], new], axis=1)
            order = np.lexsort((merged_ids, -merged), axis=-1)[:, : self.k]
            new_ids = np.take_along_axis(merged_ids, order, axis=1)
            new = np.take_along_axis(merged, order, axis=1)
        self.ids[rows], self.best[rows] = new_ids, new
        return new[:, -1]

    def lists(self) -> tuple[np.ndarray, np.ndarray]:
        self.ids[np.isneginf(self.best)] = -1
        return self.ids, self.best


class _Collected:
    """Every score that may still be in a user's top k, kept as (row, item, score) entries.

    A block keeps only the scores at least the user's k-th best so far (a lower bound of the
    final k-th), and that k-th is raised from the k best values alone (a partition of k plus
    the few new entries). The lists are sorted once, at the end: one ``np.sort`` of 64-bit
    keys (row, score, item) for the whole batch. Ties go to the lower item, as everywhere.
    """

    def __init__(self, n_users: int, k: int, ordered_ids: np.ndarray) -> None:
        self.k, self.ordered_ids, self.n_users = k, ordered_ids, n_users
        self.top = np.full((n_users, k), -np.inf, dtype=np.float32)  # k best values, any order
        self.kth = np.full(n_users, -np.inf, dtype=np.float32)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pool = np.empty(0, dtype=np.float32)  # reused: fresh pages cost more than the work

    def add(self, rows: np.ndarray, lo: int, hi: int, block: np.ndarray) -> np.ndarray:
        """Keep the scores of items lo:hi for ``rows`` that may enter; each row's k-th now."""
        k, width = self.k, block.shape[1]
        if block.size and np.isnan(block.max()):
            row = int(rows[np.flatnonzero(np.isnan(block).any(axis=1))[0]])
            raise ParameterError(f"scores of row {row} include NaN; they cannot be ranked")
        first = np.isneginf(self.kth[rows]).all() and width > k
        if first:  # a first block: its own k best are the rows' k best so far
            part = np.partition(block, width - k, axis=1)
            kth = part[:, width - k].copy()
        else:
            kth = self.kth[rows]
        keep = block >= kth[:, None]
        if np.isneginf(kth).any():  # such rows keep everything but the excluded items
            keep &= block > -np.inf
        # One flat index per entry: 1-D nonzero is several times faster than 2-D.
        flat = np.flatnonzero(keep)
        at_row, at = np.divmod(flat, width)
        values = block.reshape(-1)[flat]
        self.parts.append((rows[at_row], self.ordered_ids[lo + at], values))
        if first:
            self.top[rows] = part[:, width - k :]
            self.kth[rows] = kth
            return kth
        # The k best values of the rows with new entries, from their old k best and those.
        counts = np.bincount(at_row, minlength=rows.size)
        fresh = np.flatnonzero(counts)
        if fresh.size:
            most = int(counts[fresh].max())
            pool = self._take(fresh.size, k + most)
            pool[:, :k] = self.top[rows[fresh]]
            pool[:, k:] = -np.inf
            slot = np.cumsum(counts > 0) - 1  # each row's line in the pool
            starts = np.cumsum(counts) - counts
            pool[slot[at_row], k + np.arange(at_row.size) - starts[at_row]] = values
            pool.partition(most, axis=1)
            self.top[rows[fresh]] = pool[:, most:]
            self.kth[rows[fresh]] = pool[:, most:].min(axis=1)
        return self.kth[rows]

    def _take(self, n_rows: int, n_cols: int) -> np.ndarray:
        if self._pool.size < n_rows * n_cols:
            self._pool = np.empty(n_rows * n_cols, dtype=np.float32)
        return self._pool[: n_rows * n_cols].reshape(n_rows, n_cols)

    def lists(self) -> tuple[np.ndarray, np.ndarray]:
        k, n_users = self.k, self.n_users
        items = np.full((n_users, k), -1, dtype=np.int64)
        scores = np.full((n_users, k), -np.inf, dtype=np.float32)
        if not self.parts:
            return items, scores
        rows, ids, values = (np.concatenate(column) for column in zip(*self.parts, strict=True))
        keep = values >= self.kth[rows]
        rows, ids, values = rows[keep], ids[keep], values[keep] + np.float32(0.0)  # -0 -> 0
        max_id = int(self.ordered_ids.max(initial=0))
        rows, ids, values = _sorted_entries(rows, ids, values, n_users, max_id)
        counts = np.bincount(rows, minlength=n_users)
        if (counts == k).all():  # no ties at the k-th, no short list: the entries are the lists
            return ids.reshape(n_users, k), values.reshape(n_users, k)
        rank = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows]
        first = rank < k  # ties at the k-th score: the lower items are first, the rest go
        items[rows[first], rank[first]] = ids[first]
        scores[rows[first], rank[first]] = values[first]
        return items, scores


def _sorted_entries(
    rows: np.ndarray, ids: np.ndarray, values: np.ndarray, n_rows: int, max_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries in order of row, then score descending, then item ascending.

    One ``np.sort`` of uint64 keys when row, score and item fit in 64 bits (the score's 32
    bits mapped so that the keys' order is the float order, and back: nothing is rounded);
    ``np.lexsort`` otherwise. No score may be NaN, and -0.0 must be given as 0.0.
    """
    row_bits, id_bits = max(n_rows - 1, 1).bit_length(), max(max_id, 1).bit_length()
    if row_bits + 32 + id_bits > 64:
        order = np.lexsort((ids, -values, rows))
        return rows[order], ids[order], values[order]
    # Falling order of the float bits as unsigned: a negative float's bits already fall as the
    # value rises; a positive one's rise, so they are flipped below the negatives' range.
    bits = values.view(np.uint32)
    sign = np.uint32(1 << 31)
    falling = np.where(bits >= sign, bits, np.uint32(sign - 1) - bits)
    keys = rows.astype(np.uint64) << np.uint64(32 + id_bits)
    keys |= falling.astype(np.uint64) << np.uint64(id_bits)
    keys |= ids.astype(np.uint64)
    keys.sort()
    falling = (keys >> np.uint64(id_bits)).astype(np.uint32)  # the low 32 bits: the score's
    bits = np.where(falling >= sign, falling, np.uint32(sign - 1) - falling)
    return (
        (keys >> np.uint64(32 + id_bits)).astype(np.int64),
        (keys & np.uint64((1 << id_bits) - 1)).astype(np.int64),
        bits.view(np.float32),
    )


def _rank_by_norm(
    users: np.ndarray,
    ordered: np.ndarray,
    ordered_ids: np.ndarray,
    falling_norms: np.ndarray,
    seen_rows: np.ndarray,
    seen_at: np.ndarray,
    banned_at: np.ndarray,
    k: int,
    margin: float,
    buffers: _Buffers,
) -> tuple[np.ndarray, np.ndarray]:
    """One batch of ``top_k_factors``: items in visiting order, block by block.

    ``seen_rows``/``seen_at`` are the excluded (row, visiting position) pairs of the batch;
    ``banned_at`` the visiting positions excluded for every row, sorted.
    Every user gets the first block. The bound then says how far each of the others must go
    (their reach); they are sorted by it and taken in groups, each group going only as far
    as its own users need, and stopping early where their lists improve on the way.
    """
    n_users = users.shape[0]
    n_pool = ordered.shape[0]
    rising = -falling_norms
    user_norms = np.sqrt(np.square(users, dtype=np.float64).sum(axis=1))
    found = (_Collected if k >= WIDE_K else _Merged)(n_users, k, ordered_ids)
    reach = np.full(n_users, n_pool)  # how far in visiting order each user must go

    def visit(rows: np.ndarray, lo: int, hi: int, at_rows: np.ndarray, at: np.ndarray) -> None:
        """Score items lo:hi for ``rows``, with exclusions (``at_rows`` index into ``rows``)."""
        block = buffers.take(rows.size, hi - lo)
        np.matmul(users[rows], ordered[lo:hi].T, out=block)
        if banned_at.size:
            lo_ban, hi_ban = np.searchsorted(banned_at, [lo, hi])
            block[:, banned_at[lo_ban:hi_ban] - lo] = -np.inf
        if at.size:
            block.reshape(-1)[at_rows * (hi - lo) + (at - lo)] = -np.inf
        # Items past position p score at most ‖u‖ * norm[p]; once that is below the user's
        # k-th score, the rest cannot enter. A k-th score <= 0 bounds nothing.
        kth = found.add(rows, lo, hi, block).astype(np.float64)
        positive = np.flatnonzero(kth > 0)
        limit = np.full(rows.size, n_pool)
        bound = kth[positive] / (user_norms[rows[positive]] * margin)
        limit[positive] = np.searchsorted(rising, -bound, "right")
        reach[rows] = limit

    first = min(n_pool, max(min(FIRST_BLOCK_ITEMS, BLOCK_CELLS // n_users), 4 * k, 64))
    early = seen_at < first
    visit(np.arange(n_users), 0, first, seen_rows[early], seen_at[early])
    left = np.flatnonzero(reach > first)
    if not left.size:
        return found.lists()
    left = left[np.argsort(reach[left], kind="stable")]
    # Each user's exclusions are one run of ``seen_rows`` (sorted by row, as CSR rows come).
    seen_counts = np.bincount(seen_rows, minlength=n_users)
    seen_starts = np.cumsum(seen_counts) - seen_counts
    group_size = max(1, GROUP_ROWS)
    for start in range(0, left.size, group_size):
        group = left[start : start + group_size]
        # The exclusions still to come of this group's users, by their place in the group.
        counts = seen_counts[group]
        ends = np.cumsum(counts)
        entries = np.repeat(seen_starts[group] - ends + counts, counts) + np.arange(ends[-1])
        at_rows, at = np.repeat(np.arange(group.size), counts), seen_at[entries]
        at_rows, at = at_rows[at >= first], at[at >= first]
        active = np.arange(group.size)  # positions in ``group``
        lo, width = first, first
        if np.median(reach[group]) >= n_pool - (n_pool - first) // 4:
            # The bound spares these users almost nothing (flat item norms, as BPR's): one
            # block to the end costs one selection where doubling steps would cost several.
            width = n_pool - first
        while active.size:
            # Doubling steps: each one raises the users' k-th scores, which shortens the reach.
            width = max(min(width, BLOCK_CELLS // active.size), 4 * k, 64)
            hi = min(lo + width, int(reach[group[active]].max()))
            position = np.full(group.size, -1, dtype=np.int64)
            position[active] = np.arange(active.size)
            inside = (at < hi) & (position[at_rows] >= 0)
            visit(group[active], lo, hi, position[at_rows[inside]], at[inside])
            at_rows, at = at_rows[at >= hi], at[at >= hi]
            active = active[reach[group[active]] > hi]
            lo, width = hi, 2 * width
    return found.lists()
