"""Retraining into a model store: data guardrails, a warm-started challenger, a paired judgement.

One retrain (``retrain``) on new data, against the store's champion:

1. *Idempotence*: data whose fingerprint a decision already names is not judged again.
2. *Data guardrails* (``data_checks``), before any fitting, against the champion's data:
   rows, customers and items must not shrink by more than ``max_shrink``; the data must not
   end before the champion's did; the events per day since the champion's data ended must be
   at least ``min_recent_rate`` times those of as many days just before it (a half-missing
   export), measured over the latest ``window_days`` of the new period, so that a champion
   months old does not dilute one bad month; the items bought in those days and the days
   before them must not shift (total variation distance
   between the shares of buyers per item) by more than ``max_item_shift``; the share of
   returning customers' purchases that are repeats must not fall under ``min_repeat_ratio``
   times the days before's (a broken join that relabels products destroys repeats); and the
   new data must still hold at least ``min_history_match`` of the champion's (customer, item)
   pairs over the days both cover (an export whose history was rewritten). Any failure refuses
   the data; the decision is recorded.
3. *Challenger*: the champion's backend and parameters fitted on the data before the holdout,
   starting from the champion's factors (ids of the old and new data matched; new customers
   and items start at implicit's small random values) with ``warm_iterations`` sweeps, when the
   backend has ``fit_warm`` (``als``); otherwise, or with ``retune``, fitted afresh.
4. *Judgement* (``judge``) on the holdout: the new data's events after
   ``max(last - holdout_days, champion's last)``, i.e. the latest days, and never a day the
   champion was trained on. The champion is judged as it is (it is what customers see); the
   challenger is fitted on everything before the holdout. Both rank the whole catalogue for the
   holdout customers both know, minus what each customer bought before the holdout (the same
   exclusions for both), and the truth is what they bought in the holdout that they had not
   bought before. The challenger is promoted only if the one-sided ``confidence`` lower bound
   of the mean per-customer NDCG@k difference (paired bootstrap over customers) is above
   ``-epsilon``, its catalogue coverage is at least ``1 - max_coverage_drop`` times the
   champion's, and its share of holdout customers without a list is at most the champion's
   plus ``max_empty_increase``; the overlap of the two models' lists is reported.
5. *Promotion*: the challenger's recipe refitted on all the data (starting from the
   challenger's factors), written as a new version, the champion alias flipped in the same
   manifest write that records the decision. A rejected challenger is kept as a version (so
   ``growthrec models promote`` can overrule the decision) and becomes the ``challenger``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.backends.registry import get_backend
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.interactions import Events, IdMap, Interactions, interactions_from_events
from growthrec.core.model import Model
from growthrec.data.loading import LoadReport
from growthrec.errors import DataError, ParameterError
from growthrec.evaluation.bootstrap import ndcg_per_user, paired_bootstrap
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.store.modelfile import load_model
from growthrec.store.versions import (
    CHALLENGER,
    StoreError,
    champion_entry,
    new_manifest,
    next_version_id,
    now_iso,
    promote_version,
    read_manifest,
    record_decision,
    version_entry,
    version_path,
    write_manifest,
    write_version,
)

__all__ = [
    "Check",
    "Judgement",
    "NewData",
    "Thresholds",
    "can_warm_start",
    "data_checks",
    "data_summary",
    "default_warm_iterations",
    "item_shift",
    "judge",
    "retrain",
    "split_at",
    "warm_start_factors",
]

DAY = 86_400.0


@attrs.frozen
class Thresholds:
    """When a retrain refuses its data, and when a challenger may replace the champion."""

    max_shrink: float = 0.1
    min_recent_rate: float = 0.65
    max_item_shift: float = 0.45
    min_repeat_ratio: float = 0.5
    min_history_match: float = 0.9
    window_days: float = 30.0
    holdout_days: float = 14.0
    min_holdout_customers: int = 30
    k: int = 10
    epsilon: float = 0.002
    confidence: float = 0.95
    n_resamples: int = 2000
    max_coverage_drop: float = 0.5
    max_empty_increase: float = 0.05

    def __attrs_post_init__(self) -> None:
        for name in (
            "max_shrink",
            "max_item_shift",
            "min_history_match",
            "confidence",
            "max_coverage_drop",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ParameterError(f"--{name.replace('_', '-')} {value:g}: expected 0 to 1")
        for name in ("min_recent_rate", "min_repeat_ratio", "epsilon", "max_empty_increase"):
            if getattr(self, name) < 0:
                raise ParameterError(f"--{name.replace('_', '-')} must not be negative")
        if self.window_days <= 0:
            raise ParameterError(f"--window-days {self.window_days:g}: expected more than 0")
        if self.holdout_days <= 0:
            raise ParameterError(f"--holdout-days {self.holdout_days:g}: expected more than 0")


@attrs.frozen
class NewData:
    """The data a retrain reads, with what the model is fitted with besides the matrix."""

    events: Events
    report: LoadReport
    item_attributes: Mapping[str, np.ndarray] = attrs.field(factory=dict, eq=False)
    item_features: Features | None = attrs.field(default=None, eq=False)
    user_features: Features | None = attrs.field(default=None, eq=False)
    coldstart: ColdStart = attrs.field(factory=ColdStart)


@attrs.frozen
class Check:
    """One guardrail: what was measured, the limit, and whether it passed."""

    name: str
    value: float | None = attrs.field(converter=attrs.converters.optional(float))
    limit: float | None = attrs.field(converter=attrs.converters.optional(float))
    passed: bool = attrs.field(converter=bool)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return str(np.datetime64(int(seconds), "s")) + "Z"


def data_summary(events: Events, report: LoadReport) -> dict[str, Any]:
    """What the manifest records of a version's data: counts, fingerprint and date range."""
    times = events.timestamps
    return {
        "path": report.path,
        "fingerprint": report.fingerprint,
        "rows": report.rows_kept,
        "n_users": report.n_users,
        "n_items": report.n_items,
        "first": None if times is None else float(times.min()),
        "last": None if times is None else float(times.max()),
        "first_date": None if times is None else _iso(times.min()),
        "last_date": None if times is None else _iso(times.max()),
    }


def item_shift(
    ids_a: np.ndarray, buyers_a: np.ndarray, ids_b: np.ndarray, buyers_b: np.ndarray
) -> float:
    """Total variation distance between two shares-of-buyers-per-item (0 same, 1 disjoint)."""
    ids = np.union1d(ids_a, ids_b)
    shares = []
    for own, counts in ((ids_a, buyers_a), (ids_b, buyers_b)):
        out = np.zeros(ids.size)
        total = float(np.sum(counts))
        if total > 0:
            out[np.searchsorted(ids, own)] = np.asarray(counts, dtype=np.float64) / total
        shares.append(out)
    return float(0.5 * np.abs(shares[0] - shares[1]).sum())


def _buyers_per_item(events: Events, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Item ids and their distinct buyers among the events where ``mask`` holds."""
    n_items = len(events.items)
    pairs = np.unique(events.user_codes[mask].astype(np.int64) * n_items + events.item_codes[mask])
    counts = np.bincount(pairs % n_items, minlength=n_items)
    present = counts > 0
    return events.items.ids[present], counts[present]


def data_checks(
    data: NewData, champion: Mapping[str, Any], model: Model, thresholds: Thresholds
) -> list[Check]:
    """The data guardrails of the module docstring, each measured and compared to its limit."""
    old, report, events = champion["data"], data.report, data.events
    checks = []
    for name, new_value, old_value in (
        ("rows", report.rows_kept, old["rows"]),
        ("customers", report.n_users, old["n_users"]),
        ("items", report.n_items, old["n_items"]),
    ):
        ratio = new_value / old_value if old_value else 1.0
        limit = 1.0 - thresholds.max_shrink
        checks.append(
            Check(
                name,
                round(ratio, 4),
                limit,
                ratio >= limit,
                f"{new_value:,} {name} against the champion's {old_value:,}",
            )
        )
    times, old_last = events.timestamps, old.get("last")
    if times is None or old_last is None:
        return checks
    last = float(times.max())
    checks.append(
        Check(
            "date range",
            round((last - old_last) / DAY, 2),
            0.0,
            last >= old_last,
            f"the data ends {_iso(last)}, the champion's ended {_iso(old_last)}",
        )
    )
    checks += _recent_checks(events, old_last, last, thresholds)
    matched = _history_match(model, events, old_last)
    if matched is not None:
        checks.append(
            Check(
                "history match",
                round(matched, 4),
                thresholds.min_history_match,
                matched >= thresholds.min_history_match,
                "share of the champion's (customer, item) pairs, over the days both datasets "
                "cover, that the new data holds too",
            )
        )
    return checks


def _windows(since: float, last: float, days: float) -> list[tuple[float, float]]:
    """The latest ``days`` of the new period ``(since, last]`` (all of it when shorter).

    Only the latest: an older window may hold a holiday closure the shop really had (Online
    Retail's Christmas), and a bad export shows in its newest days.
    """
    return [(max(last - days * DAY, since), last)]


def _recent_checks(
    events: Events, since: float, last: float, thresholds: Thresholds
) -> list[Check]:
    """Rows per day, item shift and repeat share of the latest days of the new period against
    as many days just before them."""
    times = events.timestamps
    rates, shifts, repeats = [], [], []
    for start, end in _windows(since, last, thresholds.window_days):
        span = end - start
        window = (times > start) & (times <= end)
        before = (times > start - span) & (times <= start)
        n_window, n_before = np.count_nonzero(window), np.count_nonzero(before)
        dates = f"{_iso(start)[:10]}..{_iso(end)[:10]}"
        if not n_before:
            continue
        rates.append((n_window / n_before, dates, n_window, n_before))
        if n_window:
            shift = item_shift(*_buyers_per_item(events, before), *_buyers_per_item(events, window))
            shifts.append((shift, dates))
            now = _repeat_share(events, times <= start, window)
            then = _repeat_share(events, times <= start - span, before)
            if now is not None and then:
                repeats.append((now / then, dates, now, then))
    checks = []
    if rates:
        rate, dates, n_window, n_before = min(rates)
        checks.append(
            Check(
                "recent rows per day",
                round(rate, 4),
                thresholds.min_recent_rate,
                rate >= thresholds.min_recent_rate,
                f"{n_window:,} rows in {dates} against {n_before:,} in as many days before",
            )
        )
    if shifts:
        shift, dates = max(shifts)
        checks.append(
            Check(
                "recent item shift",
                round(shift, 4),
                thresholds.max_item_shift,
                shift <= thresholds.max_item_shift,
                f"total variation between the items bought in {dates} and in as many days before",
            )
        )
    if repeats:
        ratio, dates, now, then = min(repeats)
        checks.append(
            Check(
                "recent repeat share",
                round(ratio, 4),
                thresholds.min_repeat_ratio,
                ratio >= thresholds.min_repeat_ratio,
                f"{now:.1%} of returning customers' purchases in {dates} were items they had "
                f"bought before, against {then:.1%} in as many days before",
            )
        )
    return checks


def _pair_keys(events: Events, mask: np.ndarray) -> np.ndarray:
    return np.unique(
        events.user_codes[mask].astype(np.int64) * len(events.items) + events.item_codes[mask]
    )


def _repeat_share(events: Events, earlier: np.ndarray, period: np.ndarray) -> float | None:
    """Share of the ``period``'s pairs of customers seen ``earlier`` that are repeats: items
    those customers bought ``earlier`` too. A relabelling of items destroys it."""
    seen = _pair_keys(events, earlier)
    returning = np.isin(events.user_codes, np.unique(events.user_codes[earlier]))
    pairs = _pair_keys(events, period & returning)
    return float(np.isin(pairs, seen).mean()) if pairs.size else None


def _history_match(model: Model, events: Events, until: float) -> float | None:
    """Share of the model's training pairs last seen between the new data's first event and
    ``until`` that the new data holds by ``until`` (None without times or such pairs)."""
    times = model.train.timestamps
    if times is None or events.timestamps is None:
        return None
    matrix = model.train.matrix
    window = (times >= events.timestamps.min()) & (times <= until)
    if not window.any():
        return None
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))[window]
    users = _positions(events.users, model.train.users)[rows]
    items = _positions(events.items, model.train.items)[matrix.indices[window]]
    keys = np.where((users >= 0) & (items >= 0), users * len(events.items) + items, -1)
    return float(np.isin(keys, _pair_keys(events, events.timestamps <= until)).mean())


def warm_start_factors(
    champion: Model, data: Interactions, seed: int | None = 0
) -> dict[str, np.ndarray] | None:
    """The champion's factors re-indexed to ``data``'s customers and items (new ones at
    implicit's initial ``U[0, 0.01)``), or None when the champion has no factors to give."""
    arrays = champion.arrays
    if "user_factors" not in arrays or "item_factors" not in arrays:
        return None
    rng = np.random.default_rng(seed)
    out = {}
    for name, old_ids, new_ids in (
        ("user_factors", champion.train.users, data.users),
        ("item_factors", champion.train.items, data.items),
    ):
        old = np.asarray(arrays[name], dtype=np.float32)
        start = (rng.random((len(new_ids), old.shape[1]), dtype=np.float32) * 0.01).astype(
            np.float32
        )
        found = _positions(old_ids, new_ids)
        start[found >= 0] = old[found[found >= 0]]
        out[name] = start
    return out


def _positions(old: IdMap, new: IdMap) -> np.ndarray:
    """For each id of ``new``, its index in ``old`` (-1 if absent)."""
    if old.kind != new.kind:
        return old.index(new.ids.astype(str) if old.kind == "str" else new.ids)
    return old.index(new.ids)


def default_warm_iterations(iterations: int) -> int:
    """Sweeps of a warm-started fit: a third of a cold fit's, at least 2 (see README figures)."""
    return max(2, round(int(iterations) / 3))


def can_warm_start(backend: str) -> bool:
    """Does ``backend`` offer ``fit_warm`` (start from given factors)?"""
    return callable(getattr(get_backend(backend), "fit_warm", None))


@attrs.frozen
class Judgement:
    """Champion against challenger on one holdout: the figures and the verdict."""

    promote: bool
    reason: str
    figures: dict[str, Any] = attrs.field(eq=False)


def split_at(events: Events, start: float) -> tuple[Interactions, Events]:
    """The events before ``start`` as a matrix (every customer and item kept), and the rest."""
    before = events.timestamps < start
    return interactions_from_events(events.select(before)), events.select(~before)


def _lists_in(
    model: Model, user_ids: np.ndarray, items: IdMap, seen: sp.csr_matrix, rows: np.ndarray, k: int
) -> np.ndarray:
    """Top-``k`` of ``model`` for ``user_ids``, as indices of ``items``, minus ``seen[rows]``.

    ``-1`` where the model does not know the customer (an empty list) or ran out of items.
    """
    out = np.full((user_ids.size, k), -1, dtype=np.int64)
    known = _positions(model.train.users, IdMap.from_ids(user_ids)) if user_ids.size else user_ids
    have = np.flatnonzero(known >= 0)
    if have.size == 0:
        return out
    depth = min(k + 100, model.train.n_items)
    ranked, _ = recommend(model, known[have], depth)
    mapped = np.full(ranked.shape, -1, dtype=np.int64)
    valid = ranked >= 0
    mapped[valid] = _positions(items, IdMap.from_ids(model.train.items.ids))[ranked[valid]]
    seen_rows = seen[rows[have]]
    for n, row in enumerate(mapped):  # per customer: drop seen items, keep the first k
        bought = seen_rows.indices[seen_rows.indptr[n] : seen_rows.indptr[n + 1]]
        kept = row[(row >= 0) & ~np.isin(row, bought)][:k]
        out[have[n], : kept.size] = kept
    return out


def judge(
    champion: Model,
    challenger: Model,
    history: Interactions,
    holdout: Events,
    thresholds: Thresholds,
    seed: int | None = 0,
) -> Judgement:
    """Champion against challenger on ``holdout`` (see the module docstring for the rule).

    ``history`` is everything before the holdout (the challenger's training data), whose
    purchases are excluded from both models' lists and from the truth.
    """
    k = thresholds.k
    items = history.items
    n_items = history.n_items
    pairs = np.unique(holdout.user_codes.astype(np.int64) * n_items + holdout.item_codes)
    users, item_codes = pairs // n_items, pairs % n_items
    seen = history.matrix
    fresh = seen[users, item_codes].A1 == 0  # bought before: not something to recommend
    users, item_codes = users[fresh], item_codes[fresh]
    customers = np.unique(users)
    truth = sp.csr_matrix(
        (np.ones(users.size, dtype=np.float32), (np.searchsorted(customers, users), item_codes)),
        shape=(customers.size, n_items),
    )
    ids = history.users.ids[customers]
    champion_lists = _lists_in(champion, ids, items, seen, customers, k)
    challenger_lists = _lists_in(challenger, ids, items, seen, customers, k)
    champion_empty = (champion_lists[:, 0] < 0).mean() if customers.size else 0.0
    challenger_empty = (challenger_lists[:, 0] < 0).mean() if customers.size else 0.0
    both = (champion_lists[:, 0] >= 0) & (challenger_lists[:, 0] >= 0)
    figures: dict[str, Any] = {
        "k": k,
        "holdout_customers": int(customers.size),
        "judged_customers": int(both.sum()),
        "empty_lists": {
            "champion": round(float(champion_empty), 4),
            "challenger": round(float(challenger_empty), 4),
        },
    }
    if both.sum() < thresholds.min_holdout_customers:
        return Judgement(
            False,
            f"too little new data to judge: {int(both.sum())} holdout customers known to both "
            f"models, need {thresholds.min_holdout_customers}",
            figures,
        )
    ndcg_champion = ndcg_per_user(champion_lists[both], truth[both], k)
    ndcg_challenger = ndcg_per_user(challenger_lists[both], truth[both], k)
    result = paired_bootstrap(
        ndcg_challenger - ndcg_champion,
        n_resamples=thresholds.n_resamples,
        confidence=thresholds.confidence,
        seed=seed,
    )
    coverage = {
        name: round(float(np.unique(lists[both][lists[both] >= 0]).size / max(n_items, 1)), 4)
        for name, lists in (("champion", champion_lists), ("challenger", challenger_lists))
    }
    overlap = np.mean(
        [
            np.intersect1d(a[a >= 0], b[b >= 0]).size / k
            for a, b in zip(champion_lists[both], challenger_lists[both], strict=True)
        ]
    )
    figures.update(
        {
            "ndcg": {
                "champion": round(float(ndcg_champion.mean()), 5),
                "challenger": round(float(ndcg_challenger.mean()), 5),
            },
            "difference": round(result.mean, 5),
            "lower_bound": round(result.lower, 5),
            "epsilon": thresholds.epsilon,
            "confidence": thresholds.confidence,
            "n_resamples": thresholds.n_resamples,
            "coverage": coverage,
            "overlap": round(float(overlap), 4),
        }
    )
    if result.lower <= -thresholds.epsilon:
        return Judgement(
            False,
            f"the challenger may be worse: NDCG@{k} {ndcg_challenger.mean():.4f} against the "
            f"champion's {ndcg_champion.mean():.4f}, lower bound of the difference "
            f"{result.lower:+.4f} is not above -{thresholds.epsilon:g}",
            figures,
        )
    floor = (1.0 - thresholds.max_coverage_drop) * coverage["champion"]
    if coverage["challenger"] < floor:
        return Judgement(
            False,
            f"coverage fell: the challenger's lists cover {coverage['challenger']:.2%} of the "
            f"items, under {floor:.2%} ({1 - thresholds.max_coverage_drop:g} x the champion's)",
            figures,
        )
    if challenger_empty > champion_empty + thresholds.max_empty_increase:
        return Judgement(
            False,
            f"more customers without a list: {challenger_empty:.2%} against the champion's "
            f"{champion_empty:.2%} (allowed: +{thresholds.max_empty_increase:.0%})",
            figures,
        )
    return Judgement(
        True,
        f"not worse: NDCG@{k} {ndcg_challenger.mean():.4f} against {ndcg_champion.mean():.4f}, "
        f"lower bound of the difference {result.lower:+.4f} > -{thresholds.epsilon:g}",
        figures,
    )


def _fit(
    data: NewData,
    matrix: Interactions,
    backend: str,
    params: Mapping[str, Any],
    weighting: str,
    seed: int | None,
    start: dict[str, np.ndarray] | None,
    recency: float = 0.0,
) -> tuple[Model, float]:
    began = time.perf_counter()
    model = fit_model(
        matrix,
        backend,
        params,
        weighting=weighting,
        seed=seed,
        item_attributes=data.item_attributes,
        item_features=data.item_features,
        user_features=data.user_features,
        coldstart=data.coldstart,
        start=start,
        recency=recency,
    )
    return model, time.perf_counter() - began


def _decision(
    outcome: str, reason: str, data: NewData, champion: str | None, **more: Any
) -> dict[str, Any]:
    return {
        "at": now_iso(),
        "outcome": outcome,
        "reason": reason,
        "champion_before": champion,
        "data": data_summary(data.events, data.report),
        "checks": [],
        "judgement": None,
        "fit": None,
        "version": None,
        **more,
    }


def retrain(
    store: Path,
    data: NewData,
    recipe: Mapping[str, Any],
    *,
    thresholds: Thresholds = Thresholds(),
    backend: str | None = None,
    params: Mapping[str, Any] | None = None,
    weighting: str | None = None,
    recency: float | None = None,
    seed: int | None = None,
    retune: bool = False,
    warm_iterations: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """One retrain of ``store`` on ``data`` (the caller holds the store's lock); the decision.

    ``outcome`` is ``promoted``, ``rejected`` (the challenger was judged and kept out),
    ``refused`` (the data failed a guardrail, or too little new data to judge) or ``unchanged``
    (this data was judged before: nothing written). The first retrain of an empty store needs
    ``backend`` (``params``, ``weighting``, ``recency``, ``seed``) and ``recipe`` (how the data
    was read); later ones take them from the champion (its model file's recency), ``params``
    overriding single values.
    """
    manifest = read_manifest(store) if (store / "manifest.json").exists() else new_manifest()
    champion = champion_entry(manifest)
    fingerprint = data.report.fingerprint
    if not force:
        for earlier in reversed(manifest["decisions"]):
            if earlier["data"]["fingerprint"] == fingerprint:
                return {
                    **_decision(
                        "unchanged",
                        f"this data (fingerprint {fingerprint}) was judged on {earlier['at']}: "
                        f"{earlier['outcome']}; nothing to do (--force judges it again)",
                        data,
                        manifest["aliases"]["champion"],
                    ),
                    "version": earlier.get("version"),
                }
    if champion is None:
        return _first_version(
            store, manifest, data, recipe, backend, params, weighting, recency or 0.0, seed
        )
    backend = champion["backend"]
    params = {**champion["params"], **(params or {})}
    weighting = weighting or champion["weighting"]
    seed = champion["seed"] if seed is None else seed
    champion_model = load_model(version_path(store, champion["id"]))
    recency = champion_model.recency if recency is None else recency
    checks = data_checks(data, champion, champion_model, thresholds)
    failed = [c for c in checks if not c.passed]
    common = {"checks": [c.as_dict() for c in checks]}
    if failed:
        reason = "data refused: " + "; ".join(
            f"{c.name} {c.value:g} (limit {c.limit:g}): {c.detail}" for c in failed
        )
        decision = _decision("refused", reason, data, champion["id"], **common)
        return _commit(store, manifest, decision)
    if data.events.timestamps is None:
        raise DataError(
            f"{data.report.path}: no event time column, so no recent days to judge the "
            "challenger on; name one with --time-col when creating the store"
        )
    last = float(data.events.timestamps.max())
    start_at = max(last - thresholds.holdout_days * DAY, champion["data"]["last"] or -np.inf)
    history, holdout = split_at(data.events, start_at)
    warm = not retune and can_warm_start(backend)
    fit_params = dict(params)
    if warm and "iterations" in fit_params:
        fit_params["iterations"] = warm_iterations or default_warm_iterations(params["iterations"])
    start = warm_start_factors(champion_model, history, seed) if warm else None
    challenger, seconds = _fit(data, history, backend, fit_params, weighting, seed, start, recency)
    verdict = judge(champion_model, challenger, history, holdout, thresholds, seed)
    fit_info = {
        "warm_start": start is not None,
        "params": fit_params,
        "challenger_seconds": round(seconds, 3),
        "holdout_start": _iso(start_at),
    }
    common |= {"judgement": verdict.figures, "fit": fit_info}
    if not verdict.promote and verdict.figures.get("ndcg") is None:
        decision = _decision("refused", verdict.reason, data, champion["id"], **common)
        return _commit(store, manifest, decision)
    version = next_version_id(store, manifest)
    if verdict.promote:
        final_start = challenger.arrays if start is not None else None
        model, seconds = _fit(
            data,
            interactions_from_events(data.events),
            backend,
            fit_params,
            weighting,
            seed,
            final_start,
            recency,
        )
        fit_info["final_seconds"] = round(seconds, 3)
        fitted_on = "all the data"
    else:
        model, fitted_on = challenger, f"the data before {_iso(start_at)} (the holdout's start)"
    entry = version_entry(
        version, model, recipe=champion["recipe"], data=data_summary(data.events, data.report)
    )
    entry["params"], entry["fit_params"] = dict(params), dict(model.params)
    entry["fitted_on"] = fitted_on
    entry["metrics"] = verdict.figures
    write_version(store, version, model)
    manifest["versions"].append(entry)
    manifest["aliases"][CHALLENGER] = version
    if verdict.promote:
        promote_version(manifest, version, verdict.reason)
    else:
        entry["history"].append({"at": now_iso(), "action": "rejected", "reason": verdict.reason})
    outcome = "promoted" if verdict.promote else "rejected"
    decision = _decision(outcome, verdict.reason, data, champion["id"], **common, version=version)
    return _commit(store, manifest, decision)


def _commit(store: Path, manifest: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    record_decision(manifest, decision)
    write_manifest(store, manifest)
    return decision


def _first_version(
    store: Path,
    manifest: dict[str, Any],
    data: NewData,
    recipe: Mapping[str, Any],
    backend: str | None,
    params: Mapping[str, Any] | None,
    weighting: str | None,
    recency: float,
    seed: int | None,
) -> dict[str, Any]:
    if backend is None:
        raise StoreError(
            f"{store}: the store has no champion yet; the first retrain names the backend "
            "(--model als, say) and how to read the data"
        )
    model, seconds = _fit(
        data,
        interactions_from_events(data.events),
        backend,
        params or {},
        weighting or "binary",
        seed,
        None,
        recency,
    )
    version = next_version_id(store, manifest)
    entry = version_entry(
        version, model, recipe=recipe, data=data_summary(data.events, data.report)
    )
    entry["fitted_on"] = "all the data"
    write_version(store, version, model)
    manifest["versions"].append(entry)
    manifest["aliases"][CHALLENGER] = version
    reason = "the store's first version: nothing to compare it with"
    promote_version(manifest, version, reason)
    decision = _decision(
        "promoted",
        reason,
        data,
        None,
        fit={"warm_start": False, "params": dict(model.params), "final_seconds": round(seconds, 3)},
        version=version,
    )
    return _commit(store, manifest, decision)
