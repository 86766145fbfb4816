"""``ease``: Steck's EASE (2019), a closed-form item x item linear model.

``G = XᵀX + λI``, ``P = G⁻¹``, ``B = -P / diag(P)`` (column ``j`` divided by ``-P[j, j]``) and
``diag(B) = 0``; a customer's scores are ``x B``. Two forms give the same ``B``:

* items form (at least as many customers as items): ``B`` dense, items² x 4 bytes in the model
  file (55 MB at 3.7k items, 2.9 GB at 27k). The Gram matrix is built block by block from a
  sparse product, then inverted in float32 with LAPACK's Cholesky routines ``spotrf``/``spotri``
  on the matrix itself (``numpy.linalg`` copies it: ``np.linalg.inv`` ran out of memory at 27k
  items).
* users form (fewer customers than items): by Woodbury, ``λP = I − Xᵀ(XXᵀ + λI)⁻¹X``, so only
  the users x users matrix is inverted (float64, users² is small), and ``B`` is never formed:
  the model stores ``(XXᵀ + λI)⁻¹``, ``Xᵀ`` and one scale per item (users² + purchases) and
  scores ``x B`` from them. At Last.fm's shape (1,883 x 17,626) that is 14 MB instead of 1.2 GB.

Customers not seen in training are scored the same way from their basket (fold-in), exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends._sparse_neighbours import csr_problem
from growthrec.backends.contract import Arrays, ArraySpec, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.backends.itemknn import map_gram_row_blocks
from growthrec.core.threads import thread_count
from growthrec.errors import ModelFileError, ParameterError

__all__ = [
    "EASEBackend",
    "check_either_form",
    "ease_weights",
    "either_form_specs",
    "item_quadratic_forms",
    "item_users_arrays",
    "one_item_baskets",
    "user_form",
    "user_form_arrays",
    "user_form_scores",
    "user_gram_inverse",
    "weights_from_baskets",
    "woodbury_scores",
]

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


def user_form(n_users: int, n_items: int) -> bool:
    """Whether EASE is solved in its users x users (Woodbury) form: fewer customers than items.

    The items form costs items³ time and items² memory; the users form users³ and users².
    """
    return n_users < n_items


def ease_weights(
    matrix: sp.csr_matrix, l2: float, *, threads: int = 0, form: str = "auto"
) -> np.ndarray:
    """EASE's item x item matrix ``B`` (dense float32) for the weighted users x items matrix.

    ``form``: ``"items"`` inverts ``XᵀX + λI``, ``"users"`` inverts ``XXᵀ + λI`` (Woodbury,
    the same ``B``), ``"auto"`` the smaller. ``threads`` (0: every core the process may use)
    build the Gram matrix and run LAPACK's BLAS; never more than the caller's threadpool
    limits, so BLAS is never raised above them.
    """
    if form == "users" or (form == "auto" and user_form(*matrix.shape)):
        return _weights_from_user_form(matrix, l2, thread_count(threads))
    return _item_form_weights(matrix, l2, thread_count(threads))


def _item_form_weights(matrix: sp.csr_matrix, l2: float, cores: int) -> np.ndarray:
    """``B`` from the items x items inverse, built and inverted in place in float32."""
    from scipy.linalg import lapack

    n_items = matrix.shape[1]
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
        raise _not_positive_definite(l2, f"LAPACK info {info}")
    if not np.shares_memory(factor, gram):  # LAPACK wrappers copy if the layout did not fit
        gram[...] = factor.T
    del factor
    _symmetrise_from_lower(gram)
    diagonal = np.diag(gram).copy()
    gram /= -diagonal[None, :]  # B[i, j] = -P[i, j] / P[j, j]
    gram[np.diag_indices(n_items)] = 0
    return gram


def _not_positive_definite(l2: float, why: str) -> ParameterError:
    return ParameterError(
        f"ease: XᵀX + l2·I is not positive definite at l2={l2:g} ({why}); use a larger l2"
    )


#: Up to this many customers the users form's Cholesky runs on one BLAS thread: 0.2 s at 1,883,
#: where two threads took 4 s on a loaded two-core machine (OpenBLAS spinning on a busy core).
THREADED_USER_FORM_MIN_USERS = 4096

#: Xᵀ as CSR (items x users), which every users form stores beside its inverse.
ITEM_USERS_KEYS = ("item_users_indptr", "item_users_indices", "item_users_data")

#: The users form's arrays: (XXᵀ + λI)⁻¹, each item's 1/(λ·P_jj), and Xᵀ as CSR.
USER_FORM_KEYS = ("user_gram_inverse", "item_scale", *ITEM_USERS_KEYS)


def user_gram_inverse(
    users_items: sp.csr_matrix, shift: float, cores: int, refuse: Callable[[str], Exception]
) -> np.ndarray:
    """``(YYᵀ + shift·I)⁻¹`` (float64, users x users) for a float64 users x items ``Y``.

    Built and inverted in float64 (users² is small) with LAPACK ``dpotrf``/``dpotri`` in place;
    ``refuse(why)`` is raised when the matrix is not positive definite.
    """
    from scipy.linalg import lapack

    n_users = users_items.shape[0]
    gram = (users_items @ users_items.T).toarray()
    gram[np.diag_indices(n_users)] += shift
    # As in the items form, LAPACK works in place on the symmetric matrix's Fortran view.
    blas = cores if n_users > THREADED_USER_FORM_MIN_USERS else 1
    with threadpool_limits(blas, "blas"):
        factor, info = lapack.dpotrf(gram.T, lower=0, clean=0, overwrite_a=1)
        if info == 0:
            factor, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise refuse(f"LAPACK info {info}")
    if not np.shares_memory(factor, gram):
        gram[...] = factor.T
    del factor
    _symmetrise_from_lower(gram)
    return gram


def item_quadratic_forms(item_users: sp.csr_matrix, inverse: np.ndarray) -> np.ndarray:
    """``y_jᵀ K⁻¹ y_j`` for every row ``y_j`` of ``item_users`` (items x users, CSR), float64.

    A block of items at a time: (block x users) rows of ``Yᵀ K⁻¹``, gathered at the block's
    own purchases, so never items x users dense.
    """
    n_items, n_users = item_users.shape
    q = np.empty(n_items)
    step = max(1, BLOCK_BYTES // 8 // (8 * max(n_users, 1)))  # 32 MiB of float64 at a time
    for start in range(0, n_items, step):
        block = item_users[start : start + step]
        projected = np.asarray(block @ inverse)
        row = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        q[start : start + block.shape[0]] = np.bincount(
            row, weights=block.data * projected[row, block.indices], minlength=block.shape[0]
        )
    return q


def item_users_arrays(matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """``Xᵀ`` (items x users) as the three stored CSR arrays, indices sorted."""
    item_users = matrix.T.tocsr()
    item_users.sort_indices()
    return {
        "item_users_indptr": item_users.indptr.astype(np.int64),
        "item_users_indices": item_users.indices.astype(np.int32),
        "item_users_data": item_users.data.astype(np.float32),
    }


def user_form_arrays(
    matrix: sp.csr_matrix, l2: float, *, threads: int = 0
) -> dict[str, np.ndarray]:
    """What the users (Woodbury) form scores from, in users² + nnz memory, never items².

    With ``K = XXᵀ + λI`` and ``Q = Xᵀ K⁻¹ X``, Woodbury gives ``λP = I − Q``, so
    ``B = I − P·diag(1/diag P)`` is ``B_ij = Q_ij·s_j`` off the diagonal with
    ``s_j = 1 / (1 − Q_jj)`` (λ cancels). Stored: ``K⁻¹`` (float32), ``s`` and ``Xᵀ``.
    ``K`` is built and inverted in float64 (users² is small), so ``1 − Q_jj`` keeps its digits.
    """
    n_users, n_items = matrix.shape
    if l2 <= 0:  # XᵀX has rank at most n_users < n_items: only λ makes it invertible
        raise _not_positive_definite(
            l2, f"{n_users} customers and {n_items} items: XᵀX has rank at most {n_users}"
        )
    x = matrix.astype(np.float64)
    inverse = user_gram_inverse(
        x, l2, thread_count(threads), lambda why: _not_positive_definite(l2, why)
    )
    q = item_quadratic_forms(x.T.tocsr(), inverse)
    remaining = 1.0 - q  # λ·P_jj, in (0, 1] in exact arithmetic
    if not np.all(remaining > 0):
        raise _not_positive_definite(l2, "λ·diag(P) rounds to zero or below")
    return {
        "user_gram_inverse": inverse.astype(np.float32),
        "item_scale": (1.0 / remaining).astype(np.float32),
        **item_users_arrays(x),
    }


def woodbury_scores(
    arrays: Arrays,
    rows: sp.csr_matrix,
    backend: str,
    *,
    input_scale: np.ndarray | None = None,
    output_scale: np.ndarray | None = None,
) -> np.ndarray:
    """``((x·a) Xᵀ K⁻¹ X)·s + x·(1 − s)`` elementwise for every row ``x`` of ``rows``.

    ``a`` (``input_scale``) and ``s`` (``output_scale``) are per item, 1 when not given (then
    the second term vanishes); ``K⁻¹`` and ``Xᵀ`` come from ``arrays`` (``user_gram_inverse``
    and ``item_users_*``). A sparse product, a (rows x users) BLAS product and a sparse
    product: users² + nnz per row, never items². A damaged ``Xᵀ`` raises ``ModelFileError``
    naming ``backend``.
    """
    n_items = rows.shape[1]
    n_users = arrays["user_gram_inverse"].shape[0]
    problem = csr_problem(arrays, "item_users_", n_items, n_users)
    if problem:  # checked here too, so scipy never reads out of bounds
        raise ModelFileError(f"{backend}: the stored users form is damaged ({problem})")
    item_users = sp.csr_matrix(
        (arrays["item_users_data"], arrays["item_users_indices"], arrays["item_users_indptr"]),
        shape=(n_items, n_users),
    )
    x = sp.csr_matrix(rows, dtype=np.float32, copy=False)
    if not x.has_canonical_format:
        x = x.copy()
        x.sum_duplicates()
    scaled = x
    if input_scale is not None:
        data = x.data * input_scale[x.indices]
        scaled = sp.csr_matrix((data, x.indices, x.indptr), shape=x.shape)
    # (x Q)ᵀ = Xᵀ (K⁻¹ (x Xᵀ)ᵀ), computed transposed so the big products come out C-ordered.
    baskets_users = scaled @ item_users
    if baskets_users.nnz * 16 < baskets_users.shape[0] * n_users:  # few co-buyers: one-item
        through_users = np.ascontiguousarray((baskets_users @ arrays["user_gram_inverse"]).T)
    else:  # baskets, as customers have: one BLAS product
        through_users = arrays["user_gram_inverse"] @ baskets_users.toarray().T
    by_item = item_users @ through_users  # items x rows
    scores = np.empty((x.shape[0], n_items), dtype=np.float32)
    for start in range(0, n_items, 256):  # transposed in cache-sized column blocks
        stop = start + 256
        if output_scale is None:
            scores[:, start:stop] = by_item[start:stop].T
        else:
            np.multiply(by_item[start:stop].T, output_scale[start:stop], out=scores[:, start:stop])
    if output_scale is not None:
        row = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        scores[row, x.indices] += x.data * (1 - output_scale[x.indices])
    return scores


def user_form_scores(arrays: Arrays, rows: sp.csr_matrix) -> np.ndarray:
    """``x B`` for every row ``x`` of ``rows``, from ``user_form_arrays``, without forming B.

    ``x B = (x Q)·s + x·(1 − s)`` elementwise, ``x Q = ((x Xᵀ) K⁻¹) X`` (``woodbury_scores``).
    """
    return woodbury_scores(arrays, rows, "ease", output_scale=arrays["item_scale"])


def weights_from_baskets(score: Callable[[sp.csr_matrix], np.ndarray], n_items: int) -> np.ndarray:
    """The dense items x items ``B`` (float32) whose row ``i`` is ``score`` of the basket {i}."""
    weights = np.empty((n_items, n_items), dtype=np.float32)
    step = max(1, BLOCK_BYTES // (4 * max(n_items, 1)))
    for start in range(0, n_items, step):
        stop = min(start + step, n_items)
        weights[start:stop] = score(sp.eye(n_items, format="csr")[start:stop])
    return weights


def _weights_from_user_form(matrix: sp.csr_matrix, l2: float, cores: int) -> np.ndarray:
    """The dense ``B`` through the users form: row ``i`` is the scores of the basket {i}."""
    arrays = user_form_arrays(matrix, l2, threads=cores)
    weights = weights_from_baskets(lambda rows: user_form_scores(arrays, rows), matrix.shape[1])
    weights[np.diag_indices(matrix.shape[1])] = 0
    return weights


def one_item_baskets(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One basket per entry of ``items`` holding that item alone (weight 1), as CSR rows."""
    items = np.asarray(items)
    ones = np.ones(items.size, dtype=np.float32)
    return sp.csr_matrix((ones, (np.arange(items.size), items)), shape=(items.size, n_items))


def either_form_specs(
    n_users: int, n_items: int, per_item: tuple[str, ...]
) -> dict[str, ArraySpec]:
    """B (items x items), or with fewer customers than items either B or the users form:
    ``user_gram_inverse``, the ``per_item`` vectors and Xᵀ as CSR, every one optional (files
    written before a users form existed store B; ``check_either_form`` wants one whole)."""
    weights = ArraySpec((n_items, n_items), learned=True, meaning="items x items")
    if not user_form(n_users, n_items):
        return {"item_weights": weights}
    most = n_users * n_items
    users_form = {
        "user_gram_inverse": ArraySpec((n_users, n_users), learned=True, meaning="users x users"),
        **{name: ArraySpec((n_items,), meaning="items") for name in per_item},
        "item_users_indptr": ArraySpec((n_items + 1,), "iu", meaning="items + 1"),
        "item_users_indices": ArraySpec((None,), "iu", max_size=most),
        "item_users_data": ArraySpec((None,), max_size=most),
    }
    return {
        name: attrs.evolve(spec, optional=True)
        for name, spec in {"item_weights": weights, **users_form}.items()
    }


def check_either_form(
    arrays: Arrays, user_keys: tuple[str, ...], n_users: int, n_items: int
) -> None:
    """Raise ``ValueError`` unless ``arrays`` are one whole form (B alone, or exactly
    ``user_keys``) with the users form's Xᵀ a consistent CSR matrix of real customers."""
    stored = set(arrays)
    if stored != {"item_weights"} and stored != set(user_keys):
        raise ValueError(
            f"arrays {', '.join(sorted(stored))} are neither B (item_weights) nor the users "
            f"form ({', '.join(user_keys)})"
        )
    if "item_users_indptr" in arrays:
        problem = csr_problem(arrays, "item_users_", n_items, n_users)
        if problem:
            raise ValueError(problem)


class EASEBackend:
    """Embarrassingly Shallow Autoencoder: scores ``x B``, ``B`` in closed form from ``XᵀX``."""

    name = "ease"
    description = "EASE (Steck 2019): closed-form item x item regression; dense, items² memory"
    params = (
        Param(
            "l2",
            500.0,
            "L2 regularisation λ added to the diagonal of XᵀX",
            minimum=0,
            search=(1.0, 20000.0),
            log=True,
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
            "threads building and inverting XᵀX; 0: every core the process may use, within the "
            "caller's threadpool limits",
            minimum=0,
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        n_users, n_items = matrix.shape
        threads = params.get("threads", 0)
        if user_form(n_users, n_items):
            return user_form_arrays(matrix, params["l2"], threads=threads)
        if n_items > params["max_items"]:
            gigabytes = _needed_bytes(n_items) / 1e9
            raise ParameterError(
                f"ease: {n_items} items need about {gigabytes:.1f} GB of memory "
                f"(items² x 4 bytes x 2), above the limit of max_items={params['max_items']}; "
                f"raise it with --param max_items={n_items} (params={{'max_items': {n_items}}}) "
                "if the machine has the memory, or use itemknn"
            )
        return {"item_weights": ease_weights(matrix, params["l2"], threads=threads, form="items")}

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """The dense items x items matrix B, or with fewer customers than items the users form:
        (XXᵀ + λI)⁻¹, each item's scale and Xᵀ as CSR. With fewer customers either form may be
        stored (``check_arrays`` wants one whole): files written before the users form have B.
        """
        return either_form_specs(n_users, n_items, ("item_scale",))

    def check_arrays(
        self, arrays: Arrays, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> None:
        """One whole form (B alone, or every array of the users form), and the users form's
        Xᵀ a consistent CSR matrix indexing real customers."""
        check_either_form(arrays, USER_FORM_KEYS, n_users, n_items)

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
            scores = user_form_scores(arrays, one_item_baskets(items, arrays["item_scale"].size))
            scores[np.arange(len(scores)), items] = 0  # B's diagonal, zero up to rounding
            return scores
        return arrays["item_weights"][np.asarray(items)]


@hookimpl
def register_backends(register):
    register(EASEBackend())
