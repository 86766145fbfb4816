"""``ials``: implicit ALS as revisited by Rendle et al. (RecSys 2022), growthrec's own solver.

Rendle, Krichene, Zhang and Koren ("Revisiting the performance of iALS on item recommendation
benchmarks") put iALS level with EASE on ML-20M and MSD with two changes to the usual loss:

    Σ_(u,i) bought  c_ui (w_u·h_i − 1)²  +  α0 Σ_u Σ_i (w_u·h_i)²
      + λ Σ_u (|I_u| + α0 |I|)^ν ‖w_u‖²  +  λ Σ_i (|U_i| + α0 |U|)^ν ‖h_i‖²

``α0`` (``unobserved_weight``) weighs every pair towards 0 (the Gramian term, computed as
``α0 · wᵀ(HᵀH)w`` without touching the unobserved pairs), and the penalty grows with how many
items a customer bought (``|I_u|``) and how many customers an item has (``|U_i|``) to the power
``ν`` (``nu``; 0 is the fixed λ of ``implicit``). ``c_ui`` is the pair's value in the training
matrix (1 with the default binary weighting). ``implicit`` cannot express ``ν``: its
regularisation is one λ for every row.

Each half-step solves, for every customer at once, ``(Σ_i c_ui h_i h_iᵀ + α0 HᵀH + λ_u I) w_u =
Σ_i c_ui h_i`` by ``cg_steps`` steps of conjugate gradient started from the current factors
(as ``implicit`` does), vectorised over customers: customers of similar basket length form a
padded batch whose item factors are gathered once per half-step, and each step's ``A w`` is
two batched matrix-vector products over them plus one small GEMM (``HᵀH`` is computed once),
batches on ``threads`` threads, no Python loop over customers. ``cg_steps=0`` solves exactly
instead (``exact_rows``: batched GEMMs and LAPACK solves over customers of similar basket
length), as Rendle et al. do. Factors start as N(0, init_std² / factors). Scores are
``w_u · h_i``; a customer not seen in training is folded in with the exact solve of the same
equation for fixed items.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends._implicit import cosine_similar_items, factor_specs, user_factor_rows
from growthrec.backends.contract import Arrays, ArraySpec, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.core.threads import thread_count

__all__ = [
    "IALSBackend",
    "exact_rows",
    "fold_in",
    "frequency_regularization",
    "row_batches",
    "solve_rows",
]

#: Float32 cells of gathered factor rows per block of a sparse product: small enough to stay
#: in cache between the gather and the dot products.
_BLOCK_CELLS = 2**19

#: Float32 cells of gathered factors per conjugate-gradient batch (16 MB). Large, because
#: numpy holds the GIL between calls: with small batches the per-call overhead serialises the
#: threads (measured at 20% of ML-20M shape, 64 factors, 2 cores: 2**18 cells 2.8 s on one
#: thread and 3.4 s on two; 2**22 cells 2.9 s and 1.6 s).
_CG_BLOCK_CELLS = 2**22


def frequency_regularization(
    counts: np.ndarray, n_other: int, l2: float, unobserved: float, nu: float
) -> np.ndarray:
    """Each row's penalty ``λ (count + α0 · n_other)^ν`` (float32)."""
    return (l2 * (counts.astype(np.float64) + unobserved * n_other) ** nu).astype(np.float32)


#: A row batch of the conjugate-gradient path: the rows, their bought columns padded to the
#: batch's longest row with column 0, and the pairs' values padded with 0 (B, B x L, B x L).
RowBatch = tuple[np.ndarray, np.ndarray, np.ndarray]


def _length_batches(
    lengths: np.ndarray, width: int, block_cells: int, *, keep_empty: bool = False
) -> list[np.ndarray]:
    """Rows in batches by increasing length, each at most ``block_cells`` when its rows are
    padded to the batch's longest (``width`` cells per entry; an empty row counts as one
    entry). Empty rows are left out unless ``keep_empty``."""
    order = np.argsort(lengths, kind="stable")
    if not keep_empty:
        order = order[lengths[order] > 0]
    sorted_lengths = np.maximum(lengths[order], 1)
    batches = []
    start = 0
    while start < order.size:
        most = max(1, block_cells // (width * int(sorted_lengths[start])))
        window = sorted_lengths[start : start + most]
        padded_cells = np.arange(1, window.size + 1) * window * width
        count = max(1, int(np.searchsorted(padded_cells, block_cells, side="right")))
        batches.append(order[start : start + count])
        start += count
    return batches


def row_batches(
    matrix: sp.csr_matrix, width: int, block_cells: int = _CG_BLOCK_CELLS
) -> list[RowBatch]:
    """Every row (empty ones too) in padded batches of similar length, for ``solve_rows``.

    The layout depends only on the matrix, so a fit builds it once per side. Padding points
    at column 0 with value 0: it adds exact zeros to every product.
    """
    indptr = matrix.indptr
    lengths = np.diff(indptr)
    out = []
    for rows in _length_batches(lengths, width, block_cells, keep_empty=True):
        sizes = lengths[rows]
        slot = np.arange(max(1, int(sizes.max())))
        present = slot < sizes[:, None]
        if matrix.nnz:
            at = np.minimum(indptr[rows][:, None] + slot, matrix.nnz - 1)
            cols = np.where(present, matrix.indices[at], 0).astype(np.int32)
            values = np.where(present, matrix.data[at], 0).astype(np.float32)
        else:
            cols = np.zeros(present.shape, dtype=np.int32)
            values = np.zeros(present.shape, dtype=np.float32)
        out.append((rows, cols, values))
    return out


def _cg_batch(
    batch: RowBatch,
    fixed: np.ndarray,
    current: np.ndarray,
    gramian: np.ndarray,
    penalty: np.ndarray,
    cg_steps: int,
) -> np.ndarray:
    """``cg_steps`` steps of conjugate gradient for one batch of rows, from ``current``.

    The batch's item factors are gathered once (B x L x d) and every product ``A_r v_r`` is
    two batched matrix-vector products over them, so the steps run in cache.
    """
    _, cols, values = batch
    gathered = np.take(fixed, cols, axis=0)
    weights = values[:, :, None]

    def weighted_sum(dots: np.ndarray) -> np.ndarray:
        """``Σ_j m_rj x_rj h_j`` for every row, from the batch's ``x`` (B x L x 1)."""
        dots *= weights
        return np.matmul(dots.transpose(0, 2, 1), gathered)[:, 0, :]

    def times_a(v: np.ndarray) -> np.ndarray:
        out = weighted_sum(np.matmul(gathered, v[:, :, None]))
        out += v @ gramian
        out += penalty[:, None] * v
        return out

    w = current.copy()
    # Σ m h − A w = Σ m (1 − h·w) h − (α0 HᵀH + λ) w: the target and A w in one pass
    ones_minus = np.matmul(gathered, w[:, :, None])
    np.subtract(np.float32(1), ones_minus, out=ones_minus)
    residual = weighted_sum(ones_minus)
    residual -= w @ gramian
    residual -= penalty[:, None] * w
    direction = residual.copy()
    rs = np.einsum("nd,nd->n", residual, residual)
    for _ in range(cg_steps):
        a_dir = times_a(direction)
        curvature = np.einsum("nd,nd->n", direction, a_dir)
        step = np.divide(rs, curvature, out=np.zeros_like(rs), where=curvature > 0)
        w += step[:, None] * direction
        residual -= step[:, None] * a_dir
        rs_new = np.einsum("nd,nd->n", residual, residual)
        ratio = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0)
        direction = residual + ratio[:, None] * direction
        rs = rs_new
    return w


def solve_rows(
    matrix: sp.csr_matrix,
    fixed: np.ndarray,
    current: np.ndarray,
    penalty: np.ndarray,
    unobserved: float,
    cg_steps: int,
    n_threads: int,
    batches: list[RowBatch] | None = None,
) -> np.ndarray:
    """One half-step: every row's ``(Σ m h hᵀ + α0 HᵀH + λ_r I) w = Σ m h`` by ``cg_steps``
    steps of conjugate gradient from ``current`` (float32).

    Rows are independent: each batch of ``batches`` (``row_batches(matrix, d)`` when not
    given) runs all its steps at once, batches on ``n_threads`` threads; the result does not
    depend on the thread count.
    """
    if batches is None:
        batches = row_batches(matrix, fixed.shape[1])
    fixed = np.ascontiguousarray(fixed, dtype=np.float32)
    current = np.asarray(current, dtype=np.float32)
    penalty = np.asarray(penalty, dtype=np.float32)
    gramian = (fixed.T @ fixed) * np.float32(unobserved)
    out = np.empty_like(current)

    def solve(batch: RowBatch) -> None:
        rows = batch[0]
        out[rows] = _cg_batch(batch, fixed, current[rows], gramian, penalty[rows], cg_steps)

    _each_batch(solve, batches, n_threads)
    return out


def _each_batch(solve: Callable[[Any], None], batches: Sequence[Any], n_threads: int) -> None:
    """``solve(batch)`` for every batch: in turn, or on ``n_threads`` threads."""
    if n_threads <= 1 or len(batches) <= 1:
        for batch in batches:
            solve(batch)
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(solve, batches))


def exact_rows(
    matrix: sp.csr_matrix,
    fixed: np.ndarray,
    penalty: np.ndarray,
    unobserved: float,
    *,
    dtype: type = np.float32,
    n_threads: int = 1,
    block_cells: int = _BLOCK_CELLS,
    targets: sp.csr_matrix | None = None,
) -> np.ndarray:
    """Every row's exact ``(Σ_j m_rj h_j h_jᵀ + α0 HᵀH + λ_r I)⁻¹ Σ_j t_rj h_j`` (float32),
    ``t`` being ``targets`` (default: ``matrix`` itself, as iALS; ALS's fold-in weighs the
    two sides differently).

    Vectorised: rows of similar length are padded into one batch, their ``Σ m h hᵀ`` is a
    batched GEMM and their systems one batched LAPACK solve (in ``dtype``); an empty row
    gets the zero solution. Cost: entries x d² for the products, rows x d³ for the solves.
    """
    d = fixed.shape[1]
    matrix = matrix.tocsr()
    gramian = (unobserved * (fixed.T @ fixed)).astype(dtype)
    rhs = np.asarray((matrix if targets is None else targets) @ fixed, dtype=dtype)
    out = np.zeros((matrix.shape[0], d), dtype=np.float32)
    diagonal = np.arange(d)

    def solve(batch: np.ndarray) -> None:
        sub = matrix[batch]
        sizes = np.diff(sub.indptr)
        owner = np.repeat(np.arange(batch.size), sizes)
        slot = np.arange(sub.nnz) - np.repeat(sub.indptr[:-1], sizes)
        padded = np.zeros((batch.size, sizes.max(), d), dtype=dtype)
        padded[owner, slot] = fixed[sub.indices]
        weighted = padded.copy()
        weighted[owner, slot] *= sub.data[:, None].astype(dtype)
        lhs = np.matmul(padded.transpose(0, 2, 1), weighted)
        lhs += gramian
        lhs[:, diagonal, diagonal] += penalty[batch, None].astype(dtype)
        try:
            out[batch] = np.linalg.solve(lhs, rhs[batch][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # λ = α0 = 0 and a row spanning fewer than d items
            out[batch] = (np.linalg.pinv(lhs) @ rhs[batch][:, :, None])[:, :, 0]

    _each_batch(solve, _length_batches(np.diff(matrix.indptr), d, block_cells), n_threads)
    return out


def fold_in(
    item_factors: np.ndarray,
    rows: sp.csr_matrix,
    l2: float,
    unobserved: float,
    nu: float,
    *,
    block_cells: int = _BLOCK_CELLS,
) -> np.ndarray:
    """Exact user factors of new customers for fixed item factors (float32, solved in float64):
    the fit's own equation for one row, ``exact_rows`` with the row's penalty."""
    rows = rows.tocsr()
    penalty = frequency_regularization(
        np.diff(rows.indptr), item_factors.shape[0], l2, unobserved, nu
    )
    return exact_rows(
        rows,
        item_factors,
        penalty,
        unobserved,
        dtype=np.float64,
        block_cells=block_cells,
    )


class IALSBackend:
    """iALS with Rendle et al.'s frequency-scaled regularisation; own conjugate-gradient solver."""

    name = "ials"
    description = (
        "iALS as tuned by Rendle et al. (2022): unobserved weight α0, penalty λ(|I_u| + "
        "α0|I|)^ν; growthrec's own vectorised solver"
    )
    params = (
        Param("factors", 64, "number of latent factors", minimum=1, search=(16, 256), log=True),
        Param(
            "regularization",
            0.01,
            "λ: the penalty on a row's factors is λ (|I_u| + α0 |I|)^ν",
            minimum=0,
            search=(1e-4, 1.0),
            log=True,
        ),
        Param(
            "unobserved_weight",
            0.1,
            "α0: weight of the pull of every (customer, item) pair towards 0",
            minimum=0,
            search=(1e-3, 1.0),
            log=True,
        ),
        Param(
            "nu",
            1.0,
            "ν: how the penalty scales with a row's count (0: fixed λ, as implicit; 1: linear)",
            minimum=0,
            search=(0.0, 1.0),
        ),
        Param("iterations", 15, "ALS sweeps (customers, then items)", minimum=1, fidelity=True),
        Param(
            "cg_steps",
            3,
            "conjugate-gradient steps per row and sweep, from the previous factors (more: "
            "closer to the exact solve, slower); 0: exact solves (cost grows with factors³)",
            minimum=0,
        ),
        Param("init_std", 0.1, "factors start as N(0, init_std² / factors)", minimum=0),
        Param(
            "threads",
            0,
            "threads of the sparse products; 0: every core the process may use, within the "
            "caller's threadpool limits (results do not depend on it)",
            minimum=0,
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        n_users, n_items = matrix.shape
        d = params["factors"]
        by_user = matrix.astype(np.float32)
        by_user.sort_indices()
        by_item = by_user.T.tocsr()
        l2, a0, nu = params["regularization"], params["unobserved_weight"], params["nu"]
        user_penalty = frequency_regularization(np.diff(by_user.indptr), n_items, l2, a0, nu)
        item_penalty = frequency_regularization(np.diff(by_item.indptr), n_users, l2, a0, nu)
        scale = params["init_std"] / np.sqrt(d)
        users = (rng.standard_normal((n_users, d)) * scale).astype(np.float32)
        items = (rng.standard_normal((n_items, d)) * scale).astype(np.float32)
        threads = thread_count(params["threads"])
        steps = params["cg_steps"]
        if steps:  # the padded layout of each side, built once for every sweep
            user_batches = row_batches(by_user, d)
            item_batches = row_batches(by_item, d)
        # BLAS at one thread: the products are split over rows on our own threads.
        with threadpool_limits(1, "blas"):
            for _ in range(params["iterations"]):
                if steps == 0:  # exact solves, as Rendle et al.
                    users = exact_rows(by_user, items, user_penalty, a0, n_threads=threads)
                    items = exact_rows(by_item, users, item_penalty, a0, n_threads=threads)
                else:
                    users = solve_rows(
                        by_user, items, users, user_penalty, a0, steps, threads, user_batches
                    )
                    items = solve_rows(
                        by_item, users, items, item_penalty, a0, steps, threads, item_batches
                    )
        if not (np.isfinite(users).all() and np.isfinite(items).all()):
            raise FloatingPointError("ials: the factors diverged (NaN or infinity)")
        return {"user_factors": users, "item_factors": items}

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """Both factor matrices."""
        return factor_specs(n_users, n_items, params["factors"])

    def item_factors(self, arrays: Arrays, params: Mapping[str, Any]) -> np.ndarray:
        """The learned item factors: scores are ``user_factors @ item_factors.T``."""
        return arrays["item_factors"]

    def user_factors(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        """Learned factors of known customers; new ones folded in exactly from ``rows``."""

        def fold_in_new(new: np.ndarray) -> np.ndarray:
            return fold_in(
                arrays["item_factors"],
                rows[new].astype(np.float32),
                params["regularization"],
                params["unobserved_weight"],
                params["nu"],
            )

        return user_factor_rows(arrays, users, fold_in_new)

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        return self.user_factors(arrays, params, rows, users) @ arrays["item_factors"].T

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Cosine between item factors (as ``als``)."""
        return cosine_similar_items(arrays["item_factors"], items)


@hookimpl
def register_backends(register):
    register(IALSBackend())
