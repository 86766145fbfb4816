"""``spark``: implicit ALS trained by Spark (``pyspark.ml``), scored with numpy alone.

(Named after the extra that installs what it needs, ``growthrec[spark]``.)

Fitted by ``pyspark.ml.recommendation.ALS(implicitPrefs=True)``, an optional dependency:
``pip install "growthrec[spark]"``. Without it the backend still registers, so its model files
load and score anywhere (scoring needs no Spark), and fitting says how to install it. Large data
is trained from the files themselves with ``growthrec spark-train`` (``growthrec.spark``); this
backend's ``fit`` trains an in-memory matrix the same way, on a local Spark session.

Spark's implicit ALS (Hu, Koren & Volinsky 2008, as in Spark's ``ALS.scala``): a pair with
value r > 0 has preference 1 and confidence ``C = 1 + alpha * r``; unbought pairs have
preference 0 and confidence 1. Note the 1: the ``als`` backend's (implicit's) confidence is
``alpha * r``. The penalty is ALS-WR's: a user's ``λ`` is multiplied by the number of items
they bought (an item's by its number of buyers), so ``regularization`` is not on the same scale
as ``als``'s.

Known customers are scored with their learned factors, ``x_u · Y``. A customer not seen in
training is folded in with the exact least-squares step Spark's ALS takes for a user given the
item factors, ALS-WR penalty included (``fold_in``): since Spark's last half-step solves the
users, folding in a training customer's own row gives back their factors (to float precision).
Scores are ``user_factors @ item_factors.T`` for both, so lists are ranked by the pruned
``top_k_factors``.

``threads``: the cores of the local Spark session ``fit`` starts (``local[N]``; 0: every core
the process may use, within the caller's threadpool limits). A Spark session already running
is used as it is: its master decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from growthrec.backends._implicit import (
    cosine_similar_items,
    factor_specs,
    library_seed,
    user_factor_rows,
)
from growthrec.backends.als import fold_in as als_fold_in
from growthrec.backends.contract import Arrays, ArraySpec, Param, with_zero_rows
from growthrec.backends.hookspecs import hookimpl
from growthrec.core.threads import thread_count

__all__ = ["SparkALSBackend", "fold_in", "spark_confidences"]


def spark_confidences(rows: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Rows in the convention of ``growthrec.backends.als.fold_in``, with Spark's confidences.

    A value r > 0 becomes ``1 + alpha * r`` (preference 1); r < 0 becomes ``-(1 + alpha * |r|)``
    (preference 0, the same confidence, as Spark treats it); zeros are dropped, as Spark ignores
    them.
    """
    rows = sp.csr_matrix(rows, dtype=np.float32, copy=True)
    rows.eliminate_zeros()
    confidence = np.float32(1.0) + np.float32(alpha) * np.abs(rows.data)
    rows.data = np.where(rows.data > 0, confidence, -confidence).astype(np.float32)
    return rows


def fold_in(
    item_factors: np.ndarray, rows: sp.csr_matrix, alpha: float, regularization: float
) -> np.ndarray:
    """User factors of new customers from their (weighted) rows, given fixed item factors.

    Spark's implicit ALS step for one user: ``x_u = (YᵀY + Yᵀ(C_u − I)Y + λ n_u I)⁻¹ Yᵀ C_u p_u``
    with ``C_u = 1 + alpha * r`` and ``n_u`` the number of the row's positive values (ALS-WR),
    as ``ALS.scala``'s ``computeFactors`` builds it (checked against Spark's own user factors,
    pyspark 3.5.9 and 4.3.0). Solved by ``growthrec.backends.als.fold_in`` with one λ n_u per
    row; an empty row gets zero factors.
    """
    confidences = spark_confidences(rows, alpha)
    n_rows = rows.shape[0]
    stored = np.diff(confidences.indptr)
    positives = np.bincount(
        np.repeat(np.arange(n_rows), stored), weights=confidences.data > 0, minlength=n_rows
    )
    return als_fold_in(item_factors, confidences, regularization * positives)


class SparkALSBackend:
    """Implicit ALS fitted by Spark's ``pyspark.ml``; new customers folded in by an exact solve."""

    name = "spark"
    #: Optional modules fitting needs (growthrec[spark]); scoring a saved model needs none.
    requires = ("pyspark",)
    description = (
        "Implicit ALS trained on Spark (pyspark.ml ALS, implicitPrefs): 'growthrec spark-train' "
        'for data one machine cannot hold; scoring needs no Spark. pip install "growthrec[spark]"'
    )
    params = (
        Param("factors", 64, "number of latent factors (Spark's rank)", minimum=1),
        Param(
            "regularization",
            0.1,
            "Spark's regParam: λ, multiplied by each user's (item's) number of pairs (ALS-WR)",
            minimum=0,
        ),
        Param(
            "alpha",
            1.0,
            "confidence scale: a bought pair counts C = 1 + alpha * weight (Spark's convention)",
            minimum=0,
        ),
        Param("iterations", 15, "ALS sweeps (Spark's maxIter)", minimum=1),
        Param(
            "blocks",
            0,
            "Spark's numUserBlocks and numItemBlocks; 0: Spark's default (10). Set near the "
            "cluster's cores for large data",
            minimum=0,
        ),
        Param(
            "threads",
            0,
            "cores of the local Spark session the fit starts (local[N]); 0: every core the "
            "process may use, within the caller's threadpool limits. A running session is used "
            "as it is",
            minimum=0,
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        from growthrec.backends._spark_als import fit_matrix, import_pyspark

        import_pyspark(f"backend {self.name!r}")
        return fit_matrix(
            matrix, params, library_seed(rng), threads=thread_count(params.get("threads", 0))
        )

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec]:
        """Both factor matrices, Spark's rank wide."""
        return factor_specs(n_users, n_items, params["factors"])

    def add_items(
        self, arrays: Arrays, params: Mapping[str, Any], item_features: sp.csr_matrix
    ) -> Arrays:
        """New items get zero factors, as an item without ratings has in Spark's model."""
        return {
            **arrays,
            "item_factors": with_zero_rows(arrays["item_factors"], item_features.shape[0]),
        }

    def item_factors(self, arrays: Arrays, params: Mapping[str, Any]) -> np.ndarray:
        """Spark's item factors: scores are ``user_factors @ item_factors.T``."""
        return arrays["item_factors"]

    def user_factors(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        """Spark's factors of known customers; new ones folded in from ``rows``."""
        return user_factor_rows(
            arrays,
            users,
            lambda new: fold_in(
                arrays["item_factors"], rows[new], params["alpha"], params["regularization"]
            ),
        )

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        return self.user_factors(arrays, params, rows, users) @ arrays["item_factors"].T

    def similar_items(
        self, arrays: Arrays, params: Mapping[str, Any], items: np.ndarray
    ) -> np.ndarray:
        """Cosine between item factors (as the ``als`` backend)."""
        return cosine_similar_items(arrays["item_factors"], items)


@hookimpl
def register_backends(register):
    register(SparkALSBackend())
