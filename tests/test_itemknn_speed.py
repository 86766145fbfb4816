"""itemknn's sparse neighbour selection: the same neighbours as a dense sort, ties to the lower
item, in memory that follows the co-purchases rather than items²."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.backends import itemknn as itemknn_module
from growthrec.backends.itemknn import _top_in_segments, item_neighbours


def _dense_reference(weighted: sp.csr_matrix, k: int) -> np.ndarray:
    """Each row's k largest co-purchase similarities by a full sort (value down, column up),
    the item itself a candidate and then dropped."""
    gram = (weighted.T @ weighted).toarray().astype(np.float32)
    out = np.zeros_like(gram)
    for i, row in enumerate(gram):
        candidates = np.flatnonzero(row != 0)
        order = candidates[np.lexsort((candidates, -row[candidates]))][:k]
        out[i, order] = row[order]
    np.fill_diagonal(out, 0)
    return out


@pytest.mark.parametrize("k", [1, 3, 10, 50])
@pytest.mark.parametrize("seed", [0, 1])
def test_neighbours_equal_a_full_sort_with_many_ties(k, seed) -> None:
    # Binary purchases and small integer weights: many equal similarities at the k-th place.
    rng = np.random.default_rng(seed)
    popular = rng.pareto(1.0, 120).clip(0, 20)
    bought = rng.random((400, 120)) < 0.01 * popular
    weighted = sp.csr_matrix((bought * rng.integers(1, 3, bought.shape)).astype(np.float32))
    got = item_neighbours(weighted, k)
    assert got.has_sorted_indices
    np.testing.assert_array_equal(got.toarray(), _dense_reference(weighted, k))


def test_segment_selection_breaks_ties_by_column_not_by_position() -> None:
    # One segment, columns stored out of order (as a sparse product leaves them).
    values = np.array([0.5, 0.5, 1.0, 0.5, 0.5, 0.2], dtype=np.float32)
    columns = np.array([9, 4, 0, 7, 2, 1], dtype=np.int32)
    chosen = _top_in_segments(values, columns, np.array([0]), np.array([6]), 3)
    assert sorted(columns[chosen].tolist()) == [0, 2, 4]
    # Two segments of different lengths in one call.
    values = np.r_[values, np.array([3, 1, 2, 2, 2], dtype=np.float32)]
    columns = np.r_[columns, np.array([5, 6, 8, 3, 1], dtype=np.int32)]
    chosen = _top_in_segments(values, columns, np.array([0, 6]), np.array([6, 5]), 2)
    assert sorted(chosen.tolist()) == [2, 4, 6, 10]  # columns 0, 2 | 5, 1


def test_block_boundaries_do_not_change_the_neighbours(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    weighted = sp.random(300, 90, density=0.05, random_state=rng, format="csr", dtype=np.float32)
    whole = item_neighbours(weighted, 6, n_threads=1)
    for block_bytes in (1, 5_000, 50_000):
        for threads in (1, 2):
            got = item_neighbours(weighted, 6, block_bytes=block_bytes, n_threads=threads)
            np.testing.assert_array_equal(got.indptr, whole.indptr)
            np.testing.assert_array_equal(got.indices, whole.indices)
            np.testing.assert_array_equal(got.data, whole.data)
    monkeypatch.setattr(itemknn_module, "BLOCK_BYTES", 1)
    bounds = itemknn_module._block_bounds(weighted, 1)
    np.testing.assert_array_equal(bounds, np.arange(91))  # at least one item per block


def test_memory_follows_the_co_purchases_not_items_squared() -> None:
    # 200,000 items, 3,000 customers with 3 purchases each: a dense row block of the old path
    # alone took 24 bytes x 200,000 items per row; the sparse path needs a few MiB in all.
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(3_000), 3)
    items = rng.integers(0, 200_000, users.size)
    weighted = sp.csr_matrix(
        (np.ones(users.size, np.float32), (users, items)), shape=(3_000, 200_000)
    )
    tracemalloc.start()
    try:
        got = item_neighbours(weighted, 100, n_threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.shape == (200_000, 200_000)
    assert got.nnz == (weighted.T @ weighted).nnz - np.count_nonzero(weighted.sum(axis=0))
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB"
