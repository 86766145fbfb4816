"""``edlae``: EASE trained as a dropout-denoising autoencoder (Steck, NeurIPS 2020).

Steck's "Autoencoders that don't overfit towards the identity" shows that training a linear
item x item autoencoder with dropout probability ``p`` on its input is, in closed form, a ridge
regression whose penalty grows with each item's popularity:

    Λ = p/(1-p) · diag(G) + λI,   G = XᵀX,   P = (G + Λ)⁻¹.

* ``variant=dlae`` (denoising linear autoencoder): ``B = (G + Λ)⁻¹ G = I − P Λ``.
* ``variant=edlae`` (emphasised denoising, full emphasis on the dropped-out inputs): the
  paper's closed form adds the constraint ``diag(B) = 0``, so ``B = I − P / diag(P)``
  (column ``j`` divided by ``P[j, j]``): EASE with Λ in place of λI. ``p = 0`` is EASE itself.

Scores are ``x B``. Fit reuses EASE's path: the Gram matrix built in sparse blocks into one
float32 items x items array, inverted in place with LAPACK ``spotrf``/``spotri``; memory and
time are EASE's (items² x 4 bytes, twice during the fit). New customers are folded in exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends.contract import Arrays, ArraySpec, Param
from growthrec.backends.ease import (
    BLOCK_BYTES,
    THREADED_CHOLESKY_MAX_ITEMS,
    _needed_bytes,
    _symmetrise_from_lower,
)
from growthrec.backends.hookspecs import hookimpl
from growthrec.backends.itemknn import map_gram_row_blocks
from growthrec.core.threads import thread_count
from growthrec.errors import ParameterError

__all__ = ["VARIANTS", "EDLAEBackend", "dropout_penalty", "edlae_weights"]

#: ``edlae``: diag(B) = 0 (emphasised denoising); ``dlae``: plain denoising, B = (G + Λ)⁻¹ G.
VARIANTS = ("edlae", "dlae")


def dropout_penalty(gram_diagonal: np.ndarray, dropout: float, l2: float) -> np.ndarray:
    """The diagonal of Λ = p/(1-p)·diag(G) + λI, in float64."""
    return gram_diagonal.astype(np.float64) * (dropout / (1.0 - dropout)) + l2


def _inverted_penalised_gram(
    matrix: sp.csr_matrix, dropout: float, l2: float, cores: int
) -> tuple[np.ndarray, np.ndarray]:
    """``P = (XᵀX + Λ)⁻¹`` as one symmetric float32 array (built and inverted in place), and
    the diagonal of Λ."""
    from scipy.linalg import lapack

    n_items = matrix.shape[1]
    gram = np.zeros((n_items, n_items), dtype=np.float32)

    def fill(start: int, stop: int, block: sp.csr_matrix) -> None:
        block.toarray(out=gram[start:stop])  # adds into the zeros, no dense temporary

    rows_per_block = max(1, BLOCK_BYTES // cores // (8 * max(n_items, 1)))
    map_gram_row_blocks(matrix.astype(np.float32), rows_per_block, fill, n_threads=cores)
    penalty = dropout_penalty(np.diag(gram), dropout, l2)
    gram[np.diag_indices(n_items)] += penalty.astype(np.float32)
    # As in ease: G is symmetric, so LAPACK works in place on its Fortran view G.T.
    with threadpool_limits(cores if n_items <= THREADED_CHOLESKY_MAX_ITEMS else 1, "blas"):
        factor, info = lapack.spotrf(gram.T, lower=0, clean=0, overwrite_a=1)
    if info == 0:
        with threadpool_limits(cores, "blas"):
            factor, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise ParameterError(
            f"edlae: XᵀX + Λ is not positive definite at l2={l2:g}, dropout={dropout:g} "
            f"(LAPACK info {info}); use a larger l2 or dropout"
        )
    if not np.shares_memory(factor, gram):
        gram[...] = factor.T
    del factor
    _symmetrise_from_lower(gram)
    return gram, penalty


def edlae_weights(
    matrix: sp.csr_matrix, dropout: float, l2: float, variant: str = "edlae", *, threads: int = 0
) -> np.ndarray:
    """The item x item matrix ``B`` (dense float32) of EDLAE or DLAE for the users x items
    matrix; ``threads`` as ``thread_count`` (within the caller's threadpool limits)."""
    weights, penalty = _inverted_penalised_gram(matrix, dropout, l2, thread_count(threads))
    diagonal = np.diag_indices(weights.shape[0])
    if variant == "edlae":
        weights /= -np.diag(weights).copy()[None, :]  # B[i, j] = -P[i, j] / P[j, j]
        weights[diagonal] = 0
    else:
        weights *= -penalty.astype(np.float32)[None, :]  # B = I - P Λ
        weights[diagonal] += 1
    return weights


class EDLAEBackend:
    """EDLAE / DLAE: EASE's closed form with dropout-scaled, popularity-aware regularisation."""

    name = "edlae"
    description = (
        "EDLAE / DLAE (Steck 2020): EASE trained as a dropout-denoising autoencoder; dense, "
        "items² memory"
    )
    params = (
        Param(
            "dropout",
            0.25,
            "dropout probability p: each item's penalty grows by p/(1-p) x its buyers",
            minimum=0,
            maximum=0.99,
            search=(0.0, 0.9),
        ),
        Param(
            "l2",
            20.0,
            "L2 regularisation λ added to every item's penalty",
            minimum=0,
            search=(0.1, 5000.0),
            log=True,
        ),
        Param(
            "variant",
            "edlae",
            "edlae (emphasised denoising, diag(B) = 0) or dlae (B = (G + Λ)⁻¹ G)",
            choices=VARIANTS,
            search=VARIANTS,
        ),
        Param(
            "max_items",
            30000,
            "refuse to fit above this many items (memory grows with items²)",
            minimum=1,
        ),
        Param(
            "threads",
            0,
            "threads building and inverting XᵀX + Λ; 0: every core the process may use, within "
            "the caller's threadpool limits",
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
                f"edlae: {n_items} items need about {gigabytes:.1f} GB of memory "
                f"(items² x 4 bytes x 2), above the limit of max_items={params['max_items']}; "
                f"raise it with --param max_items={n_items} if the machine has the memory, or "
                "use sparse_ease"
            )
        if params["dropout"] == 0 and params["l2"] == 0:
            raise ParameterError(
                "edlae: dropout=0 and l2=0 leave XᵀX unregularised (not invertible in "
                "general); give dropout or l2 a positive value"
            )
        weights = edlae_weights(
            matrix, params["dropout"], params["l2"], params["variant"], threads=params["threads"]
        )
        return {"item_weights": weights}

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
    register(EDLAEBackend())
