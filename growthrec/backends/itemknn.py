"""``itemknn``: item-item nearest neighbours, cosine or BM25, the same model as implicit's.

Fit keeps, for every item ``i``, its ``neighbors`` most similar items ``S[i, j]``; a customer's
scores are ``x S``: each item they bought votes for its neighbours with its weight in ``x``.
The similarity and the neighbour selection follow ``implicit.nearest_neighbours``
(CosineRecommender, BM25Recommender), so the top-10 lists are the same as implicit's up to
exact ties (which tied neighbour is kept, how tied scores are ordered):

* cosine: ``S[i, j] = x_i·x_j / (‖x_i‖ ‖x_j‖ + shrink)`` over the item columns ``x_i``;
* bm25: ``S[i, j] = w_i·w_j``, the columns of the matrix weighted like implicit's
  ``bm25_weight(X.T, K1, B).T`` (users play the terms, items the documents). Scores use the
  rows as they are, not BM25-weighted, as implicit's ``recommend`` does.

The neighbours of ``i`` are the ``neighbors`` largest ``S[i, j]`` among the items bought
together with ``i``, the item itself counting as a candidate (implicit's ``all_pairs_knn``
does the same, so with cosine an item keeps ``neighbors - 1`` others). The diagonal is then
dropped: it only ever scores what a customer already bought. Ties at the last neighbour go
to the lower item index (implicit keeps whichever its traversal met first). Where fewer
items than asked have a score, implicit pads with already-bought items at score 0; growthrec
never returns those and pads with unreached items at score 0. Customers not seen in training
are scored the same way from their basket (fold-in): nothing else is stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from growthrec.backends._sparse_neighbours import NeighbourScoring
from growthrec.backends.contract import Arrays, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.core.threads import thread_count
from growthrec.errors import ParameterError

__all__ = [
    "ItemKNNBackend",
    "bm25_item_weights",
    "item_neighbours",
    "map_gram_row_blocks",
]

#: Working memory the blocks of item rows in flight may take together while being ranked.
BLOCK_BYTES = 256 * 2**20
#: Bytes per stored entry of a block of ``WᵀW`` while its neighbours are chosen: the sparse
#: product (8), rows and masks (10), padded segments and their partition (up to 2 x 14).
_BYTES_PER_ENTRY = 48

T = TypeVar("T")


def map_gram_row_blocks(
    matrix: sp.csr_matrix,
    rows_per_block: int | np.ndarray,
    consume: Callable[[int, int, sp.csr_matrix], T],
    *,
    n_threads: int = 1,
) -> list[T]:
    """``consume(start, stop, block)`` for each block of rows of the item x item ``XᵀX``.

    A block is ``X[:, start:stop]ᵀ X`` as CSR, so memory is bounded by ``n_threads`` blocks,
    never items x items. ``rows_per_block``: the rows of every block, or the blocks' item
    boundaries (``0, ..., n_items``). Blocks run on ``n_threads`` threads (scipy's sparse
    product and numpy release the GIL: 1.8x on 2 cores); the results come back in block order.
    """
    n_items = matrix.shape[1]
    by_item = matrix.tocsc()  # one copy, then every column block is a cheap slice
    if isinstance(rows_per_block, np.ndarray):
        bounds = [int(b) for b in rows_per_block]
    else:
        bounds = [*range(0, n_items, rows_per_block), n_items]

    def run(start_stop: tuple[int, int]) -> T:
        start, stop = start_stop
        return consume(start, stop, (by_item[:, start:stop].T.tocsr() @ matrix).tocsr())

    blocks = list(itertools.pairwise(bounds))
    if n_threads <= 1 or len(blocks) <= 1:
        return [run(block) for block in blocks]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(run, blocks))


def bm25_item_weights(matrix: sp.csr_matrix, k1: float, b: float) -> sp.csr_matrix:
    """The users x items matrix weighted as ``implicit.nearest_neighbours.bm25_weight(X.T).T``.

    Items are the documents and users the terms: ``idf(u) = log(n_items) - log(1 + n_u)``
    with ``n_u`` the items user ``u`` has, and the item's length is its column sum.
    """
    n_users, n_items = matrix.shape
    out = matrix.astype(np.float32, copy=True)
    if out.nnz == 0:
        return out
    data = out.data.astype(np.float64)
    idf = np.log(n_items) - np.log1p(np.diff(out.indptr).astype(np.float64))
    length = np.bincount(out.indices, weights=data, minlength=n_items)
    length_norm = (1.0 - b) + b * length / (length.mean() or 1.0)  # all-zero weights: no 0/0
    user = np.repeat(np.arange(n_users), np.diff(out.indptr))
    weighted = data * (k1 + 1.0) / (k1 * length_norm[out.indices] + data) * idf[user]
    out.data = weighted.astype(np.float32)
    return out


def _unit_columns(matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Columns scaled to unit L2 norm (empty columns left at zero), and the norms."""
    data = matrix.data.astype(np.float64)
    norms = np.sqrt(np.bincount(matrix.indices, weights=data**2, minlength=matrix.shape[1]))
    out = matrix.astype(np.float32, copy=True)
    safe = np.where(norms > 0, norms, 1.0)
    out.data = (data / safe[matrix.indices]).astype(np.float32)
    return out, norms


def _top_in_segments(
    values: np.ndarray, columns: np.ndarray, starts: np.ndarray, lengths: np.ndarray, k: int
) -> np.ndarray:
    """Positions in ``values`` of the ``k`` largest of each segment ``starts[r]:+lengths[r]``
    (every length above ``k``), ties at the k-th value going to the lower column.

    Segments of similar length (within 2x) are padded into one 2-D array and partitioned
    together: vectorised, with at most twice the segments' size in memory.
    """
    chosen = []
    group = np.floor(np.log2(lengths)).astype(np.int64)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        width = int(lengths[rows].max())
        offsets = np.arange(width)
        inside = offsets < lengths[rows, None]
        where = np.where(inside, starts[rows, None] + offsets, 0)
        padded = np.where(inside, values[where], -np.inf)
        kth = np.partition(padded, width - k, axis=1)[:, width - k, None]
        keep = padded > kth
        tied = padded == kth
        need = k - np.count_nonzero(keep, axis=1)
        crowded = np.flatnonzero(np.count_nonzero(tied, axis=1) > need)
        if crowded.size:  # more share the k-th value than places are left: lowest column first
            key = np.where(tied[crowded], columns[where[crowded]], np.iinfo(columns.dtype).max)
            cut = np.take_along_axis(np.sort(key, axis=1), need[crowded, None] - 1, axis=1)
            tied[crowded] &= key <= cut
        keep |= tied
        chosen.append(where[keep])
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def _block_bounds(weighted: sp.csr_matrix, most: int) -> np.ndarray:
    """Item boundaries of row blocks of ``WᵀW`` holding at most ``most`` entries each (one
    item at least), bounding row ``i``'s entries by the purchases of item ``i``'s buyers."""
    n_items = weighted.shape[1]
    basket = np.diff(weighted.indptr)
    bound = np.bincount(weighted.indices, weights=basket[_rows_of(weighted)], minlength=n_items)
    total = np.concatenate([[0.0], np.cumsum(bound)])
    bounds = [0]
    while bounds[-1] < n_items:
        start = bounds[-1]
        stop = int(np.searchsorted(total, total[start] + most, side="right")) - 1
        bounds.append(min(n_items, max(stop, start + 1)))
    return np.asarray(bounds)


def _rows_of(matrix: sp.csr_matrix) -> np.ndarray:
    """The row of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def item_neighbours(
    weighted: sp.csr_matrix,
    k: int,
    *,
    norms: np.ndarray | None = None,
    shrink: float = 0.0,
    block_bytes: int | None = None,
    n_threads: int | None = None,
) -> sp.csr_matrix:
    """Items x items CSR: each row's ``k`` largest entries of ``WᵀW`` (self a candidate, then
    dropped). With ``norms`` (cosine on unit columns), entries shrink by ``n_i n_j / (n_i n_j +
    shrink)``, i.e. ``x_i·x_j / (‖x_i‖ ‖x_j‖ + shrink)``. ``n_threads``: as ``thread_count``
    (``None`` or 0: every core, within the caller's limits).

    ``WᵀW`` is computed as a sparse product by blocks of item rows, and each row's neighbours
    are chosen among its stored entries (the pairs bought together), never densified: time
    and memory grow with the co-purchases, not with items².
    """
    n_items = weighted.shape[1]
    n_threads = thread_count(n_threads or 0)
    weighted = weighted.astype(np.float32, copy=False)
    budget = max(1, (block_bytes or BLOCK_BYTES) // n_threads // _BYTES_PER_ENTRY)
    total = float(np.diff(weighted.indptr).astype(np.float64) @ np.diff(weighted.indptr))
    # Several blocks per thread even when one would fit, so the threads finish together.
    most = max(1, min(budget, max(2**16, int(total // (4 * n_threads)))))
    bounds = _block_bounds(weighted, most)

    def neighbours(start: int, stop: int, block: sp.csr_matrix) -> tuple[np.ndarray, ...]:
        # The block's columns are unsorted within rows: ties are settled by column below.
        lengths = np.diff(block.indptr)
        rows = np.repeat(np.arange(stop - start), lengths)
        values = block.data
        if shrink > 0 and norms is not None:
            product = (norms[start + rows] * norms[block.indices]).astype(np.float32)
            values = values * (product / (product + np.float32(shrink)))
        keep = np.repeat(lengths <= k, lengths)  # rows with at most k entries keep them all
        long = np.flatnonzero(lengths > k)
        if long.size:
            chosen = _top_in_segments(values, block.indices, block.indptr[long], lengths[long], k)
            keep[chosen] = True
        keep &= block.indices != start + rows  # the item itself: a candidate, never kept
        counts = np.bincount(rows[keep], minlength=stop - start)
        return counts, block.indices[keep].astype(np.int32), values[keep].astype(np.float32)

    blocks = map_gram_row_blocks(weighted, bounds, neighbours, n_threads=n_threads)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.concatenate([b[0] for b in blocks]), out=indptr[1:])
    indices = np.concatenate([b[1] for b in blocks])
    data = np.concatenate([b[2] for b in blocks])
    result = sp.csr_matrix((data, indices, indptr), shape=(n_items, n_items))
    result.sort_indices()  # canonical CSR: sorted columns within each row
    return result


class ItemKNNBackend(NeighbourScoring):
    """Item-item k nearest neighbours: scores ``x S`` with ``S`` each item's top-k similarities."""

    name = "itemknn"
    description = "Item-item nearest neighbours (cosine or BM25), as implicit's ItemItemRecommender"
    params = (
        Param(
            "neighbors",
            100,
            "similar items kept per item, the item itself counted as one (as in implicit)",
            minimum=1,
            search=(5, 1000),
            log=True,
        ),
        Param(
            "similarity",
            "cosine",
            "cosine of item columns, or bm25 (implicit's BM25Recommender weighting)",
            choices=("cosine", "bm25"),
            search=("cosine", "bm25"),
        ),
        Param(
            "shrink",
            0.0,
            "cosine only: x_i·x_j / (|x_i||x_j| + shrink), damping items with few buyers",
            minimum=0,
        ),
        Param("bm25_k1", 1.2, "bm25 only: term-frequency saturation K1", minimum=0),
        Param("bm25_b", 0.75, "bm25 only: item length normalisation B", minimum=0, maximum=1),
        Param(
            "threads",
            0,
            "threads computing the item-item similarities; 0: every core the process may use, "
            "within the caller's threadpool limits (results do not depend on it)",
            minimum=0,
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        if params["similarity"] == "bm25":
            if params["shrink"] > 0:
                raise ParameterError(
                    f"itemknn: shrink={params['shrink']:g} applies to similarity=cosine only; "
                    "leave shrink at 0 with bm25"
                )
            weighted, norms = bm25_item_weights(matrix, params["bm25_k1"], params["bm25_b"]), None
        else:
            weighted, norms = _unit_columns(matrix)
        similarity = item_neighbours(
            weighted,
            params["neighbors"],
            norms=norms,
            shrink=params["shrink"],
            n_threads=thread_count(params.get("threads", 0)),  # added later: old callers omit it
        )
        return {
            "similarity_indptr": similarity.indptr.astype(np.int64),
            "similarity_indices": similarity.indices.astype(np.int32),
            "similarity_data": similarity.data.astype(np.float32),
        }


@hookimpl
def register_backends(register):
    register(ItemKNNBackend())
