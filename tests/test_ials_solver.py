"""The batched conjugate-gradient path of ``ials``: padded row batches and the CG they run,
against a dense row-by-row reference of the same iteration."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.backends.ials import frequency_regularization, row_batches, solve_rows


def _matrix(n_rows: int, n_cols: int, density: float, seed: int) -> sp.csr_matrix:
    """Random counts 1..3 with some empty rows (row lengths vary from 0 to n_cols)."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_rows, n_cols)) < density) * rng.integers(1, 4, (n_rows, n_cols))
    dense[rng.random(n_rows) < 0.5 * density] = rng.integers(1, 4, n_cols)  # full rows
    dense[rng.random(n_rows) < 0.1] = 0  # empty rows
    return sp.csr_matrix(dense.astype(np.float32))


def _dense_cg(
    m: np.ndarray,
    h: np.ndarray,
    start: np.ndarray,
    penalty: np.ndarray,
    a0: float,
    steps: int,
) -> np.ndarray:
    """``steps`` textbook CG steps on each row's dense system, one row at a time (float64)."""
    h = h.astype(float)
    out = np.empty(start.shape)
    for r in range(m.shape[0]):
        a = h.T @ (m[r][:, None] * h) + a0 * h.T @ h + penalty[r] * np.eye(h.shape[1])
        w = start[r].astype(float)
        residual = h.T @ m[r] - a @ w
        direction = residual.copy()
        rs = residual @ residual
        for _ in range(steps):
            a_dir = a @ direction
            curvature = direction @ a_dir
            step = rs / curvature if curvature > 0 else 0.0
            w = w + step * direction
            residual = residual - step * a_dir
            rs_new = residual @ residual
            direction = residual + (rs_new / rs if rs > 0 else 0.0) * direction
            rs = rs_new
        out[r] = w
    return out


def test_row_batches_hold_every_row_once_with_its_pairs_and_zero_padding() -> None:
    x = _matrix(80, 30, 0.15, seed=0)
    lengths = np.diff(x.indptr)
    assert (lengths == 0).any() and lengths.max() == 30  # empty and full rows both present
    batches = row_batches(x, width=4, block_cells=200)
    assert len(batches) > 5  # small cells: many batches, so padding and ordering are tested
    rows = np.concatenate([b[0] for b in batches])
    np.testing.assert_array_equal(np.sort(rows), np.arange(80))
    rebuilt = np.zeros((80, 30), dtype=np.float32)
    for batch_rows, cols, values in batches:
        # a batch is within its budget unless one row alone exceeds it
        assert cols.size * 4 <= 200 or batch_rows.size == 1
        assert cols.shape == values.shape == (batch_rows.size, max(1, lengths[batch_rows].max()))
        np.add.at(rebuilt, (np.repeat(batch_rows, cols.shape[1]), cols.ravel()), values.ravel())
        assert (values[np.arange(cols.shape[1]) >= lengths[batch_rows][:, None]] == 0).all()
    np.testing.assert_array_equal(rebuilt, x.toarray())


def test_row_batches_of_an_empty_matrix_are_all_padding() -> None:
    batches = row_batches(sp.csr_matrix((5, 7), dtype=np.float32), width=3)
    assert sorted(np.concatenate([b[0] for b in batches]).tolist()) == list(range(5))
    assert not any(b[2].any() for b in batches)


def test_batched_cg_equals_a_dense_row_by_row_cg() -> None:
    x = _matrix(120, 40, 0.1, seed=1)
    rng = np.random.default_rng(2)
    h = rng.standard_normal((40, 6)).astype(np.float32)
    start = (0.3 * rng.standard_normal((120, 6))).astype(np.float32)
    penalty = frequency_regularization(np.diff(x.indptr), 40, 0.05, 0.2, 1.0)
    for steps in (0, 1, 3):
        expected = _dense_cg(x.toarray(), h, start, penalty, 0.2, steps)
        for cells in (24, 500, 2**18):  # one row per batch, a few rows, every row in one
            batches = row_batches(x, 6, cells)
            got = solve_rows(x, h, start, penalty, 0.2, steps, n_threads=1, batches=batches)
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)
    # the steps move the factors: a test that would notice a CG doing nothing
    assert np.abs(expected - start).max() > 0.1


def test_batched_cg_does_not_depend_on_threads_or_batch_size() -> None:
    x = _matrix(400, 50, 0.08, seed=3)
    rng = np.random.default_rng(4)
    h = rng.standard_normal((50, 8)).astype(np.float32)
    start = rng.standard_normal((400, 8)).astype(np.float32)
    penalty = np.full(400, 0.7, dtype=np.float32)
    batches = row_batches(x, 8, 300)
    one = solve_rows(x, h, start, penalty, 0.1, 3, n_threads=1, batches=batches)
    two = solve_rows(x, h, start, penalty, 0.1, 3, n_threads=2, batches=batches)
    np.testing.assert_array_equal(one, two)  # same batches: bit for bit
    default = solve_rows(x, h, start, penalty, 0.1, 3, n_threads=2)
    np.testing.assert_allclose(default, one, rtol=1e-4, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    n_rows=st.integers(1, 25),
    n_cols=st.integers(1, 12),
    density=st.floats(0.0, 1.0),
    d=st.integers(1, 5),
    a0=st.one_of(st.just(0.0), st.floats(1e-3, 1.0)),  # no penalties below float32's range
    l2=st.floats(0.01, 2.0),
    steps=st.integers(0, 4),
    cells=st.integers(1, 400),
    seed=st.integers(0, 2**16),
)
def test_batched_cg_matches_the_dense_reference_on_random_problems(
    n_rows: int,
    n_cols: int,
    density: float,
    d: int,
    a0: float,
    l2: float,
    steps: int,
    cells: int,
    seed: int,
) -> None:
    x = _matrix(n_rows, n_cols, density, seed)
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n_cols, d)).astype(np.float32)
    start = rng.standard_normal((n_rows, d)).astype(np.float32)
    penalty = frequency_regularization(np.diff(x.indptr), n_cols, l2, a0, 1.0)
    got = solve_rows(x, h, start, penalty, a0, steps, 1, row_batches(x, d, cells))
    expected = _dense_cg(x.toarray(), h, start, penalty, a0, steps)
    scale = 1 + np.abs(expected).max()
    # float32 against float64: once a few steps have nearly solved a small system, the step
    # sizes divide tiny residuals and rounding shows at ~1e-3 (a wrong product would be O(1)).
    np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-2 * scale)
