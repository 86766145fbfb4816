"""``ease``: Steck's EASE (2019), a closed-form item x item linear model.

``G = XᵀX + λI``, ``P = G⁻¹``, ``B = -P / diag(P)`` (column ``j`` divided by ``-P[j, j]``) and
``diag(B) = 0``; a customer's scores are ``x B``. ``B`` is dense: items² x 4 bytes in the model
file (55 MB at 3.7k items, 2.9 GB at 27k). Fit works in float32 and in place: the Gram matrix
is built block by block from a sparse product, then inverted with LAPACK's Cholesky routines
``spotrf``/``spotri`` on the matrix itself (``numpy.linalg`` copies it: ``np.linalg.inv``
ran out of memory at 27k items). Customers not seen in training are scored the same way from
their basket (fold-in), exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends.contract import Arrays, ArraySpec, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.backends.itemknn import map_gram_row_blocks
from growthrec.core.threads import thread_count
from growthrec.errors import ParameterError

__all__ = ["EASEBackend", "ease_weights"]

#: Sparse working memory of one block of Gram rows (8 bytes per cell: index and value).
BLOCK_BYTES = 256 * 2**20
#: Above this many items the Cholesky factorisation runs on one BLAS thread: OpenBLAS's
#: threaded potrf (0.3.30 in scipy, 0.3.31 in numpy) segfaulted from about 26,300 items with
#: 2 threads (26,000 was fine; one thread was fine at 27,000). The inverse (potri) stays threaded.
THREADED_CHOLESKY_MAX_ITEMS = 20_000


def _needed_bytes(n_items: int) -> int:
    """Memory to plan for: the dense items x items matrix, and as much again for the training
    matrix, the Gram blocks and a second copy when a saved model is loaded beside the first
    (measured peak at 27k items and 20M interactions: 3.6 GB for a 2.9 GB matrix)."""
    return n_items * n_items * 4 * 2


def _symmetrise_from_lower(a: np.ndarray, step: int = 256) -> None:
    """Copy the lower triangle of square ``a`` onto its upper triangle, in place, by blocks.

    Narrow blocks keep the transposed copy cache-friendly and its temporaries small.
    """
    n = a.shape[0]
    for start in range(0, n, step):
        stop = min(start + step, n)
        a[start:stop, stop:] = a[stop:, start:stop].T
        diagonal = a[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        diagonal[upper] = diagonal.T[upper]


def ease_weights(matrix: sp.csr_matrix, l2: float, *, threads: int = 0) -> np.ndarray:
    """EASE's item x item matrix ``B`` (dense float32) for the weighted users x items matrix.

    ``threads`` (0: every core the process may use) build the Gram matrix and run LAPACK's
    BLAS; never more than the caller's threadpool limits, so BLAS is never raised above them.
    """
    from scipy.linalg import lapack

    n_items = matrix.shape[1]
    cores = thread_count(threads)
    gram = np.zeros((n_items, n_items), dtype=np.float32)

    def fill(start: int, stop: int, block: sp.csr_matrix) -> None:
        block.toarray(out=gram[start:stop])  # adds into the zeros, no dense temporary

    rows_per_block = max(1, BLOCK_BYTES // cores // (8 * max(n_items, 1)))
    map_gram_row_blocks(matrix.astype(np.float32), rows_per_block, fill, n_threads=cores)
    gram[np.diag_indices(n_items)] += np.float32(l2)
    # G is symmetric, so its Fortran-ordered view G.T is G itself: LAPACK works in place on it.
    # The result is valid in G's lower triangle (the upper one of the Fortran view).
    with threadpool_limits(cores if n_items <= THREADED_CHOLESKY_MAX_ITEMS else 1, "blas"):
        factor, info = lapack.spotrf(gram.T, lower=0, clean=0, overwrite_a=1)
    if info == 0:
        with threadpool_limits(cores, "blas"):
            factor, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise ParameterError(
            f"ease: XᵀX + l2·I is not positive definite at l2={l2:g} (LAPACK info {info}); "
            "use a larger l2"
        )
    if not np.shares_memory(factor, gram):  # LAPACK wrappers copy if the layout did not fit
        gram[...] = factor.T
    del factor
    _symmetrise_from_lower(gram)
    diagonal = np.diag(gram).copy()
    gram /= -diagonal[None, :]  # B[i, j] = -P[i, j] / P[j, j]
    gram[np.diag_indices(n_items)] = 0
    return gram


class EASEBackend:
    """Embarrassingly Shallow Autoencoder: scores ``x B``, ``B`` in closed form from ``XᵀX``."""

    name = "ease"
    description = "EASE (Steck 2019): closed-form item x item regression; dense, items² memory"
    params = (
        Param("l2", 500.0, "L2 regularisation λ added to the diagonal of XᵀX", minimum=0),
        Param(
            "max_items",
            30000,
            "refuse to fit above this many items (memory grows with items²)",
            minimum=1,
        ),
        Param(
            "threads",
            0,
            "threads building and inverting XᵀX; 0: every core the process may use, within the "
            "caller's threadpool limits",
            minimum=0,
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        n_items = matrix.shape[1]
        if n_items > params["max_items"]:
            gigabytes = _needed_bytes(n_items) / 1e9
            raise ParameterError(
                f"ease: {n_items} items need about {gigabytes:.1f} GB of memory "
                f"(items² x 4 bytes x 2), above the limit of max_items={params['max_items']}; "
                f"raise it with --param max_items={n_items} (params={{'max_items': {n_items}}}) "
                "if the machine has the memory, or use itemknn"
            )
        return {
            "item_weights": ease_weights(matrix, params["l2"], threads=params.get("threads", 0))
        }

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """The dense items x items matrix B."""
        return {
            "item_weights": ArraySpec((n_items, n_items), learned=True, meaning="items x items")
        }

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        return np.asarray(rows.astype(np.float32, copy=False) @ arrays["item_weights"])

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Row ``i`` of ``B``: what buying item ``i`` predicts (a one-item basket's scores)."""
        return arrays["item_weights"][np.asarray(items)]


@hookimpl
def register_backends(register):
    register(EASEBackend())
