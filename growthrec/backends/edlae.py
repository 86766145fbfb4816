"""``edlae``: EASE trained as a dropout-denoising autoencoder (Steck, NeurIPS 2020).

Steck's "Autoencoders that don't overfit towards the identity" shows that training a linear
item x item autoencoder with dropout probability ``p`` on its input is, in closed form, a ridge
regression whose penalty grows with each item's popularity:

    Λ = p/(1-p) · diag(G) + λI,   G = XᵀX,   P = (G + Λ)⁻¹.

* ``variant=dlae`` (denoising linear autoencoder): ``B = (G + Λ)⁻¹ G = I − P Λ``.
* ``variant=edlae`` (emphasised denoising, full emphasis on the dropped-out inputs): the
  paper's closed form adds the constraint ``diag(B) = 0``, so ``B = I − P / diag(P)``
  (column ``j`` divided by ``P[j, j]``): EASE with Λ in place of λI. ``p = 0`` is EASE itself.

Scores are ``x B``. As in ``ease``, the form follows the data's shape (``ease.user_form``):

* items form (at least as many customers as items): EASE's path, the Gram matrix built in
  sparse blocks into one float32 items x items array, inverted in place with LAPACK
  ``spotrf``/``spotri``; ``B`` stored dense (items² x 4 bytes, twice that during the fit).
* users form (fewer customers than items): with ``K = I + X Λ⁻¹ Xᵀ`` (users x users),
  Woodbury gives ``P = Λ⁻¹ − Λ⁻¹ Xᵀ K⁻¹ X Λ⁻¹``, so ``B`` is never formed. DLAE's
  ``B = I − P Λ = Λ⁻¹ Xᵀ K⁻¹ X`` scores a basket as ``(x Λ⁻¹ Xᵀ) K⁻¹ X``; EDLAE's is
  ``(x Λ⁻¹ Xᵀ K⁻¹ X)_j·s_j + x_j·(1 − s_j)`` with ``s_j = 1/(λ_j P_jj)``, and
  ``λ_j P_jj = 1 − x_jᵀ K⁻¹ x_j / λ_j`` (``x_j`` column ``j`` of X). The model file stores
  ``K⁻¹`` (float32, built and inverted in float64), ``Xᵀ`` as CSR, each item's ``λ_j`` and,
  for ``edlae``, ``s_j``: users² + purchases, never items².

New customers are folded in exactly, in either form.
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
    ITEM_USERS_KEYS,
    THREADED_CHOLESKY_MAX_ITEMS,
    _needed_bytes,
    _symmetrise_from_lower,
    check_either_form,
    either_form_specs,
    item_quadratic_forms,
    item_users_arrays,
    one_item_baskets,
    user_form,
    user_gram_inverse,
    weights_from_baskets,
    woodbury_scores,
)
from growthrec.backends.hookspecs import hookimpl
from growthrec.backends.itemknn import map_gram_row_blocks
from growthrec.core.threads import thread_count
from growthrec.errors import ParameterError

__all__ = [
    "VARIANTS",
    "EDLAEBackend",
    "dropout_penalty",
    "edlae_weights",
    "user_form_arrays",
    "user_form_keys",
    "user_form_scores",
]

#: ``edlae``: diag(B) = 0 (emphasised denoising); ``dlae``: plain denoising, B = (G + Λ)⁻¹ G.
VARIANTS = ("edlae", "dlae")


def user_form_keys(variant: str) -> tuple[str, ...]:
    """The users form's arrays: K⁻¹, each item's λ_j, for ``edlae`` each item's
    s_j = 1/(λ_j P_jj), and Xᵀ as CSR."""
    scale = ("item_scale",) if variant == "edlae" else ()
    return ("user_gram_inverse", "item_penalty", *scale, *ITEM_USERS_KEYS)


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
        raise _not_positive_definite(dropout, l2, f"LAPACK info {info}")
    if not np.shares_memory(factor, gram):
        gram[...] = factor.T
    del factor
    _symmetrise_from_lower(gram)
    return gram, penalty


def _not_positive_definite(dropout: float, l2: float, why: str) -> ParameterError:
    return ParameterError(
        f"edlae: XᵀX + Λ is not positive definite at l2={l2:g}, dropout={dropout:g} ({why}); "
        "use a larger l2 or dropout"
    )


def user_form_arrays(
    matrix: sp.csr_matrix, dropout: float, l2: float, variant: str = "edlae", *, threads: int = 0
) -> dict[str, np.ndarray]:
    """What the users (Woodbury) form scores from, in users² + nnz memory, never items².

    ``K = I + X Λ⁻¹ Xᵀ`` is built as ``YYᵀ + I`` with ``Y = X Λ^(-1/2)`` and inverted in
    float64; for ``edlae`` each item's ``λ_j P_jj = 1 − y_jᵀ K⁻¹ y_j`` (``y_j`` column ``j``
    of ``Y``) gives ``s_j``. Stored: ``K⁻¹`` (float32), ``λ``, ``s`` (edlae) and ``Xᵀ``.
    """
    x = matrix.astype(np.float64)
    penalty = dropout_penalty(np.asarray(x.multiply(x).sum(axis=0)).ravel(), dropout, l2)
    unpenalised = int(np.count_nonzero(penalty <= 0))
    if unpenalised:  # an item nobody bought gets λ_j = l2 = 0: a zero row in XᵀX + Λ
        raise _not_positive_definite(
            dropout, l2, f"{unpenalised} of {x.shape[1]} items have no buyer, so no penalty"
        )
    scaled = x @ sp.diags(1.0 / np.sqrt(penalty), format="csr")  # Y = X Λ^(-1/2)
    inverse = user_gram_inverse(
        scaled, 1.0, thread_count(threads), lambda why: _not_positive_definite(dropout, l2, why)
    )
    arrays = {
        "user_gram_inverse": inverse.astype(np.float32),
        "item_penalty": penalty.astype(np.float32),
    }
    if variant == "edlae":
        remaining = 1.0 - item_quadratic_forms(scaled.T.tocsr(), inverse)  # λ_j·P_jj, in (0, 1]
        if not np.all(remaining > 0):
            raise _not_positive_definite(dropout, l2, "λ_j·P_jj rounds to zero or below")
        arrays["item_scale"] = (1.0 / remaining).astype(np.float32)
    return {**arrays, **item_users_arrays(x)}


def user_form_scores(arrays: Arrays, rows: sp.csr_matrix) -> np.ndarray:
    """``x B`` for every row ``x`` of ``rows`` from ``user_form_arrays``, without forming B:
    ``(x Λ⁻¹ Xᵀ) K⁻¹ X``, for ``edlae`` (stored ``item_scale``) times ``s`` plus ``x·(1 − s)``.
    """
    return woodbury_scores(
        arrays,
        rows,
        "edlae",
        input_scale=1 / arrays["item_penalty"],
        output_scale=arrays.get("item_scale"),
    )


def edlae_weights(
    matrix: sp.csr_matrix,
    dropout: float,
    l2: float,
    variant: str = "edlae",
    *,
    threads: int = 0,
    form: str = "auto",
) -> np.ndarray:
    """The item x item matrix ``B`` (dense float32) of EDLAE or DLAE for the users x items
    matrix; ``threads`` as ``thread_count`` (within the caller's threadpool limits).

    ``form``: ``"items"`` inverts ``XᵀX + Λ``, ``"users"`` inverts ``I + X Λ⁻¹ Xᵀ`` (Woodbury,
    the same ``B``, row by row from one-item baskets), ``"auto"`` the smaller.
    """
    n_users, n_items = matrix.shape
    if form == "users" or (form == "auto" and user_form(n_users, n_items)):
        arrays = user_form_arrays(matrix, dropout, l2, variant, threads=threads)
        weights = weights_from_baskets(lambda rows: user_form_scores(arrays, rows), n_items)
        if variant == "edlae":
            weights[np.diag_indices(n_items)] = 0
        return weights
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
        "items² memory (users² with fewer customers than items)"
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
            "refuse to fit the items form above this many items (memory grows with items²; "
            "fewer customers than items use the users form, users²)",
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
        n_users, n_items = matrix.shape
        users_form = user_form(n_users, n_items)
        if not users_form and n_items > params["max_items"]:
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
        dropout, l2, variant = params["dropout"], params["l2"], params["variant"]
        if users_form:
            return user_form_arrays(matrix, dropout, l2, variant, threads=params["threads"])
        weights = edlae_weights(
            matrix, dropout, l2, variant, threads=params["threads"], form="items"
        )
        return {"item_weights": weights}

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """The dense items x items matrix B, or with fewer customers than items the users form:
        (I + XΛ⁻¹Xᵀ)⁻¹, each item's λ_j (and s_j for edlae) and Xᵀ as CSR. With fewer
        customers either form may be stored: files written before the users form have B."""
        scale = ("item_scale",) if params["variant"] == "edlae" else ()
        return either_form_specs(n_users, n_items, ("item_penalty", *scale))

    def check_arrays(
        self, arrays: Arrays, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> None:
        """One whole form (B alone, or every array of the variant's users form), the users
        form's Xᵀ a consistent CSR matrix of real customers and every λ_j above 0."""
        check_either_form(arrays, user_form_keys(params["variant"]), n_users, n_items)
        if "item_penalty" in arrays and not np.all(arrays["item_penalty"] > 0):
            item = int(np.flatnonzero(~(arrays["item_penalty"] > 0))[0])
            raise ValueError(
                f"item_penalty holds {arrays['item_penalty'][item]} at item {item}; "
                "every λ_j is above 0"
            )

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        if "item_weights" not in arrays:
            return user_form_scores(arrays, rows)
        return np.asarray(rows.astype(np.float32, copy=False) @ arrays["item_weights"])

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Row ``i`` of ``B``: what buying item ``i`` predicts (a one-item basket's scores)."""
        if "item_weights" not in arrays:
            n_items = arrays["item_penalty"].size
            scores = user_form_scores(arrays, one_item_baskets(items, n_items))
            if "item_scale" in arrays:  # edlae: B's diagonal, zero up to rounding
                scores[np.arange(len(scores)), items] = 0
            return scores
        return arrays["item_weights"][np.asarray(items)]


@hookimpl
def register_backends(register):
    register(EDLAEBackend())
