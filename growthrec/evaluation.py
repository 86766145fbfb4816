"""Offline evaluation: fit on a split's train part, rank every test user, score the ranking."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.core.metrics import ranking_metrics
from growthrec.core.model import Model
from growthrec.core.split import Split
from growthrec.errors import ParameterError
from growthrec.recommender import fit_model, recommend

__all__ = ["Evaluation", "evaluate_backend", "evaluate_model"]


@attrs.frozen
class Evaluation:
    """One backend's metrics on one split, with what is needed to reproduce them."""

    backend: str
    params: Mapping[str, Any]
    protocol: str
    seed: int | None
    n_users: int
    metrics: Mapping[int, Mapping[str, float]]
    fit_seconds: float

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form with stable keys."""
        return {
            "backend": self.backend,
            "params": dict(self.params),
            "protocol": self.protocol,
            "seed": self.seed,
            "n_users": self.n_users,
            "fit_seconds": round(self.fit_seconds, 4),
            "metrics": {str(k): dict(v) for k, v in self.metrics.items()},
        }


def _checked_ks(ks: Sequence[int]) -> tuple[int, ...]:
    if not ks or any(int(k) < 1 for k in ks):
        raise ParameterError(f"k values {list(ks)} must be whole numbers of at least 1")
    return tuple(sorted({int(k) for k in ks}))


def evaluate_model(
    model: Model, test: sp.csr_matrix, ks: Sequence[int], *, n_threads: int = 1
) -> tuple[int, dict[int, dict[str, float]]]:
    """Metrics at each k over the users with held-out items, ranking all items they did not buy.

    Returns the number of evaluated users and ``{k: {metric: value}}``.
    """
    ks = _checked_ks(ks)
    users = np.flatnonzero(np.diff(test.indptr))
    recommended, _ = recommend(model, users, max(ks), n_threads=n_threads)
    return int(users.size), ranking_metrics(recommended, test[users], ks, model.train.n_items)


def evaluate_backend(
    split: Split,
    backend: str,
    params: Mapping[str, Any] | None = None,
    *,
    ks: Sequence[int] = (5, 10),
    weighting: str = "binary",
    seed: int | None = 0,
    n_threads: int = 1,
) -> Evaluation:
    """Fit ``backend`` on the split's train part and evaluate it on the held-out part."""
    ks = _checked_ks(ks)
    start = time.perf_counter()
    model = fit_model(split.train, backend, params, weighting=weighting, seed=seed)
    fit_seconds = time.perf_counter() - start
    n_users, metrics = evaluate_model(model, split.test, ks, n_threads=n_threads)
    return Evaluation(backend, model.params, split.protocol, seed, n_users, metrics, fit_seconds)
