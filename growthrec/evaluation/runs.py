"""Offline evaluation: fit on a split's train part, rank every test user, score the ranking.

Full ranking (every item a customer did not buy) is the default. Sampled-negative ranking (each
customer's held-out items among a few random items they did not buy, as in the NCF paper) is
cheaper and easier, so its numbers run higher; an ``Evaluation`` says which one it holds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.backends.registry import get_backend
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.interactions import Interactions
from growthrec.core.metrics import MetricTotals
from growthrec.core.model import Model
from growthrec.core.ranking import batch_rows, top_k_batched
from growthrec.core.sampling import candidate_items, candidate_scores, sample_candidates
from growthrec.core.seeds import Seed, resolve_rng
from growthrec.core.split import Split
from growthrec.core.weighting import apply_weighting
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_new_customers

__all__ = [
    "Evaluation",
    "TaskResult",
    "categories_from",
    "clamp_ks",
    "evaluate_backend",
    "evaluate_model",
    "evaluate_tasks",
    "item_vectors_for_diversity",
    "ranking_label",
]


@attrs.frozen
class TaskResult:
    """One task of a cold-start protocol: what was ranked, for how many customers, how well."""

    ranked_among: str
    n_users: int
    metrics: Mapping[int, Mapping[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ranked_among": self.ranked_among,
            "n_users": self.n_users,
            "metrics": {str(k): dict(v) for k, v in self.metrics.items()},
        }


@attrs.frozen
class Evaluation:
    """One backend's metrics on one split, with what is needed to reproduce them.

    ``metrics[k]`` holds the ``METRIC_NAMES`` ratios, then novelty (in bits) and, when item
    categories or vectors were given, diversity. ``ranking`` says how the lists were made:
    ``"full"`` or ``"sampled (N negatives per user)"``; sampled numbers are not comparable with
    full ones. A cold-start split has several ``tasks`` (``evaluate_tasks``); ``metrics`` and
    ``n_users`` are then the first task's (cold items, or customers from their features), the
    one tuning ranks by.
    """

    backend: str
    params: Mapping[str, Any]
    protocol: str
    seed: int | None
    n_users: int
    metrics: Mapping[int, Mapping[str, float]]
    fit_seconds: float
    ranking: str = "full"
    tasks: Mapping[str, TaskResult] = attrs.field(factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form with stable keys (``tasks`` only for a cold-start split)."""
        out = {
            "backend": self.backend,
            "params": dict(self.params),
            "protocol": self.protocol,
            "ranking": self.ranking,
            "seed": self.seed,
            "n_users": self.n_users,
            "fit_seconds": round(self.fit_seconds, 4),
            "metrics": {str(k): dict(v) for k, v in self.metrics.items()},
        }
        if self.tasks:
            out["tasks"] = {name: task.as_dict() for name, task in self.tasks.items()}
        return out


#: Bytes per batch of users for the lists and the metric temporaries of ``evaluate_model``.
_EVALUATION_BATCH_BYTES = 64 * 2**20


def ranking_label(sampled_negatives: int | None) -> str:
    """How lists were ranked: ``"full"`` or ``"sampled (N negatives per user)"``."""
    if sampled_negatives is None:
        return "full"
    return f"sampled ({sampled_negatives} negatives per user)"


def _checked_ks(ks: Sequence[int]) -> tuple[int, ...]:
    if not ks or any(int(k) < 1 for k in ks):
        raise ParameterError(f"k values {list(ks)} must be whole numbers of at least 1")
    return tuple(sorted({int(k) for k in ks}))


def clamp_ks(ks: Sequence[int], n_items: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The cut-offs to compute, none deeper than the catalogue, and the ones that were cut.

    A list can never hold more than ``n_items`` items, so a K above it is computed as K =
    ``n_items`` (the same values, without the cost of padding): ``(10, 100000)`` on a 100-item
    catalogue gives ``((10, 100), (100000,))``.
    """
    ks = _checked_ks(ks)
    limit = max(int(n_items), 1)
    return tuple(sorted({min(k, limit) for k in ks})), tuple(k for k in ks if k > limit)


def _checked_negatives(sampled_negatives: int | None) -> int | None:
    if sampled_negatives is None:
        return None
    if int(sampled_negatives) != sampled_negatives or sampled_negatives < 1:
        raise ParameterError(
            f"sampled_negatives={sampled_negatives} must be a whole number of at least 1 "
            "(or None for full ranking)"
        )
    return int(sampled_negatives)


def _buyers(train: Interactions) -> tuple[np.ndarray, int]:
    """Distinct training buyers of each item, and the number of customers who bought anything."""
    m = train.matrix
    bought = m.data != 0
    if bought.all():  # the usual case: a built matrix stores no zeros
        counts = np.diff(m.indptr)
        item_counts = np.bincount(m.indices, minlength=train.n_items)
        return item_counts, int(np.count_nonzero(counts))
    rows = np.repeat(np.arange(train.n_users), np.diff(m.indptr))
    item_counts = np.bincount(m.indices[bought], minlength=train.n_items)
    n_buyers = int(np.count_nonzero(np.bincount(rows[bought], minlength=train.n_users)))
    return item_counts, n_buyers


def _recommend_among(
    model: Model, users: np.ndarray, candidates: np.ndarray, k: int, n_threads: int
) -> np.ndarray:
    """Top-``k`` item indices of each user among their candidate items only."""
    impl = get_backend(model.backend)
    weighted = apply_weighting(model.train.matrix[users], model.weighting)

    def score_batch(start: int, stop: int) -> np.ndarray:
        scores = impl.score(model.arrays, model.params, weighted[start:stop], users[start:stop])
        return candidate_scores(scores, candidates[start:stop])

    columns, _ = top_k_batched(
        score_batch,
        users.size,
        candidates.shape[1],
        k,
        batch_size=batch_rows(model.train.n_items),  # the backend scores whole rows
        n_threads=n_threads,
    )
    return candidate_items(candidates, columns)


def evaluate_model(
    model: Model,
    test: sp.csr_matrix,
    ks: Sequence[int],
    *,
    n_threads: int = 1,
    sampled_negatives: int | None = None,
    seed: Seed = 0,
    categories: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    allow_items: np.ndarray | None = None,
) -> tuple[int, dict[int, dict[str, float]]]:
    """Metrics at each k over the users with held-out items.

    By default each user's list ranks every item they did not buy. With ``sampled_negatives=N``
    it ranks their held-out items among N items drawn (with ``seed``) from those they neither
    bought nor hold out; the draw depends only on the split and the seed, so backends evaluated
    with the same seed meet the same negatives. Novelty is always reported (popularity from
    ``model.train``); diversity when ``categories`` or ``item_vectors`` is given.

    A k deeper than the catalogue is computed at the catalogue's size and keyed so
    (``clamp_ks``). Users are ranked and scored a batch at a time, so memory stays bounded
    for any number of users and any k. ``allow_items`` (item indices) ranks among those
    items only, as a cold-start task does.

    Returns the number of evaluated users and ``{k: {metric: value}}``.
    """
    ks = clamp_ks(ks, model.train.n_items)[0]
    sampled_negatives = _checked_negatives(sampled_negatives)
    if sampled_negatives is not None and allow_items is not None:
        raise ParameterError("sampled ranking and an allow list do not go together")
    users = np.flatnonzero(np.diff(test.indptr))
    truth = test[users]
    candidates = None
    if sampled_negatives is not None:
        candidates = sample_candidates(
            truth, model.train.matrix[users], sampled_negatives, seed=seed
        )
    totals = _totals(model, ks, categories, item_vectors)
    allowed = None if allow_items is None else model.train.items.external(allow_items)
    depth = max(ks)
    # Lists a batch of users at a time: memory is bounded whatever the number of users.
    batch = max(1, _EVALUATION_BATCH_BYTES // (64 * depth))
    for start in range(0, users.size, batch):
        some = users[start : start + batch]
        if candidates is None:
            recommended, _ = recommend(model, some, depth, allow_items=allowed, n_threads=n_threads)
        else:
            among = candidates[start : start + batch]
            recommended = _recommend_among(model, some, among, depth, n_threads)
        totals.add(recommended, truth[start : start + batch])
    return int(users.size), totals.result()


def _totals(
    model: Model,
    ks: Sequence[int],
    categories: np.ndarray | None,
    item_vectors: np.ndarray | None,
) -> MetricTotals:
    """Empty running totals for ``model``'s lists (novelty from its training buyers)."""
    item_counts, n_buyers = _buyers(model.train)
    return MetricTotals(
        ks,
        model.train.n_items,
        item_counts=item_counts,
        n_users=max(n_buyers, 1),
        categories=categories,
        item_vectors=item_vectors,
    )


def _columns(test: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """The held-out pairs whose item ``keep`` marks, same shape."""
    out = sp.csr_matrix(test.multiply(keep.astype(np.float32)[None, :]), dtype=np.float32)
    out.eliminate_zeros()
    return out


def _new_customer_metrics(
    model: Model,
    test: sp.csr_matrix,
    ks: Sequence[int],
    *,
    baskets: sp.csr_matrix | None,
    features: sp.csr_matrix | None,
    categories: np.ndarray | None,
    item_vectors: np.ndarray | None,
) -> tuple[int, dict[int, dict[str, float]]]:
    """Metrics of customers the model never saw, ranked from their first ``baskets`` (rows of
    purchases), their encoded ``features``, or both, against their ``test`` rows."""
    ks = clamp_ks(ks, model.train.n_items)[0]
    users = np.flatnonzero(np.diff(test.indptr))
    totals = _totals(model, ks, categories, item_vectors)
    depth = max(ks)
    batch = max(1, _EVALUATION_BATCH_BYTES // (64 * depth))
    ids = model.train.items.ids
    for start in range(0, users.size, batch):
        some = users[start : start + batch]
        given = None
        if baskets is not None:
            rows = baskets[some]
            given = [
                ids[rows.indices[a:b]]
                for a, b in zip(rows.indptr[:-1], rows.indptr[1:], strict=True)
            ]
        recommended, _ = recommend_new_customers(
            model, given, None if features is None else features[some], depth
        )
        totals.add(recommended, test[some])
    return int(users.size), totals.result()


def evaluate_tasks(
    model: Model,
    split: Split,
    ks: Sequence[int],
    *,
    n_threads: int = 1,
    categories: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
) -> dict[str, TaskResult]:
    """Every task of a cold-start split, first the one that ranks models; full ranking.

    Cold items: ``cold`` ranks among the held-out items only, against each customer's
    purchases of them; ``overall`` ranks among every item against every held-out purchase (do
    cold items surface at all?); ``warm`` ranks among the items bought in train against the
    held-out purchases of those (no regression on what the model has seen). Cold customers:
    ``features`` ranks each from their customer features alone; with a first purchase,
    ``both`` (features and that basket) comes first and ``first-purchase`` (the basket alone)
    last, all against what they bought after it.
    """
    metrics = {"categories": categories, "item_vectors": item_vectors}
    n_items = model.train.n_items
    if split.cold_items is not None:
        cold = np.asarray(split.cold_items, dtype=bool)
        seen = np.bincount(model.train.matrix.indices, minlength=n_items) > 0
        tasks = {
            "cold": (f"the {int(cold.sum()):,} held-out items", cold),
            "overall": (f"all {n_items:,} items", None),
            "warm": (f"the {int(seen.sum()):,} items bought in train", seen),
        }
        out = {}
        for name, (among, keep) in tasks.items():
            truth = split.test if keep is None else _columns(split.test, keep)
            allow = None if keep is None else np.flatnonzero(keep)
            n, values = evaluate_model(
                model, truth, ks, n_threads=n_threads, allow_items=allow, **metrics
            )
            out[name] = TaskResult(among, n, values)
        return out
    if split.cold_users is not None:
        if model.user_features is None:
            raise ParameterError(
                "a cold-customer split needs a model fitted with customer features (user_features=)"
            )
        encoded = model.user_features.matrix
        first = split.first_purchases
        ways = {"features": (None, encoded)}
        if first is not None:
            ways = {"both": (first, encoded), **ways, "first-purchase": (first, None)}
        out = {}
        for name, (baskets, features) in ways.items():
            n, values = _new_customer_metrics(
                model, split.test, ks, baskets=baskets, features=features, **metrics
            )
            out[name] = TaskResult(f"all {n_items:,} items", n, values)
        return out
    raise ParameterError(f"{split.protocol}: not a cold-start split (no tasks)")


def evaluate_backend(
    split: Split,
    backend: str,
    params: Mapping[str, Any] | None = None,
    *,
    ks: Sequence[int] = (5, 10),
    weighting: str = "binary",
    seed: int | None = 0,
    n_threads: int = 1,
    sampled_negatives: int | None = None,
    categories: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    item_features: Features | None = None,
    user_features: Features | None = None,
    coldstart: ColdStart | None = None,
) -> Evaluation:
    """Fit ``backend`` on the split's train part and evaluate it on the held-out part.

    ``seed`` seeds the fit and, with ``sampled_negatives``, the draw of negatives. Features
    and ``coldstart`` go to ``fit_model``; a cold-start split (``make_split`` with
    ``cold-items`` or ``cold-users``) is evaluated task by task (``evaluate_tasks``).
    """
    ks = _checked_ks(ks)
    sampled_negatives = _checked_negatives(sampled_negatives)
    cold_split = split.cold_items is not None or split.cold_users is not None
    if cold_split and sampled_negatives is not None:
        raise ParameterError(
            f"{split.protocol}: sampled ranking is for leave-one-out, ratio and temporal "
            "splits; cold-start tasks rank the full catalogue (drop --sampled)"
        )
    start = time.perf_counter()
    model = fit_model(
        split.train,
        backend,
        params,
        weighting=weighting,
        seed=seed,
        item_features=item_features,
        user_features=user_features,
        coldstart=coldstart,
    )
    fit_seconds = time.perf_counter() - start
    if cold_split:
        tasks = evaluate_tasks(
            model,
            split,
            ks,
            n_threads=n_threads,
            categories=categories,
            item_vectors=item_vectors,
        )
        first = next(iter(tasks.values()))
        return Evaluation(
            backend,
            model.params,
            split.protocol,
            seed,
            first.n_users,
            first.metrics,
            fit_seconds,
            ranking_label(None),
            tasks,
        )
    n_users, metrics = evaluate_model(
        model,
        split.test,
        ks,
        n_threads=n_threads,
        sampled_negatives=sampled_negatives,
        seed=seed,
        categories=categories,
        item_vectors=item_vectors,
    )
    return Evaluation(
        backend,
        model.params,
        split.protocol,
        seed,
        n_users,
        metrics,
        fit_seconds,
        ranking_label(sampled_negatives),
    )


def item_vectors_for_diversity(train: Interactions, dims: int = 32, seed: Seed = 0) -> np.ndarray:
    """Item vectors (n_items x dims, float32) for intra-list diversity when there are no categories.

    A truncated SVD of the binary train matrix, item side: ``components_.T`` scaled by the
    singular values. They come from the data, not from the model under test, so every backend's
    lists are measured with the same ruler: a model's own factors would flatter lists that are
    spread out in its own space. ``dims`` is clamped below min(n_users, n_items).
    """
    from sklearn.decomposition import TruncatedSVD  # slow import: only when asked for

    if int(dims) != dims or dims < 1:
        raise ParameterError(f"dims={dims} must be a whole number of at least 1")
    n_users, n_items = train.matrix.shape
    largest = min(n_users, n_items) - 1
    if largest < 1:
        raise ParameterError(
            f"item vectors need at least 2 customers and 2 items; the data has {n_users} x "
            f"{n_items}"
        )
    m = train.matrix
    binary = sp.csr_matrix(((m.data != 0).astype(np.float32), m.indices, m.indptr), shape=m.shape)
    svd = TruncatedSVD(
        n_components=min(int(dims), largest),
        algorithm="randomized",
        random_state=int(resolve_rng(seed).integers(2**31 - 1)),
    )
    with threadpool_limits(1, "blas"):  # thin SVDs run faster on one BLAS thread here
        svd.fit(binary)
    vectors = svd.components_.T * svd.singular_values_[None, :]
    return np.ascontiguousarray(vectors, dtype=np.float32)


def categories_from(attribute: np.ndarray) -> np.ndarray:
    """Integer codes (int64) of a string attribute column (``model.item_attributes["category"]``).

    Codes follow the sorted distinct values. The empty string is a value like any other: items
    without a category share one code ("unknown") and count as alike, so missing categories
    can only lower diversity, never inflate it.
    """
    values = np.asarray(attribute)
    if values.ndim != 1:
        raise ParameterError(f"attribute must be 1-D (one value per item), got {values.ndim}-D")
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64).reshape(-1)
