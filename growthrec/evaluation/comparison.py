"""Backends compared on one test split, customer by customer: the winner and by how much.

Every backend's lists are kept, so each test customer has an NDCG@k per backend; the winner's
lead over the runner-up is the mean of the paired per-customer differences, with a two-sided
percentile bootstrap interval (customers resampled, ``growthrec.evaluation.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.split import Split
from growthrec.errors import ParameterError
from growthrec.evaluation.bootstrap import ndcg_per_user, paired_bootstrap
from growthrec.evaluation.runs import Evaluation, evaluate_backend
from growthrec.pipeline.rules import ListSpec

__all__ = ["PairedDifference", "evaluate_per_customer", "paired_difference", "rank_backends"]


def evaluate_per_customer(
    split: Split,
    backend: str,
    params: Mapping[str, Any] | None = None,
    *,
    k: int = 10,
    ks: Sequence[int] = (10,),
    weighting: str = "binary",
    seed: int | None = 0,
    n_threads: int = 1,
    sampled_negatives: int | None = None,
    categories: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    item_features: Features | None = None,
    user_features: Features | None = None,
    coldstart: ColdStart | None = None,
    item_attributes: Mapping[str, np.ndarray] | None = None,
    spec: ListSpec | None = None,
    recency: float = 0.0,
) -> tuple[Evaluation, np.ndarray]:
    """``evaluate_backend``'s result on a warm split, and each test customer's NDCG@``k``.

    The per-customer values come from the very lists the metrics were computed from
    (``evaluate_backend(keep_lists=True)``), in the order of the customers' rows, so their mean
    is the evaluation's NDCG@``k``.
    """
    if split.cold_items is not None or split.cold_users is not None:
        raise ParameterError(
            f"{split.protocol}: a per-customer comparison needs a warm split (leave-one-out, "
            "ratio or temporal)"
        )
    k = min(int(k), max(split.train.n_items, 1))
    evaluation = evaluate_backend(
        split,
        backend,
        params,
        ks=sorted({*ks, k}),
        weighting=weighting,
        seed=seed,
        n_threads=n_threads,
        sampled_negatives=sampled_negatives,
        categories=categories,
        item_vectors=item_vectors,
        item_features=item_features,
        user_features=user_features,
        coldstart=coldstart,
        item_attributes=item_attributes,
        spec=spec,
        keep_lists=True,
        recency=recency,
    )
    result = evaluation.lists
    assert result is not None and result.lists is not None  # a warm split keeps them
    per_customer = ndcg_per_user(result.lists, split.test[result.users], k)
    return evaluation, per_customer


@attrs.frozen
class PairedDifference:
    """How far ``winner`` is ahead of ``runner_up`` in mean NDCG@``k`` over the same customers.

    ``difference`` is the mean of the per-customer differences (winner minus runner-up),
    ``relative`` that as a share of the runner-up's mean (``None`` when that is 0);
    ``low``..``high`` the two-sided percentile bootstrap interval at ``confidence``.
    """

    winner: str
    runner_up: str
    k: int
    difference: float
    relative: float | None
    low: float
    high: float
    confidence: float
    n_customers: int
    n_resamples: int

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def paired_difference(
    winner: tuple[str, np.ndarray],
    runner_up: tuple[str, np.ndarray],
    *,
    k: int = 10,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> PairedDifference:
    """The mean per-customer difference of two backends' NDCG and its bootstrap interval.

    Each bound is ``paired_bootstrap``'s one-sided bound at ``(1 + confidence) / 2``: the
    lower one of the differences, the upper one minus the lower one of their negation, with
    the same seed (the same resampled customers), so the two tails come from one bootstrap.
    """
    (name_a, a), (name_b, b) = winner, runner_up
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ParameterError(
            f"{name_a} and {name_b} were measured on {a.size} and {b.size} customers; a paired "
            "comparison needs the same customers"
        )
    tail = (1.0 + confidence) / 2.0
    differences = a - b
    lower = paired_bootstrap(differences, n_resamples=n_resamples, confidence=tail, seed=seed)
    upper = paired_bootstrap(-differences, n_resamples=n_resamples, confidence=tail, seed=seed)
    base = float(b.mean())
    return PairedDifference(
        winner=name_a,
        runner_up=name_b,
        k=int(k),
        difference=lower.mean,
        relative=lower.mean / base if base > 0 else None,
        low=lower.lower,
        high=-upper.lower,
        confidence=float(confidence),
        n_customers=lower.n_pairs,
        n_resamples=lower.n_resamples,
    )


def rank_backends(per_customer: Mapping[str, np.ndarray]) -> list[str]:
    """Backend names by mean per-customer NDCG, best first (ties: the order given)."""
    names = list(per_customer)
    return sorted(names, key=lambda n: -float(np.mean(per_customer[n])))
