"""``rp3beta``: RP3beta (Paudel et al. 2017), a three-step random walk item x item model.

From item ``i`` a walk steps to a customer who bought it and on to another item that customer
bought: ``P_iu = 1/deg(i)`` over ``i``'s buyers and ``P_uj = x_uj / Σ_j x_uj`` over the
customer's row. Both steps are raised to the power ``alpha`` (entry by entry) and the landing
item is divided by its popularity to the power ``beta``:

    W[i, j] = (P_iu^α P_uj^α)[i, j] / deg(j)^β,   deg(j) = customers who bought j.

``beta = 0`` is the plain random walk (P3alpha); larger ``beta`` pushes down best sellers.
Each item keeps its ``neighbors`` largest ``W[i, j]`` (``j ≠ i``, pairs bought together only)
and a customer's scores are ``x W``, as in Dacrema et al.'s reference (RecSys 2019), where
RP3beta was among the strongest baselines. Fit works in blocks of item rows, never items²;
new customers are scored from their basket (fold-in) exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from growthrec.backends._sparse_neighbours import (
    NeighbourScoring,
    csr_arrays,
    map_blocks,
    top_k_rows,
)
from growthrec.backends.contract import Arrays, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.core.threads import thread_count

__all__ = ["RP3betaBackend", "rp3beta_walk_factors"]

#: Working memory of the W row blocks in flight (sparse, dense, partition: 32 bytes a cell).
BLOCK_BYTES = 256 * 2**20


def _inverse_power(values: np.ndarray, exponent: float) -> np.ndarray:
    """``values ** -exponent`` where positive, 0 where not (an item nobody bought)."""
    out = np.zeros(values.shape, dtype=np.float64)
    positive = values > 0
    out[positive] = values[positive] ** -exponent
    return out


def rp3beta_walk_factors(
    matrix: sp.csr_matrix, alpha: float, beta: float
) -> tuple[sp.csc_matrix, sp.csr_matrix, np.ndarray]:
    """The walk's two steps and the landing re-weighting: ``W = diag(a) Sᵀ T diag(b)``.

    ``S`` is the binary users x items matrix (CSC), ``T`` the users x items step
    ``(x_uj / Σ_j x_uj)^α`` (CSR), and ``a = deg^-α``, ``b = deg^-β`` (returned as one
    (2, n_items) array) so that ``W = (a[:, None] * SᵀT) * b[None, :]``.
    """
    x = matrix.astype(np.float32, copy=True)
    x.data = np.where(x.data > 0, x.data, 0).astype(np.float32)  # a return is no step
    x.eliminate_zeros()
    binary = x.copy()
    binary.data[:] = 1
    degree = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    row_sums = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
    step = x.copy()
    per_entry = np.repeat(row_sums, np.diff(x.indptr))
    step.data = ((x.data / per_entry) ** alpha).astype(np.float32)
    scale = np.vstack([_inverse_power(degree, alpha), _inverse_power(degree, beta)])
    return binary.tocsc(), step, scale


class RP3betaBackend(NeighbourScoring):
    """RP3beta: a random walk item x item model with popularity re-weighting, sparse top-k."""

    name = "rp3beta"
    description = (
        "RP3beta (Paudel et al. 2017): item-item random walk, best sellers divided by "
        "popularity^beta; sparse top-k neighbours"
    )
    params = (
        Param(
            "alpha",
            1.0,
            "exponent of the walk's transition probabilities (1: the plain walk; below 1 "
            "flattens them)",
            minimum=0,
            search=(0.1, 2.0),
        ),
        Param(
            "beta",
            0.5,
            "landing item divided by its popularity^beta (0: no re-weighting, P3alpha)",
            minimum=0,
            search=(0.0, 1.0),
        ),
        Param(
            "neighbors",
            200,
            "items kept per item (the largest walk scores)",
            minimum=1,
            search=(10, 1000),
            log=True,
        ),
        Param(
            "threads",
            0,
            "threads computing the walk; 0: every core the process may use, within the "
            "caller's threadpool limits (results do not depend on it)",
            minimum=0,
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        n_items = matrix.shape[1]
        binary, step, scale = rp3beta_walk_factors(matrix, params["alpha"], params["beta"])
        a, b = scale.astype(np.float32)
        threads = thread_count(params["threads"])
        rows_per_block = max(1, BLOCK_BYTES // threads // (32 * max(n_items, 1)))

        def block(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            dense = (binary[:, start:stop].T.tocsr() @ step).toarray()
            dense *= a[start:stop, None]
            dense *= b[None, :]
            dense[np.arange(stop - start), np.arange(start, stop)] = 0  # i → i is no advice
            return top_k_rows(dense, params["neighbors"])

        return csr_arrays(map_blocks(n_items, rows_per_block, block, threads), n_items)


@hookimpl
def register_backends(register):
    register(RP3betaBackend())
