"""Offline evaluation: fit on a split's train part, rank every test user, score the ranking.

Full ranking (every item a customer did not buy) is the default. Sampled-negative ranking (each
customer's held-out items among a few random items they did not buy, as in the NCF paper) is
cheaper and easier, so its numbers run higher; an ``Evaluation`` says which one it holds.

Full-ranking lists come from the same pipeline as served ones (``growthrec.pipeline.lists``
with a ``ListSpec``: rules, caps, re-ranking), so an evaluated list is exactly a served list.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.backends.registry import get_backend
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.interactions import Interactions, column_counts
from growthrec.core.item_vectors import item_vectors_for_diversity  # re-exported: callers' name
from growthrec.core.metrics import HEAD_SHARE, MetricTotals
from growthrec.core.model import Model
from growthrec.core.ranking import batch_rows, top_k_batched
from growthrec.core.reranking import CategoryTable, user_category_distribution
from growthrec.core.sampling import candidate_items, candidate_scores, sample_candidates
from growthrec.core.seeds import Seed
from growthrec.core.split import Split
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import (
    item_categories,
    recommend,
    recommend_new_customers,
    training_rows,
)
from growthrec.pipeline.rules import ListSpec

__all__ = [
    "Evaluation",
    "ListsEvaluation",
    "TaskResult",
    "categories_from",
    "clamp_ks",
    "evaluate_backend",
    "evaluate_lists",
    "evaluate_model",
    "evaluate_tasks",
    "item_vectors_for_diversity",
    "plain_ranking",
    "ranking_label",
]


@attrs.frozen
class TaskResult:
    """One task of a cold-start protocol: what was ranked, for how many customers, how well."""

    ranked_among: str
    n_users: int
    metrics: Mapping[int, Mapping[str, float]]
    n_short_lists: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ranked_among": self.ranked_among,
            "n_users": self.n_users,
            "n_short_lists": self.n_short_lists,
            "metrics": {str(k): dict(v) for k, v in self.metrics.items()},
        }


@attrs.frozen
class Evaluation:
    """One backend's metrics on one split, with what is needed to reproduce them.

    ``metrics[k]`` holds the ``METRIC_NAMES`` ratios, then novelty (in bits) and, when item
    categories or vectors were given, diversity; then the Gini index of exposure, the long-tail
    share and, when the catalogue has the category column, miscalibration.
    ``n_short_lists`` counts lists shorter than the deepest K. ``ranking`` says how the lists
    were made:
    ``"full"`` or ``"sampled (N negatives per user)"``; sampled numbers are not comparable with
    full ones. A cold-start split has several ``tasks`` (``evaluate_tasks``); ``metrics`` and
    ``n_users`` are then the first task's (cold items, or customers from their features), the
    one tuning ranks by. ``lists``: a warm split's lists and their users, when
    ``evaluate_backend`` was asked to keep them (``keep_lists``), for per-customer figures.
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
    n_short_lists: int = 0
    lists: ListsEvaluation | None = attrs.field(default=None, eq=False, repr=False)
    recency: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form with stable keys (``tasks`` only for a cold-start split)."""
        out = {
            "backend": self.backend,
            "params": dict(self.params),
            "recency": self.recency,
            "protocol": self.protocol,
            "ranking": self.ranking,
            "seed": self.seed,
            "n_users": self.n_users,
            "n_short_lists": self.n_short_lists,
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
        item_counts = column_counts(m)
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
    weighted, scoring_users = training_rows(model, users)

    def score_batch(start: int, stop: int) -> np.ndarray:
        rows, who = weighted[start:stop], scoring_users[start:stop]
        scores = impl.score(model.arrays, model.params, rows, who)
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


@attrs.frozen
class ListsEvaluation:
    """What ``evaluate_lists`` measured: the users evaluated, the metrics at each K, how many
    lists came out shorter than the deepest K, and (when kept) the lists themselves."""

    n_users: int
    metrics: dict[int, dict[str, float]]
    n_short_lists: int
    users: np.ndarray | None = attrs.field(default=None, eq=False)
    lists: np.ndarray | None = attrs.field(default=None, eq=False)


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
    spec: ListSpec | None = None,
) -> tuple[int, dict[int, dict[str, float]]]:
    """Metrics at each k over the users with held-out items: ``evaluate_lists``' number of
    users and ``{k: {metric: value}}``."""
    result = evaluate_lists(
        model,
        test,
        ks,
        n_threads=n_threads,
        sampled_negatives=sampled_negatives,
        seed=seed,
        categories=categories,
        item_vectors=item_vectors,
        allow_items=allow_items,
        spec=spec,
    )
    return result.n_users, result.metrics


_SAMPLED_WITH_RULES = (
    "sampled ranking ranks a few drawn items, not served lists: it takes no rules or "
    "re-ranker (drop --sampled, or the list options)"
)


def plain_ranking(spec: ListSpec) -> bool:
    """Whether ``spec`` asks for the model's plain ranking (no rule, no re-ranker)."""
    ruled = bool(spec.filters or spec.deny) or spec.allow is not None
    return not (spec.reorders or ruled or not spec.exclude_seen)


def evaluate_lists(
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
    spec: ListSpec | None = None,
    keep_lists: bool = False,
) -> ListsEvaluation:
    """Metrics at each k over the users with held-out items, from the lists ``spec`` makes.

    By default each user's list ranks every item they did not buy, through the same pipeline
    as ``growthrec recommend`` (``spec``: rules, caps, re-ranking; its ``n`` is each K: one
    list is made at the deepest K and each K reads its first K, which is the list at K since
    caps and the greedy re-rankers fill a list position by position). With
    ``sampled_negatives=N`` it ranks their held-out items among N items drawn (with ``seed``)
    from those they neither bought nor hold out (no rules: refused with a ``spec`` that has
    any); the draw depends only on the split and the seed, so backends evaluated with the same
    seed meet the same negatives. Novelty, the Gini index of exposure and the long-tail share
    are always reported (popularity from ``model.train``); diversity when ``categories`` or
    ``item_vectors`` is given; miscalibration when the model's catalogue has the category
    column (``spec.category``, default ``category``).

    A k deeper than the catalogue is computed at the catalogue's size and keyed so
    (``clamp_ks``). Users are ranked and scored a batch at a time, so memory stays bounded
    for any number of users and any k. ``allow_items`` (item indices) ranks among those
    items only, as a cold-start task does. ``keep_lists`` keeps the test users (row indices)
    and their lists at the deepest K, to compare with served ones.
    """
    ks = clamp_ks(ks, model.train.n_items)[0]
    sampled_negatives = _checked_negatives(sampled_negatives)
    if sampled_negatives is not None and allow_items is not None:
        raise ParameterError("sampled ranking and an allow list do not go together")
    depth = max(ks)
    spec = ListSpec(n=depth) if spec is None else attrs.evolve(spec, n=depth)
    if sampled_negatives is not None and not plain_ranking(spec):
        raise ParameterError(_SAMPLED_WITH_RULES)
    if allow_items is not None:
        allowed = model.train.items.external(allow_items).tolist()
        if spec.allow is not None:
            given = set(spec.allow)
            allowed = [i for i in allowed if i in given]
        spec = attrs.evolve(spec, allow=tuple(allowed))
    users = np.flatnonzero(np.diff(test.indptr))
    truth = test[users]
    candidates = None
    if sampled_negatives is not None:
        candidates = sample_candidates(
            truth, model.train.matrix[users], sampled_negatives, seed=seed
        )
    table = _category_table(model, spec.category)
    totals = _totals(model, ks, categories, item_vectors, table)
    kept: list[np.ndarray] = []
    n_short = 0
    # Lists a batch of users at a time: memory is bounded whatever the number of users.
    batch = max(1, _EVALUATION_BATCH_BYTES // (64 * depth))
    for start in range(0, users.size, batch):
        some = users[start : start + batch]
        if candidates is None:
            recommended, _ = recommend(model, some, n_threads=n_threads, spec=spec)
        else:
            among = candidates[start : start + batch]
            recommended = _recommend_among(model, some, among, depth, n_threads)
        n_short += int(np.count_nonzero(recommended[:, depth - 1] < 0))
        history = None
        if table is not None:
            history = user_category_distribution(model.train.matrix[some], table)
        totals.add(recommended, truth[start : start + batch], history)
        if keep_lists:
            kept.append(recommended)
    lists = None
    if keep_lists:
        lists = np.concatenate(kept) if kept else np.empty((0, depth), dtype=np.int64)
    return ListsEvaluation(
        int(users.size),
        totals.result(),
        n_short,
        users if keep_lists else None,
        lists,
    )


def _category_table(model: Model, column: str) -> CategoryTable | None:
    """The items' categories for miscalibration, when the model's catalogue has ``column``."""
    if column not in model.item_attributes:
        return None
    return item_categories(model, column)


def _totals(
    model: Model,
    ks: Sequence[int],
    categories: np.ndarray | None,
    item_vectors: np.ndarray | None,
    table: CategoryTable | None = None,
) -> MetricTotals:
    """Empty running totals for ``model``'s lists (novelty, exposure and the long tail from its
    training buyers; miscalibration with the item categories ``table``)."""
    item_counts, n_buyers = _buyers(model.train)
    return MetricTotals(
        ks,
        model.train.n_items,
        item_counts=item_counts,
        n_users=max(n_buyers, 1),
        categories=categories,
        item_vectors=item_vectors,
        exposure=True,
        head_share=HEAD_SHARE,
        item_categories=None if table is None else table.matrix(),
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
    spec: ListSpec | None = None,
) -> tuple[int, dict[int, dict[str, float]], int]:
    """Metrics of customers the model never saw, ranked from their first ``baskets`` (rows of
    purchases), their encoded ``features``, or both, against their ``test`` rows, through
    ``spec``'s rules; and the number of lists shorter than the deepest K. Miscalibration
    (with a category column) is measured against the basket, so only when there is one."""
    ks = clamp_ks(ks, model.train.n_items)[0]
    users = np.flatnonzero(np.diff(test.indptr))
    depth = max(ks)
    spec = ListSpec(n=depth) if spec is None else attrs.evolve(spec, n=depth)
    table = None if baskets is None else _category_table(model, spec.category)
    totals = _totals(model, ks, categories, item_vectors, table)
    batch = max(1, _EVALUATION_BATCH_BYTES // (64 * depth))
    ids = model.train.items.ids
    n_short = 0
    for start in range(0, users.size, batch):
        some = users[start : start + batch]
        given = None
        history = None
        if baskets is not None:
            rows = baskets[some]
            given = [
                ids[rows.indices[a:b]]
                for a, b in zip(rows.indptr[:-1], rows.indptr[1:], strict=True)
            ]
            if table is not None:
                history = user_category_distribution(rows, table)
        recommended, _ = recommend_new_customers(
            model, given, None if features is None else features[some], spec=spec
        )
        n_short += int(np.count_nonzero(recommended[:, depth - 1] < 0))
        totals.add(recommended, test[some], history)
    return int(users.size), totals.result(), n_short


def evaluate_tasks(
    model: Model,
    split: Split,
    ks: Sequence[int],
    *,
    n_threads: int = 1,
    categories: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    spec: ListSpec | None = None,
) -> dict[str, TaskResult]:
    """Every task of a cold-start split, first the one that ranks models; full ranking, each
    list through ``spec``'s rules and re-ranker (a task's own item set narrows its allow list).

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
        seen = column_counts(model.train.matrix) > 0
        tasks = {
            "cold": (f"the {int(cold.sum()):,} held-out items", cold),
            "overall": (f"all {n_items:,} items", None),
            "warm": (f"the {int(seen.sum()):,} items bought in train", seen),
        }
        out = {}
        for name, (among, keep) in tasks.items():
            truth = split.test if keep is None else _columns(split.test, keep)
            allow = None if keep is None else np.flatnonzero(keep)
            result = evaluate_lists(
                model, truth, ks, n_threads=n_threads, allow_items=allow, spec=spec, **metrics
            )
            out[name] = TaskResult(among, result.n_users, result.metrics, result.n_short_lists)
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
            n, values, short = _new_customer_metrics(
                model, split.test, ks, baskets=baskets, features=features, spec=spec, **metrics
            )
            out[name] = TaskResult(f"all {n_items:,} items", n, values, short)
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
    item_attributes: Mapping[str, np.ndarray] | None = None,
    spec: ListSpec | None = None,
    keep_lists: bool = False,
    recency: float = 0.0,
) -> Evaluation:
    """Fit ``backend`` on the split's train part and evaluate it on the held-out part.

    ``seed`` seeds the fit and, with ``sampled_negatives``, the draw of negatives. Features,
    ``coldstart`` and the catalogue's ``item_attributes`` (what filters, caps and categories
    read) go to ``fit_model``; ``spec`` (a ``ListSpec``, its ``n`` each K) makes the lists, as
    ``recommend`` does; a cold-start split (``make_split`` with ``cold-items`` or
    ``cold-users``) is evaluated task by task (``evaluate_tasks``). ``keep_lists`` keeps a warm
    split's lists in the result (``Evaluation.lists``). ``recency``: the model's half-life of
    recency weights (``Model.recency``; 0: off).
    """
    ks = _checked_ks(ks)
    sampled_negatives = _checked_negatives(sampled_negatives)
    if sampled_negatives is not None and spec is not None and not plain_ranking(spec):
        raise ParameterError(_SAMPLED_WITH_RULES)
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
        item_attributes=item_attributes,
        recency=recency,
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
            spec=spec,
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
            first.n_short_lists,
            recency=model.recency,
        )
    result = evaluate_lists(
        model,
        split.test,
        ks,
        n_threads=n_threads,
        sampled_negatives=sampled_negatives,
        seed=seed,
        categories=categories,
        item_vectors=item_vectors,
        spec=spec,
        keep_lists=keep_lists,
    )
    return Evaluation(
        backend,
        model.params,
        split.protocol,
        seed,
        result.n_users,
        result.metrics,
        fit_seconds,
        ranking_label(sampled_negatives),
        n_short_lists=result.n_short_lists,
        lists=result if keep_lists else None,
        recency=model.recency,
    )


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
