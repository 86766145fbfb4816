"""What the sparse item x item backends share: top-k per row, CSR assembly, specs, scoring."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import Arrays, ArraySpec
from growthrec.errors import ModelFileError

__all__ = [
    "NEIGHBOUR_KEYS",
    "NeighbourScoring",
    "csr_arrays",
    "csr_problem",
    "map_blocks",
    "neighbour_matrix",
    "neighbour_specs",
    "similarity_problem",
    "top_k_rows",
]

#: The stored item x item matrix, as CSR arrays (``itemknn``, ``rp3beta``, ``sparse_ease``).
NEIGHBOUR_KEYS = ("similarity_indptr", "similarity_indices", "similarity_data")

T = TypeVar("T")


def map_blocks(
    n: int, rows_per_block: int, work: Callable[[int, int], T], n_threads: int
) -> list[T]:
    """``work(start, stop)`` over ``range(n)`` in blocks, on ``n_threads`` threads, in order.

    The numeric work in each block (sparse products, numpy, LAPACK) releases the GIL.
    """
    starts = range(0, n, max(1, rows_per_block))
    if n_threads <= 1 or len(starts) <= 1:
        return [work(s, min(s + rows_per_block, n)) for s in starts]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(lambda s: work(s, min(s + rows_per_block, n)), starts))


def top_k_rows(dense: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``k`` largest positive entries of ``dense``: (counts, columns, values).

    Columns come sorted within each row (canonical CSR). Entries at zero or below are no
    candidates (pairs never bought together). Ties at the k-th value are broken by
    ``np.argpartition``: arbitrarily, but the same way every run.
    """
    n_rows, n_cols = dense.shape
    if k < n_cols:
        part = np.argpartition(dense, n_cols - k, axis=1)[:, n_cols - k :]
        keep = np.zeros(dense.shape, dtype=bool)
        np.put_along_axis(keep, part, True, axis=1)
        keep &= dense > 0
    else:
        keep = dense > 0
    r, c = np.nonzero(keep)
    counts = np.bincount(r, minlength=n_rows)
    return counts, c.astype(np.int32), dense[r, c].astype(np.float32)


def csr_arrays(blocks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int) -> Arrays:
    """Blocks of ``top_k_rows`` results, in row order, as one n x n CSR's stored arrays."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    if blocks:
        np.cumsum(np.concatenate([b[0] for b in blocks]), out=indptr[1:])
    empty_i, empty_f = np.zeros(0, np.int32), np.zeros(0, np.float32)
    return {
        "similarity_indptr": indptr,
        "similarity_indices": np.concatenate([empty_i, *(b[1] for b in blocks)]),
        "similarity_data": np.concatenate([empty_f, *(b[2] for b in blocks)]),
    }


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


def neighbour_specs(n_items: int, most: int) -> dict[str, ArraySpec]:
    """The CSR arrays of an items x items matrix with at most ``most`` stored entries."""
    return {
        "similarity_indptr": ArraySpec((n_items + 1,), "iu", meaning="items + 1"),
        "similarity_indices": ArraySpec((None,), "iu", max_size=most),
        "similarity_data": ArraySpec((None,), max_size=most, learned=True),
    }


def neighbour_matrix(arrays: Arrays, n_items: int, backend: str) -> sp.csr_matrix:
    """The stored matrix, its index arrays checked so scipy never reads out of bounds."""
    problem = similarity_problem(arrays, n_items)
    if problem:
        raise ModelFileError(f"{backend}: the stored item x item matrix is damaged ({problem})")
    return sp.csr_matrix(
        (arrays["similarity_data"], arrays["similarity_indices"], arrays["similarity_indptr"]),
        shape=(n_items, n_items),
    )


class NeighbourScoring:
    """What a model stored as a sparse items x items matrix W (``similarity_*`` CSR arrays,
    at most ``params["neighbors"]`` entries per item) shares: its checks and ``x·W`` scoring."""

    name: str

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """W as CSR: at most ``neighbors`` entries per item."""
        return neighbour_specs(n_items, n_items * min(params["neighbors"], n_items))

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
        weights = neighbour_matrix(arrays, rows.shape[1], self.name)
        return (rows.astype(np.float32, copy=False) @ weights).toarray()

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Row ``i`` of W: what a one-item basket of item ``i`` scores."""
        n_items = arrays["similarity_indptr"].size - 1
        return neighbour_matrix(arrays, n_items, self.name)[np.asarray(items)].toarray()
