"""What each endpoint answers, computed from one ``ServedModel`` (no web framework here).

Every function takes the served model the request read once, so a whole answer comes from
one model even while a swap happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from growthrec.core.model import Model
from growthrec.errors import GrowthrecError, UnknownIdError
from growthrec.pipeline.lists import (
    known_items,
    recommend,
    recommend_new_customers,
    similar_items,
)
from growthrec.pipeline.scores import basket_scores
from growthrec.serving.holder import ServedModel

__all__ = [
    "FALLBACK_POPULAR",
    "FieldError",
    "best_sellers",
    "customer_list",
    "describe",
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


def _popular_rows(
    served: ServedModel,
    n: int,
    allow: list[str] | None,
    deny: list[str],
    exclude: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """The best sellers (``popular_items``' order, precomputed) within allow and deny."""
    model = served.model
    keep = np.ones(model.train.n_items, dtype=bool)
    if allow is not None:
        keep[:] = False
        keep[model.train.items.index(allow)] = True
    if deny:
        keep[model.train.items.index(deny)] = False
    if exclude is not None:
        keep[exclude] = False
    order = served.popular_order[keep[served.popular_order]][:n]
    buyers = served.buyers[order]
    rows = _rows(model, order, buyers / max(model.train.n_users, 1))
    for row, count in zip(rows, buyers.tolist(), strict=True):
        row["buyers"] = int(count)
    return rows


def best_sellers(served: ServedModel, n: int) -> dict[str, Any]:
    """The ``n`` items most training customers bought."""
    return {"model_version": served.version, "items": _popular_rows(served, n, None, [])}


def customer_list(served: ServedModel, request: Any) -> tuple[dict[str, Any], str | None]:
    """A known customer's list, or the best sellers for an unknown one; and the fallback
    reason (``None`` when the model answered)."""
    model = served.model
    allow, unknown_allow = _split_known(model, request.allow)
    deny, unknown_deny = _split_known(model, request.deny)
    answer: dict[str, Any] = {
        "model_version": served.version,
        "customer": request.customer,
        "ignored_items": unknown_allow + unknown_deny,
    }
    user = int(model.train.users.index([request.customer])[0])
    if user < 0:
        reason = f"customer {request.customer} is not in the model's training data"
        items = _popular_rows(served, request.n, allow, deny or [])
        return {**answer, "source": FALLBACK_POPULAR, "fallback_reason": reason, "items": items}, (
            "unknown_customer"
        )
    index, scores = recommend(
        model,
        np.array([user], dtype=np.int64),
        request.n,
        exclude_seen=request.exclude_purchased,
        exclude_items=deny or None,
        allow_items=allow,
    )
    rows = _rows(model, index[0], scores[0])
    answer.update(source="model", items=rows)
    if request.explain:
        history = _history(model, user)
        answer["history"] = _history_rows(model, history)
        _explain(model, rows, history)
    return answer, None


def new_customer_list(served: ServedModel, request: Any) -> tuple[dict[str, Any], str | None]:
    """A new customer's list from a basket and/or features; best sellers when neither is
    usable (no basket item in the catalogue, no features)."""
    model = served.model
    allow, unknown_allow = _split_known(model, request.allow)
    deny, unknown_deny = _split_known(model, request.deny)
    basket, unknown_basket = _split_known(model, request.basket)
    assert basket is not None
    answer: dict[str, Any] = {
        "model_version": served.version,
        "ignored_items": unknown_basket + unknown_allow + unknown_deny,
    }
    basket_index = model.train.items.index(basket) if basket else np.empty(0, np.int64)
    if not basket and not request.features:
        reason = (
            "no basket item is in the model's catalogue"
            if request.basket
            else "no basket and no features given"
        )
        exclude = basket_index if request.exclude_purchased else None
        items = _popular_rows(served, request.n, allow, deny or [], exclude)
        return {**answer, "source": FALLBACK_POPULAR, "fallback_reason": reason, "items": items}, (
            "empty_basket"
        )
    features = None
    if request.features:
        features = {column: [value] for column, value in request.features.items()}
    try:
        index, scores = recommend_new_customers(
            model,
            [basket],
            features,
            request.n,
            exclude_seen=request.exclude_purchased,
            exclude_items=deny or None,
            allow_items=allow,
        )
    except GrowthrecError as exc:  # features the model cannot use (or has none)
        raise FieldError("features", str(exc)) from None
    rows = _rows(model, index[0], scores[0])
    answer.update(source="fold-in", items=rows)
    if request.explain:
        answer["history"] = _history_rows(model, basket_index)
        _explain(model, rows, basket_index)
    return answer, None


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
        "backend": model.backend,
        "params": dict(model.params),
        "weighting": model.weighting,
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
