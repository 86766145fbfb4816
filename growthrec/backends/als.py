"""``als``: implicit-feedback ALS with confidence weights (Hu, Koren & Volinsky 2008).

Fitted by the ``implicit`` library's CPU model (conjugate-gradient solver), an optional
dependency: ``pip install "growthrec[als]"``. Without it the backend still registers, and
fitting says how to install it.

Each bought (user, item) pair has preference p = 1 and confidence ``C = alpha * w``, where
``w`` is the pair's value after the backend's own ``confidence`` transform (none, log1p or
BM25) of the matrix it is given; pairs never bought have p = 0 and C = 1. That is ``implicit``'s own
convention (since 0.5), so ``alpha`` means here what it means there; Hu et al.'s
``C = 1 + alpha * r`` differs only by the 1. The backend scales the values itself and hands
``implicit`` ``alpha=1``, which saves implicit a copy of the matrix.

Known customers are scored with their learned factors, ``x_u · Y``. A customer not seen in
training is folded in with the exact least-squares solve ALS makes for one user given fixed
item factors (see ``fold_in``); no refit is needed. Scores are ``user_factors @ item_factors.T``
for both, so lists are ranked by the pruned ``top_k_factors``.

``confidence`` was called ``weighting`` before; the old name is still accepted (command line,
Python, model files), as it was easily confused with the fit's ``--weighting``, which turns
summed purchases into the matrix (binary, count, log1p) before any backend sees it. ``bm25``
weights each bought pair by its item's rarity (idf over customers) and its customer's basket
length (``implicit``'s ``bm25_weight`` on the users x items matrix).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends._implicit import (
    cosine_similar_items,
    factor_specs,
    fit_errors,
    import_implicit,
    library_seed,
    user_factor_rows,
)
from growthrec.backends.contract import Arrays, ArraySpec, Param, with_zero_rows
from growthrec.backends.hookspecs import hookimpl
from growthrec.backends.ials import exact_rows
from growthrec.core.threads import thread_count

__all__ = ["CONFIDENCES", "ALSBackend", "bm25_rows", "bm25_statistics", "confidence", "fold_in"]

#: How a bought pair's value becomes its confidence (before ``alpha``): the ``confidence`` choices.
CONFIDENCES = ("none", "log1p", "bm25")


def _row_sums(rows: sp.csr_matrix) -> np.ndarray:
    return np.asarray(rows.sum(axis=1)).ravel()


def bm25_statistics(matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """What BM25 needs from the training matrix: each item's idf and the mean row sum.

    ``idf = log(n_users) - log1p(buyers of the item)``, as ``implicit.nearest_neighbours
    .bm25_weight`` computes it; kept so a new customer's basket is weighted the same way.
    """
    n_users, n_items = matrix.shape
    buyers = np.bincount(matrix.indices, minlength=n_items)
    return {
        "bm25_idf": np.log(float(n_users)) - np.log1p(buyers),
        "bm25_average_length": np.atleast_1d(_row_sums(matrix).mean()),
    }


def bm25_rows(
    rows: sp.csr_matrix, idf: np.ndarray, average_length: float, k1: float, b: float
) -> sp.csr_matrix:
    """Rows weighted by BM25 with the training statistics, float32 CSR.

    The same arithmetic, in the same dtypes, as ``implicit``'s ``bm25_weight`` (so the same
    values to the bit), computed on the CSR arrays without its COO copy.
    """
    length_norm = (1.0 - b) + b * _row_sums(rows) / average_length
    row_norm = np.repeat(length_norm, np.diff(rows.indptr))
    data = rows.data * (k1 + 1.0) / (k1 * row_norm + rows.data) * idf[rows.indices]
    return sp.csr_matrix((data.astype(np.float32), rows.indices, rows.indptr), shape=rows.shape)


def _weighted(rows: sp.csr_matrix, params: Mapping[str, Any], stats: Arrays) -> sp.csr_matrix:
    """``rows`` transformed by the backend's ``confidence`` (BM25 uses the training ``stats``)."""
    scheme = params["confidence"]
    if scheme == "bm25":
        return bm25_rows(
            rows,
            stats["bm25_idf"],
            stats["bm25_average_length"][0],
            params["bm25_k1"],
            params["bm25_b"],
        )
    if scheme == "log1p":
        return sp.csr_matrix(
            (np.log1p(rows.data, dtype=np.float32), rows.indices, rows.indptr), shape=rows.shape
        )
    return rows


def confidence(weighted: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """The confidence matrix ``alpha * w`` on the bought pairs, float32 CSR for ``implicit``.

    Shares ``indices`` and ``indptr`` with ``weighted``; only the values are new.
    """
    data = np.multiply(weighted.data, np.float32(alpha), dtype=np.float32)
    return sp.csr_matrix((data, weighted.indices, weighted.indptr), shape=weighted.shape)


def fold_in(
    item_factors: np.ndarray, confidences: sp.csr_matrix, regularization: float | np.ndarray
) -> np.ndarray:
    """User factors of new customers given fixed item factors: ALS's exact least-squares step.

    For each row, ``x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ Yᵀ C_u p_u`` with ``C_u`` the row's
    confidences and ``p_u`` 1 on its entries, solved in float64 (``YᵀY`` in float32, as
    ``implicit``), batch by batch (``growthrec.backends.ials.exact_rows``). A negative value
    counts as a dislike (p = 0, confidence = |value|) and an empty row gets zero factors, as
    in ``implicit``'s ``recalculate_user``.

    ``regularization``: λ, or one λ per row (Spark's ALS-WR scales it by the row's purchases).
    Regularisation: ``implicit`` (0.7.3, CPU, checked in its source and against
    ``recalculate_user`` at λ = 0.01 to 10) adds ``λI`` unscaled, not multiplied by the number
    of items a user bought nor by the number of users, and so does this. The fitted users'
    factors come from implicit's 3-step conjugate-gradient updates, so a known user's basket
    folded in here scores close to, not exactly like, that user.
    """
    rows = confidences.tocsr()
    values = rows.data.astype(np.float64)

    def entries(data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data, rows.indices, rows.indptr), shape=rows.shape)

    # Batches of similar-length rows, one batched GEMM and solve each: no loop per customer.
    n_rows = rows.shape[0]
    return exact_rows(
        entries(np.abs(values) - 1.0),
        np.asarray(item_factors, dtype=np.float32),  # YᵀY as a float32 GEMM, as implicit
        np.broadcast_to(np.asarray(regularization, dtype=np.float64), (n_rows,)),
        1.0,
        dtype=np.float64,
        targets=entries(np.where(values > 0, values, 0.0)),
    )


class ALSBackend:
    """Implicit ALS (``implicit``'s CPU model); new customers folded in by an exact solve."""

    name = "als"
    #: Optional modules fitting needs (growthrec[als]).
    requires = ("implicit",)
    description = (
        "Implicit ALS with confidence weights (Hu, Koren & Volinsky 2008), via the implicit "
        'library: pip install "growthrec[als]"'
    )
    params = (
        Param("factors", 64, "number of latent factors", minimum=1, search=(16, 256), log=True),
        Param(
            "regularization",
            0.01,
            "L2 penalty λ on the factors",
            minimum=0,
            search=(1e-4, 10.0),
            log=True,
        ),
        Param(
            "alpha",
            1.0,
            "confidence scale: a bought pair counts C = alpha * weight (as in implicit)",
            minimum=0,
            search=(0.1, 100.0),
            log=True,
        ),
        Param("iterations", 15, "ALS sweeps (users, then items)", minimum=1, fidelity=True),
        Param(
            "confidence",
            "none",
            "how a bought pair's weight w becomes its confidence, before alpha: none (w), log1p "
            "(log(1 + w)) or bm25 (w by item rarity and basket length); old name: weighting",
            choices=CONFIDENCES,
            aliases=("weighting",),
            search=("none", "log1p", "bm25"),
        ),
        Param(
            "bm25_k1",
            100.0,
            "BM25 K1 (term-frequency saturation), with confidence=bm25",
            minimum=0,
        ),
        Param(
            "bm25_b",
            0.8,
            "BM25 B (basket-length normalisation), with confidence=bm25",
            minimum=0,
            maximum=1,
        ),
        Param(
            "threads",
            0,
            "threads for implicit's solver; 0: every core the process may use, within the "
            "caller's threadpool limits (results do not depend on it)",
            minimum=0,
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        return self.fit_warm(matrix, params, rng, None)

    def fit_warm(
        self,
        matrix: sp.csr_matrix,
        params: Mapping[str, Any],
        rng: np.random.Generator,
        start: Arrays | None,
    ) -> Arrays:
        """``fit``, starting from ``start``'s ``user_factors`` and ``item_factors`` (rows aligned
        with ``matrix``) instead of random ones: a retrain on grown data needs fewer sweeps."""
        als = import_implicit(self.name, "implicit.cpu.als")
        stats = bm25_statistics(matrix) if params["confidence"] == "bm25" else {}
        confidences = confidence(_weighted(matrix, params, stats), params["alpha"])
        threads = thread_count(params["threads"])  # read before BLAS is capped below
        # BLAS at one thread: implicit parallelises over users itself, and a threaded BLAS
        # under its OpenMP loop was measured 1.1–4x slower (PERFORMANCE.md).
        with threadpool_limits(1, "blas"):
            model = als.AlternatingLeastSquares(
                factors=params["factors"],
                regularization=params["regularization"],
                alpha=1.0,  # the confidences above already hold alpha * w
                dtype=np.float32,
                use_cg=True,
                iterations=params["iterations"],
                num_threads=threads,
                random_state=library_seed(rng),
            )
            if start is not None:  # implicit initialises only the factors left as None
                model.user_factors = np.array(start["user_factors"], dtype=np.float32)
                model.item_factors = np.array(start["item_factors"], dtype=np.float32)
            with fit_errors(self.name):
                model.fit(confidences, show_progress=False)
        return {
            "user_factors": model.user_factors,
            "item_factors": model.item_factors,
            **stats,
        }

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """Both factor matrices, and BM25's training statistics when it weights the matrix."""
        specs = factor_specs(n_users, n_items, params["factors"])
        if params["confidence"] == "bm25":
            specs["bm25_idf"] = ArraySpec((n_items,), meaning="items")
            specs["bm25_average_length"] = ArraySpec((1,))
        return specs

    def add_items(
        self, arrays: Arrays, params: Mapping[str, Any], item_features: sp.csr_matrix
    ) -> Arrays:
        """New items get zero factors (ALS's solve for an item nobody bought) and, with bm25,
        the idf of an item with no buyers, ``log(n_users)``."""
        out = {
            **arrays,
            "item_factors": with_zero_rows(arrays["item_factors"], item_features.shape[0]),
        }
        if "bm25_idf" in arrays:
            n_users = arrays["user_factors"].shape[0]
            idf = np.full(item_features.shape[0], np.log(float(n_users)), arrays["bm25_idf"].dtype)
            out["bm25_idf"] = np.concatenate([arrays["bm25_idf"], idf])
        return out

    def item_factors(self, arrays: Arrays, params: Mapping[str, Any]) -> np.ndarray:
        """The learned item factors: scores are ``user_factors @ item_factors.T``."""
        return arrays["item_factors"]

    def user_factors(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        """Learned factors of known customers; new ones folded in from ``rows``."""

        def fold_in_new(new: np.ndarray) -> np.ndarray:
            confidences = confidence(_weighted(rows[new], params, arrays), params["alpha"])
            return fold_in(arrays["item_factors"], confidences, params["regularization"])

        return user_factor_rows(arrays, users, fold_in_new)

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        return self.user_factors(arrays, params, rows, users) @ arrays["item_factors"].T

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Cosine between item factors, as ``implicit``'s ``similar_items``."""
        return cosine_similar_items(arrays["item_factors"], items)


@hookimpl
def register_backends(register):
    register(ALSBackend())
