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

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import Arrays, ArraySpec, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.core.threads import thread_count
from growthrec.errors import ModelFileError, ParameterError

__all__ = [
    "ItemKNNBackend",
    "bm25_item_weights",
    "csr_problem",
    "item_neighbours",
    "map_gram_row_blocks",
    "similarity_problem",
]

#: Working memory the blocks of item rows in flight may take together while being ranked.
BLOCK_BYTES = 256 * 2**20
#: Bytes per cell of a block: sparse product (8), dense copy (4), sorted copy (4), masks.
_BYTES_PER_CELL = 24

T = TypeVar("T")


def map_gram_row_blocks(
    matrix: sp.csr_matrix,
    rows_per_block: int,
    consume: Callable[[int, int, sp.csr_matrix], T],
    *,
    n_threads: int = 1,
) -> list[T]:
    """``consume(start, stop, block)`` for each block of rows of the item x item ``XᵀX``.

    A block is ``X[:, start:stop]ᵀ X`` as CSR, so memory is bounded by ``n_threads`` blocks,
    never items x items. Blocks run on ``n_threads`` threads (scipy's sparse product and numpy
    release the GIL: 1.8x on 2 cores); the results come back in block order.
    """
    n_items = matrix.shape[1]
    by_item = matrix.tocsc()  # one copy, then every column block is a cheap slice

    def run(start: int) -> T:
        stop = min(start + rows_per_block, n_items)
        return consume(start, stop, (by_item[:, start:stop].T.tocsr() @ matrix).tocsr())

    starts = range(0, n_items, rows_per_block)
    if n_threads <= 1 or len(starts) <= 1:
        return [run(start) for start in starts]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(run, starts))


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


def _keep_top(dense: np.ndarray, k: int) -> np.ndarray:
    """Mask of each row's ``k`` largest finite values, ties going to the lower column index."""
    n = dense.shape[1]
    finite = np.isfinite(dense)
    if k >= n:
        return finite
    # A full (SIMD) sort beats np.partition here: on real similarities, with their many equal
    # values, partition measured 3-4x slower than sorting the whole row.
    kth = np.sort(dense, axis=1)[:, n - k : n - k + 1]
    keep = dense > kth
    tied = dense == kth
    need = k - np.count_nonzero(keep, axis=1)
    crowded = np.flatnonzero(np.count_nonzero(tied, axis=1) > need)
    if crowded.size:  # more items share the k-th value than places are left: lowest index first
        rank = np.cumsum(tied[crowded], axis=1, dtype=np.int32)
        tied[crowded] &= rank <= need[crowded, None]
    keep |= tied
    keep &= finite
    return keep


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
    (``None`` or 0: every core, within the caller's limits)."""
    n_items = weighted.shape[1]
    n_threads = thread_count(n_threads or 0)
    budget = (block_bytes or BLOCK_BYTES) // n_threads
    rows_per_block = max(1, budget // (_BYTES_PER_CELL * max(n_items, 1)))

    def neighbours(start: int, stop: int, block: sp.csr_matrix) -> tuple[np.ndarray, ...]:
        dense = block.toarray()
        del block
        # Pairs never bought together are no candidates (implicit only visits co-bought pairs).
        never = dense == 0
        if shrink > 0 and norms is not None:
            product = np.outer(norms[start:stop], norms).astype(np.float32)
            dense *= product / (product + np.float32(shrink))
            del product
        dense[never] = -np.inf
        del never
        keep = _keep_top(dense, k)
        own = np.arange(stop - start)
        keep[own, start + own] = False
        r, c = np.nonzero(keep)  # row-major: sorted columns within each row, canonical CSR
        counts = np.bincount(r, minlength=stop - start)
        return counts, c.astype(np.int32), dense[r, c].astype(np.float32)

    blocks = map_gram_row_blocks(weighted, rows_per_block, neighbours, n_threads=n_threads)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.concatenate([b[0] for b in blocks]), out=indptr[1:])
    indices = np.concatenate([b[1] for b in blocks])
    data = np.concatenate([b[2] for b in blocks])
    return sp.csr_matrix((data, indices, indptr), shape=(n_items, n_items))


def csr_problem(arrays: Arrays, prefix: str, n_rows: int, n_cols: int) -> str | None:
    """What is wrong with the CSR arrays ``{prefix}indptr/indices/data``, or ``None``."""
    indptr, indices = arrays[prefix + "indptr"], arrays[prefix + "indices"]
    data = arrays[prefix + "data"]
    if indptr.shape != (n_rows + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        return f"{prefix}indptr is not a non-decreasing row pointer starting at 0"
    if indptr[-1] != indices.size or data.shape != indices.shape:
        return (
            f"{prefix}indptr ends at {indptr[-1]} but there are {indices.size} indices "
            f"and {data.size} values"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= n_cols):
        return f"{prefix}indices outside 0..{n_cols - 1}"
    return None


def similarity_problem(arrays: Arrays, n_items: int) -> str | None:
    """What is wrong with the stored neighbour matrix's CSR arrays, or ``None``."""
    return csr_problem(arrays, "similarity_", n_items, n_items)


def _similarity(arrays: Arrays, n_items: int) -> sp.csr_matrix:
    """The stored neighbour matrix, its index arrays checked so scipy never reads out of bounds."""
    problem = similarity_problem(arrays, n_items)
    if problem:
        raise ModelFileError(f"itemknn: the stored similarity matrix is damaged ({problem})")
    indptr, indices = arrays["similarity_indptr"], arrays["similarity_indices"]
    return sp.csr_matrix((arrays["similarity_data"], indices, indptr), shape=(n_items, n_items))


class ItemKNNBackend:
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
            search=(0.0, 100.0),
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

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """The neighbour matrix as CSR: at most ``neighbors`` entries per item."""
        most = n_items * min(params["neighbors"], n_items)
        return {
            "similarity_indptr": ArraySpec((n_items + 1,), "iu", meaning="items + 1"),
            "similarity_indices": ArraySpec((None,), "iu", max_size=most),
            "similarity_data": ArraySpec((None,), max_size=most, learned=True),
        }

    def check_arrays(
        self, arrays: Arrays, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> None:
        """The CSR arrays agree with each other and index real items."""
        problem = similarity_problem(arrays, n_items)
        if problem:
            raise ValueError(problem)

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        similarity = _similarity(arrays, rows.shape[1])
        return (rows.astype(np.float32, copy=False) @ similarity).toarray()

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Row ``i`` of ``S``: item ``i``'s neighbours (what a one-item basket scores, too)."""
        n_items = arrays["similarity_indptr"].size - 1
        return _similarity(arrays, n_items)[np.asarray(items)].toarray()


@hookimpl
def register_backends(register):
    register(ItemKNNBackend())
