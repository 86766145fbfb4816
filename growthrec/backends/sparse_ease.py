"""``sparse_ease``: EASE for catalogues whose items² matrix does not fit, from a pruned Gram.

EASE's column ``j`` is a ridge regression of item ``j``'s buyers on every other item:
``B[-j, j] = (G[-j, -j] + λI)⁻¹ G[-j, j]`` with ``G = XᵀX`` (the same B as ``ease``'s
``−P / diag(P)``). ``sparse_ease`` solves that regression on ``j``'s ``neighbors`` most related
items only (the largest cosine ``G[i, j] / √(G[i, i] G[j, j])``), so ``B`` keeps at most
``neighbors`` entries per column, and never holds an items x items array:

1. The Gram matrix is computed in blocks of rows (exactly, from a sparse product) and each
   item keeps its ``gram_neighbors`` largest entries (by cosine); the kept pairs
   are made symmetric (a pair kept by either item is kept).
2. For a block of target items, the neighbourhoods' Gram submatrices are read from the kept
   pairs (pairs not kept count as 0; ``G[j, N_j]`` and the diagonal are always exact) and the
   ``neighbors`` x ``neighbors`` systems are solved together (batched LAPACK).

With ``neighbors`` and ``gram_neighbors`` at the number of items it is exactly EASE (and with
``dropout`` exactly ``edlae``'s EDLAE, whose penalty it can take too). Memory
grows with items x ``gram_neighbors`` (the kept pairs) and items x ``neighbors`` (B), time with
items x ``neighbors``³ for the solves plus one sparse Gram product. A neighbourhood model like
this is what Steck's sparse approximation of EASE (2019, "Markov random fields for
collaborative filtering") and SANSA (Spišák et al. 2023) trade exactness for; SANSA instead
factorises a pruned Gram matrix (sparse LDLᵀ) and keeps an approximate inverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends._sparse_neighbours import (
    NeighbourScoring,
    map_blocks,
)
from growthrec.backends.contract import Arrays, Param
from growthrec.backends.edlae import dropout_penalty
from growthrec.backends.hookspecs import hookimpl
from growthrec.backends.itemknn import map_gram_row_blocks
from growthrec.core.threads import thread_count

__all__ = ["SparseEASEBackend", "sparse_ease_weights"]

#: Working memory of the dense Gram row blocks in flight (dense, criterion, partition).
BLOCK_BYTES = 256 * 2**20
#: Neighbourhood slots (targets x neighbors) solved together: bounds the union's dense square.
_SLOTS_PER_BLOCK = 4096


def _pruned_gram(
    x: sp.csr_matrix, kept: int, cores: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each item's ``kept`` largest-cosine Gram entries, best first: (columns, values, diagonal).

    ``columns`` is (n_items, kept) int32 with -1 where an item has fewer co-bought items.
    """
    n = x.shape[1]
    diagonal = np.bincount(x.indices, weights=x.data.astype(np.float64) ** 2, minlength=n)
    inverse_norm = np.zeros(n, dtype=np.float32)
    inverse_norm[diagonal > 0] = 1 / np.sqrt(diagonal[diagonal > 0])
    rows_per_block = max(1, BLOCK_BYTES // cores // (24 * max(n, 1)))

    def block(start: int, stop: int, gram: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(stop - start)
        dense = gram.toarray()
        del gram
        dense[rows, start + rows] = 0  # an item is no neighbour of itself
        cosine = dense * inverse_norm[start:stop, None]
        cosine *= inverse_norm[None, :]
        if kept < n:
            top = np.argpartition(-cosine, kept - 1, axis=1)[:, :kept]
        else:
            top = np.broadcast_to(np.arange(n), (stop - start, n))
        best = np.take_along_axis(cosine, top, axis=1)
        order = np.argsort(-best, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1).astype(np.int32)
        values = dense[rows[:, None], top]
        top[np.take_along_axis(best, order, axis=1) <= 0] = -1  # never bought together
        return top, values

    blocks = map_gram_row_blocks(x, rows_per_block, block, n_threads=cores)
    columns = np.concatenate([b[0] for b in blocks])
    values = np.concatenate([b[1] for b in blocks])
    return columns, values, diagonal


def _symmetric_kept(columns: np.ndarray, values: np.ndarray, n: int) -> sp.csr_matrix:
    """The kept Gram pairs as a symmetric CSR (a pair kept by either item is kept)."""
    valid = columns >= 0
    rows = np.broadcast_to(np.arange(n)[:, None], columns.shape)[valid]
    kept = sp.csr_matrix((values[valid], (rows, columns[valid])), shape=(n, n))
    return kept.maximum(kept.T).tocsr()


def sparse_ease_weights(
    matrix: sp.csr_matrix,
    l2: float,
    neighbors: int,
    gram_neighbors: int = 1000,
    dropout: float = 0.0,
    *,
    threads: int = 0,
) -> sp.csr_matrix:
    """The sparse item x item ``B`` (CSR, float32): row ``i`` predicts, column ``j`` is
    predicted, at most ``neighbors`` entries per column. ``dropout`` adds EDLAE's penalty
    p/(1-p)·G[i, i] to each predictor's λ (see ``edlae``)."""
    n = matrix.shape[1]
    cores = thread_count(threads)
    k = max(1, min(neighbors, n - 1))
    m = max(k, min(gram_neighbors, n - 1))
    x = matrix.astype(np.float32)
    columns, values, diagonal = _pruned_gram(x, m, cores)
    penalised = diagonal + dropout_penalty(diagonal, dropout, l2)  # G[i, i] + Λ[i, i]
    kept = _symmetric_kept(columns, values, n)
    near = np.ascontiguousarray(columns[:, :k])
    exact = values[:, :k].astype(np.float64)  # G[j, N_j]: exact, from j's own Gram row
    del columns, values
    per_block = max(1, _SLOTS_PER_BLOCK // k)

    # Targets whose nearest neighbours agree go together: their neighbourhoods overlap.
    order = np.lexsort((np.arange(n), near[:, 0]))

    def solve(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chosen = order[start:stop]
        targets = near[chosen]
        present = targets >= 0
        union = np.unique(targets[present])
        position = np.full(n, union.size, dtype=np.int64)  # absent: the zero row at the end
        position[union] = np.arange(union.size)
        square = np.zeros((union.size + 1, union.size + 1), dtype=np.float32)
        square[:-1, :-1] = kept[union][:, union].toarray()  # scipy's C++ row/column selection
        slots = position[np.where(present, targets, union[0] if union.size else 0)]
        slots[~present] = union.size
        flat = slots[:, :, None] * (union.size + 1) + slots[:, None, :]
        systems = square.ravel()[flat]
        ridge = np.where(present, penalised[np.where(present, targets, 0)], 1.0)
        systems[:, np.arange(k), np.arange(k)] = ridge
        rhs = np.where(present, exact[chosen], 0.0).astype(np.float32)
        weights = np.linalg.solve(systems, rhs[:, :, None])[:, :, 0]
        target = np.broadcast_to(chosen[:, None], targets.shape)
        return targets[present], target[present], weights[present].astype(np.float32)

    with threadpool_limits(1, "blas"):  # the blocks run on our own threads
        parts = map_blocks(n, per_block, solve, cores)
    rows = np.concatenate([p[0] for p in parts])
    cols = np.concatenate([p[1] for p in parts])
    data = np.concatenate([p[2] for p in parts])
    out = sp.csr_matrix((data, (rows, cols)), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out


class SparseEASEBackend(NeighbourScoring):
    """EASE's regressions on each item's nearest neighbours only: sparse B, no items² array."""

    name = "sparse_ease"
    description = (
        "Sparse approximate EASE for large catalogues: each item's ridge regression on its "
        "top-k neighbours from a pruned Gram; memory grows with neighbours, not items²"
    )
    params = (
        Param(
            "l2",
            500.0,
            "L2 regularisation λ added to the diagonal of XᵀX (as in ease)",
            minimum=0,
            search=(1.0, 20000.0),
            log=True,
        ),
        Param(
            "neighbors",
            50,
            "items each item's regression uses (entries per column of B); cost grows with its cube",
            minimum=1,
            search=(10, 200),
            log=True,
        ),
        Param(
            "dropout",
            0.0,
            "EDLAE's dropout p: each predictor's λ grows by p/(1-p) x its buyers (0: EASE's λ)",
            minimum=0,
            maximum=0.99,
            search=(0.0, 0.9),
        ),
        Param(
            "gram_neighbors",
            1000,
            "Gram entries kept per item, to build the regressions from (at least neighbors; "
            "more: closer to EASE, more memory)",
            minimum=1,
        ),
        Param(
            "threads",
            0,
            "threads of the Gram product and the solves; 0: every core the process may use, "
            "within the caller's threadpool limits (results do not depend on it)",
            minimum=0,
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        weights = sparse_ease_weights(
            matrix,
            params["l2"],
            params["neighbors"],
            params["gram_neighbors"],
            params["dropout"],
            threads=params["threads"],
        )
        return {
            "similarity_indptr": weights.indptr.astype(np.int64),
            "similarity_indices": weights.indices.astype(np.int32),
            "similarity_data": weights.data.astype(np.float32),
        }


@hookimpl
def register_backends(register):
    register(SparseEASEBackend())
