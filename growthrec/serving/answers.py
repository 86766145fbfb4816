"""What each endpoint answers, computed from one ``ServedModel`` (no web framework here).

Every function takes the served model the request read once, so a whole answer comes from
one model even while a swap happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from growthrec.core.model import Model
from growthrec.core.reranking import RerankSpec
from growthrec.errors import DataError, GrowthrecError, ParameterError, UnknownIdError
from growthrec.pipeline.lists import (
    customer_rows,
    known_items,
    recommend,
    recommend_new_customers,
    similar_items,
)
from growthrec.pipeline.prepared import prepare
from growthrec.pipeline.rules import Filter, ListSpec, cap_groups, filter_mask, parse_filter
from growthrec.pipeline.scores import basket_scores
from growthrec.serving.holder import ServedModel

__all__ = [
    "FALLBACK_POPULAR",
    "FieldError",
    "best_sellers",
    "customer_list",
    "describe",
    "list_spec",
    "new_customer_list",
    "search",
    "similar_list",
]

#: The ``source`` of best sellers given for a customer the model cannot score (as the CLI's).
FALLBACK_POPULAR = "fallback:popular"
#: History items looked at to explain a list: the most recent ones.
EXPLAIN_HISTORY = 50
#: Contributions shown per recommended item.
EXPLAIN_TOP = 3


class FieldError(UnknownIdError):
    """A request field's value the model cannot use: a 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _rows(model: Model, items: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    """Ranked rows of item indices and scores; -1 padding left out."""
    keep = items >= 0
    index = items[keep]
    ids = model.train.items.ids[index].tolist()
    attributes = model.item_attributes
    return [
        {
            "rank": rank,
            "item": str(item_id),
            "score": round(float(score), 6),
            "attributes": {k: str(v[i]) for k, v in attributes.items()},
        }
        for rank, (i, item_id, score) in enumerate(
            zip(index.tolist(), ids, scores[keep].tolist(), strict=True), start=1
        )
    ]


def _history_rows(model: Model, items: np.ndarray) -> list[dict[str, Any]]:
    ids = model.train.items.ids[items].tolist()
    attributes = model.item_attributes
    return [
        {"item": str(item_id), "attributes": {k: str(v[i]) for k, v in attributes.items()}}
        for i, item_id in zip(items.tolist(), ids, strict=True)
    ]


def _split_known(model: Model, ids: Sequence[str] | None) -> tuple[list[str] | None, list[str]]:
    if ids is None:
        return None, []
    known, unknown = known_items(model, list(ids))
    return [str(i) for i in known], [str(i) for i in unknown]


#: The pipeline's message for filters that leave no item: answered as an empty list.
_NOTHING_LEFT = "no item of the catalogue is left"


def _filter(rule: object, field: str) -> Filter:
    """A request's filter (text or ``FilterRule``) as the pipeline's ``Filter``."""
    try:
        if isinstance(rule, str):
            return parse_filter(rule)
        value = rule.value  # type: ignore[attr-defined]
        values = value if isinstance(value, list) else [value]
        return Filter(rule.column, rule.op, tuple(_value_text(v) for v in values))  # type: ignore[attr-defined]
    except ParameterError as exc:
        raise FieldError(field, str(exc).removeprefix("--filter ")) from None


def _value_text(value: object) -> str:
    """A filter value as catalogue text: 50.0 is ``50``, as a catalogue writes it."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def list_spec(model: Model, request: Any, allow: list[str] | None, deny: list[str]) -> ListSpec:
    """The pipeline's ``ListSpec`` for a request, every model-dependent problem a
    ``FieldError`` naming the field (a column the catalogue lacks, a re-ranker whose item
    table this model has not)."""
    attributes = model.item_attributes
    columns = ", ".join(attributes) or "none: the model was trained without a catalogue"
    filters = tuple(_filter(rule, f"filters[{i}]") for i, rule in enumerate(request.filters))
    for i, rule in enumerate(filters):
        if rule.column not in attributes:
            raise FieldError(
                f"filters[{i}]",
                f"filter {rule}: the catalogue has no column {rule.column!r} (columns: {columns})",
            )
    for column in request.caps:
        if column not in attributes:
            raise FieldError(
                f"caps.{column}", f"the catalogue has no column {column!r} (columns: {columns})"
            )
    rerank = RerankSpec()
    if request.rerank is not None:
        given = request.rerank
        try:
            rerank = RerankSpec(
                given.kind,
                given.strength,
                given.popularity_penalty,
                given.similarity,
                given.window,
                given.aggregate,
                given.coverage,
            )
        except ParameterError as exc:
            raise FieldError("rerank", str(exc).removeprefix("rerank: ")) from None
        _check_rerank(model, rerank, request.category, columns)
    try:
        return ListSpec(
            n=request.n,
            exclude_seen=request.exclude_purchased,
            allow=None if allow is None else tuple(allow),
            deny=tuple(deny),
            filters=filters,
            caps=tuple(request.caps.items()),
            rerank=rerank,
            candidates=request.candidates,
            category=request.category,
        )
    except ParameterError as exc:  # the schema's bounds make this unlikely; name the body
        raise FieldError("body", str(exc)) from None


def _check_rerank(model: Model, rerank: RerankSpec, category: str, columns: str) -> None:
    """The item table the re-ranker reads exists for this model."""
    reads_categories = rerank.needs_categories or (
        rerank.needs_similarity and rerank.similarity == "categories"
    )
    if reads_categories and category not in model.item_attributes:
        raise FieldError(
            "rerank",
            f"{rerank.kind} needs item categories, but the catalogue has no column "
            f"{category!r} (columns: {columns}); set `category` to one, or use "
            '"similarity": "purchases"',
        )
    similarity = rerank.similarity if rerank.needs_similarity else None
    if similarity == "features" and not model.item_features:
        raise FieldError(
            "rerank.similarity", "features: this model was trained without item features"
        )
    if similarity == "factors" and prepare(model).items_by_norm is None:
        raise FieldError(
            "rerank.similarity",
            f"factors: the {model.backend} model has no item factors (use purchases, "
            "categories or features)",
        )


def _field_of(spec: ListSpec, message: str) -> str:
    """Which request field a pipeline refusal is about, from its message's start."""
    for i, rule in enumerate(spec.filters):
        if message.startswith(f"filter {rule}:"):
            return f"filters[{i}]"
    for column, _ in spec.caps:
        if message.startswith(f"cap on {column!r}"):
            return f"caps.{column}"
    return "rerank" if message.startswith("rerank:") else "body"


def _ranked(model: Model, spec: ListSpec, rank: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``rank()``'s first list and notes; a filter no item passes is an empty list (a note
    says which), any other refusal a ``FieldError`` naming the field."""
    try:
        index, scores = rank()
    except (ParameterError, DataError) as exc:
        message = str(exc)
        if isinstance(exc, DataError) and _NOTHING_LEFT in message:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0, dtype=np.float32), [message]
        raise FieldError(_field_of(spec, message), message) from None
    return index[0], scores[0], []


def _popular_rows(
    served: ServedModel, spec: ListSpec, exclude: np.ndarray | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The best sellers (``popular_items``' order, precomputed) within the allow and deny
    lists, filters and caps; and notes (re-ranking is not applied to best sellers)."""
    model = served.model
    notes: list[str] = []
    keep = np.ones(model.train.n_items, dtype=bool)
    if spec.allow is not None:
        keep[:] = False
        keep[model.train.items.index(list(spec.allow))] = True
    if spec.deny:
        keep[model.train.items.index(list(spec.deny))] = False
    if exclude is not None:
        keep[exclude] = False
    if spec.filters:
        prepared = prepare(model)
        try:
            passing = prepared.derive(  # the pipeline's own cache entry for these filters
                ("filters", spec.filters),
                lambda: filter_mask(model.item_attributes, spec.filters),
            )
        except (ParameterError, DataError) as exc:
            if not (isinstance(exc, DataError) and _NOTHING_LEFT in str(exc)):
                raise FieldError(_field_of(spec, str(exc)), str(exc)) from None
            passing = np.zeros_like(keep)
            notes.append(str(exc))
        keep &= np.asarray(passing)
    candidates = served.popular_order[keep[served.popular_order]]
    order = _capped(model, candidates, spec) if spec.caps else candidates[: spec.n]
    buyers = served.buyers[order]
    rows = _rows(model, order, buyers / max(model.train.n_users, 1))
    for row, count in zip(rows, buyers.tolist(), strict=True):
        row["buyers"] = int(count)
    rerank = spec.rerank
    if rerank.kind != "none" or rerank.popularity_penalty > 0 or rerank.coverage > 0:
        notes.append("re-ranking is not applied to best sellers (no customer to re-rank for)")
    return rows, notes


def _capped(model: Model, candidates: np.ndarray, spec: ListSpec) -> np.ndarray:
    """The first ``spec.n`` of ``candidates`` (best first) that keep within every cap."""
    prepared = prepare(model)
    groups = [
        (
            prepared.derive(("cap", c), lambda c=c: cap_groups(model.item_attributes, c)),
            limit,
        )
        for c, limit in spec.caps
    ]
    counts: list[dict[int, int]] = [{} for _ in groups]
    chosen: list[int] = []
    for item in candidates.tolist():
        codes = [int(np.asarray(table)[item]) for table, _ in groups]
        if any(
            code >= 0 and counts[g].get(code, 0) >= groups[g][1] for g, code in enumerate(codes)
        ):
            continue
        for g, code in enumerate(codes):
            counts[g][code] = counts[g].get(code, 0) + 1
        chosen.append(item)
        if len(chosen) == spec.n:
            break
    return np.asarray(chosen, dtype=np.int64)


def _finish(answer: dict[str, Any], n: int) -> dict[str, Any]:
    """``n_items`` and ``short`` from the list made."""
    answer["n_items"] = len(answer["items"])
    answer["short"] = answer["n_items"] < n
    return answer


def best_sellers(served: ServedModel, n: int) -> dict[str, Any]:
    """The ``n`` items most training customers bought."""
    rows, _ = _popular_rows(served, ListSpec(n=n))
    return {"model_version": served.version, "items": rows}


def request_spec(model: Model, request: Any) -> tuple[ListSpec, list[str]]:
    """A request's ``ListSpec``, and the allow and deny ids it names that the model does not
    know (ignored, and listed in the answer)."""
    allow, unknown_allow = _split_known(model, request.allow)
    deny, unknown_deny = _split_known(model, request.deny)
    return list_spec(model, request, allow, deny or []), unknown_allow + unknown_deny


def customer_list(served: ServedModel, request: Any) -> tuple[dict[str, Any], str | None]:
    """A known customer's list, or the best sellers for an unknown one; and the fallback
    reason (``None`` when the model answered)."""
    model = served.model
    spec, ignored = request_spec(model, request)
    answer: dict[str, Any] = {
        "model_version": served.version,
        "customer": request.customer,
        "ignored_items": ignored,
    }
    user = served.customer_index(request.customer)
    if user < 0:
        reason = f"customer {request.customer} is not in the model's training data"
        items, notes = _popular_rows(served, spec)
        answer.update(source=FALLBACK_POPULAR, fallback_reason=reason, items=items, notes=notes)
        return _finish(answer, request.n), "unknown_customer"
    users = np.array([user], dtype=np.int64)
    index, scores, notes = _ranked(model, spec, lambda: recommend(model, users, spec=spec))
    rows = _rows(model, index, scores)
    answer.update(source="model", items=rows, notes=notes)
    if request.explain:
        history = _history(model, user)
        answer["history"] = _history_rows(model, history)
        _explain(model, rows, history)
    return _finish(answer, request.n), None


def new_customer_list(served: ServedModel, request: Any) -> tuple[dict[str, Any], str | None]:
    """A new customer's list from a basket and/or features; best sellers when neither is
    usable (no basket item in the catalogue, no features)."""
    model = served.model
    basket, unknown_basket = _split_known(model, request.basket)
    assert basket is not None
    spec, ignored = request_spec(model, request)
    answer: dict[str, Any] = {
        "model_version": served.version,
        "ignored_items": unknown_basket + ignored,
    }
    basket_index = model.train.items.index(basket) if basket else np.empty(0, np.int64)
    if not basket and not request.features:
        reason = (
            "no basket item is in the model's catalogue"
            if request.basket
            else "no basket and no features given"
        )
        exclude = basket_index if request.exclude_purchased else None
        items, notes = _popular_rows(served, spec, exclude)
        answer.update(source=FALLBACK_POPULAR, fallback_reason=reason, items=items, notes=notes)
        return _finish(answer, request.n), "empty_basket"
    features = None
    if request.features:
        features = {column: [value] for column, value in request.features.items()}
        try:  # the features alone, so their problems name that field
            _check_features(model, basket, features)
        except GrowthrecError as exc:
            raise FieldError("features", str(exc)) from None
    index, scores, notes = _ranked(
        model, spec, lambda: recommend_new_customers(model, [basket], features, spec=spec)
    )
    rows = _rows(model, index, scores)
    answer.update(source="fold-in", items=rows, notes=notes)
    if request.explain:
        answer["history"] = _history_rows(model, basket_index)
        _explain(model, rows, basket_index)
    return _finish(answer, request.n), None


def _check_features(model: Model, basket: list[str], features: dict[str, list[str]]) -> None:
    """What ``customer_rows`` would refuse about the features, before any ranking."""
    customer_rows(model, [basket], features)


def similar_list(served: ServedModel, item: str, n: int) -> dict[str, Any]:
    """The ``n`` items most like ``item``; an unknown item is a ``FieldError``."""
    model = served.model
    index = int(model.train.items.index([item])[0])
    if index < 0:
        raise FieldError("item", f"item {item} is not in the model's catalogue")
    items, scores = similar_items(model, np.array([index], dtype=np.int64), n)
    return {
        "model_version": served.version,
        "item": item,
        "attributes": {k: str(v[index]) for k, v in model.item_attributes.items()},
        "items": _rows(model, items[0], scores[0]),
    }


def search(served: ServedModel, what: str, query: str, limit: int) -> dict[str, Any]:
    """Item or customer ids containing ``query``, those starting with it first."""
    text = served.id_text(what)
    if query:
        starts = np.flatnonzero(np.char.startswith(text, query))
        contains = np.flatnonzero(np.char.find(text, query) > 0)
        matches = np.concatenate([starts, contains])
    else:
        matches = np.arange(min(text.size, limit))
        if what == "items":  # with no query, the best sellers come first
            matches = served.popular_order[:limit]
    total = int(matches.size) if query else int(text.size)
    return {
        "model_version": served.version,
        "query": query,
        "matches": text[matches[:limit]].tolist(),
        "total": total,
    }


def describe(served: ServedModel) -> dict[str, Any]:
    """The model description of GET /v1/model."""
    model = served.model
    features = model.user_features
    return {
        "model_version": served.version,
        "path": str(served.path),
        "store_version": served.store_version,
        "backend": model.backend,
        "params": dict(model.params),
        "weighting": model.weighting,
        "recency": model.recency,
        "seed": model.seed,
        "n_customers": model.train.n_users,
        "n_items": model.train.n_items,
        "n_purchases": model.train.nnz,
        "item_attributes": list(model.item_attributes),
        "customer_features": [s.column for s in features.specs] if features else [],
        "file_bytes": served.file.size,
        "file_modified_at": served.file.mtime_ns / 1e9,
        "loaded_at": served.loaded_at,
        "load_seconds": round(served.load_seconds, 4),
        "warm_seconds": round(served.warm_seconds, 4),
        **served.meta,
    }


def _history(model: Model, user: int) -> np.ndarray:
    """What ``user`` bought, most recent first when purchase times are known."""
    matrix = model.train.matrix
    start, stop = matrix.indptr[user], matrix.indptr[user + 1]
    items = matrix.indices[start:stop].astype(np.int64)
    if model.train.timestamps is not None:
        items = items[np.argsort(-model.train.timestamps[start:stop], kind="stable")]
    return items


def _explain(model: Model, rows: list[dict[str, Any]], history: np.ndarray) -> None:
    """Add ``because`` to each row: the history items whose one-item basket scores it highest
    (positive scores only: a purchase that scores the item down is no reason for it).

    Honest and backend-independent: each of the (most recent) history items is folded in
    alone, as ``basket_scores`` does for any backend, and the recommended item's score from
    that basket alone is the item's contribution.
    """
    history = history[:EXPLAIN_HISTORY]
    if not rows or history.size == 0:
        for row in rows:
            row["because"] = []
        return
    ids = model.train.items.ids[history]
    alone = basket_scores(model, [[i] for i in ids.tolist()])
    recommended = model.train.items.index([row["item"] for row in rows])
    contributions = alone[:, recommended]  # history x recommended
    for column, row in enumerate(rows):
        scores = contributions[:, column]
        best = np.argsort(-scores, kind="stable")[:EXPLAIN_TOP]
        row["because"] = [
            {"item": str(ids[b]), "score": round(float(scores[b]), 6)}
            for b in best
            if np.isfinite(scores[b]) and scores[b] > 0  # a purchase that pulls it up
        ]
