"""``growthrec recommend``: top-N items for customers: known ones, or new ones from a basket,
their customer features, or both."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from growthrec.cli.notes import named, warn
from growthrec.cli.options import (
    ListOptions,
    add_json_option,
    add_list_options,
    list_spec_from,
    positive_int,
    read_item_ids,
    short_lists_note,
)
from growthrec.cli.output import Output
from growthrec.cli.payloads import (
    FALLBACK_POPULAR,
    fallback_rows,
    model_payload,
    recommendation_rows,
)
from growthrec.core.model import Model
from growthrec.errors import ParameterError, UnknownIdError
from growthrec.pipeline.lists import (
    known_items,
    popular_items,
    recommend,
    recommend_baskets,
    recommend_new_customers,
)
from growthrec.store.modelfile import load_model

__all__ = ["add_parser", "ranked_items", "read_item_ids"]


def _basket_ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no item; give comma-separated item ids, e.g. --items A,B,C"
        )
    return ids


def _customer_feature(text: str) -> tuple[str, str]:
    """argparse type: ``COLUMN=VALUE`` of ``--customer-feature``."""
    column, sep, value = text.partition("=")
    if not sep or not column.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not COLUMN=VALUE; e.g. --customer-feature segment=families"
        )
    return column.strip(), value.strip()


def _customer_features(args: argparse.Namespace) -> dict[str, str] | None:
    """The new customer's ``--customer-feature`` values by column (None if none given)."""
    if not args.customer_features:
        return None
    out: dict[str, str] = {}
    for column, value in args.customer_features:
        if column in out:
            raise ParameterError(f"--customer-feature: column {column!r} is given twice")
        out[column] = value
    return out


def _basket(args: argparse.Namespace) -> list[str] | None:
    """The new customer's basket from --items, --item and --items-file (None if none given)."""
    if args.items is None and not args.item_ids and args.items_file is None:
        return None
    basket = [*(args.items or []), *args.item_ids]
    if args.items_file is not None:
        basket += read_item_ids(args.items_file)
    return basket


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recommend",
        help="top-N items for customers",
        description="Recommend items for customers in the training data (--user-id) or for a "
        "new customer from the items in their basket (--items), their customer features "
        "(--customer-feature, for a model trained with --user-features), or both.",
    )
    p.add_argument("--model", type=Path, required=True, help="model file written by 'train'")
    p.add_argument(
        "--user-id",
        "--user_id",
        dest="user_ids",
        nargs="+",
        action="extend",
        default=[],
        metavar="USER",
        help="one or more customer ids",
    )
    p.add_argument(
        "--items",
        type=_basket_ids,
        default=None,
        metavar="A,B,C",
        help="a new customer's basket: comma-separated item ids (scored without retraining)",
    )
    p.add_argument(
        "--item",
        dest="item_ids",
        action="append",
        default=[],
        metavar="ID",
        help="one basket item, exactly as written (for ids containing commas); repeatable",
    )
    p.add_argument(
        "--items-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="basket items from a text file, one id per line, exactly as written",
    )
    p.add_argument(
        "--customer-feature",
        dest="customer_features",
        type=_customer_feature,
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="a new customer's feature, e.g. segment=families (a model trained with "
        "--user-features); repeatable, one per column; columns not given count as unknown. "
        "With --items, the basket and the features combine",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse a basket with an item the model does not know (default: ignore it, warn)",
    )
    p.add_argument("--n", type=positive_int, default=10, help="items per customer (default: 10)")
    p.add_argument(
        "--fallback",
        choices=("none", "popular"),
        default="none",
        help="for a customer the model does not know, or a basket of only unknown items: "
        "'popular' gives the best sellers",
    )
    add_list_options(p, purchases=True)
    add_json_option(p)
    p.set_defaults(run=run)


def ranked_items(model: Model, items: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    """One recommendation list as rows of rank, item id (text), score and catalogue columns."""
    return recommendation_rows(model, items, scores)


def run(args: argparse.Namespace, out: Output) -> None:
    basket = _basket(args)
    features = _customer_features(args)
    if not args.user_ids and basket is None and features is None:
        raise UnknownIdError(
            "nothing to recommend for: give --user-id USER, --items A,B,C or "
            "--customer-feature COLUMN=VALUE"
        )
    model = load_model(args.model)
    options = list_spec_from(args, args.n, model.train.items, model.item_attributes)
    spec = options.spec
    results: list[dict[str, Any]] = []
    if args.user_ids:
        index = model.train.users.index(args.user_ids)
        unknown = [u for u, i in zip(args.user_ids, index, strict=True) if i < 0]
        if unknown and args.fallback == "none":
            raise UnknownIdError(
                f"user {unknown[0]} is not in the model's training data; use --fallback popular "
                "for best sellers, or --items A,B,C to score the customer's basket"
            )
        known = index[index >= 0]
        items, scores = recommend(model, known, spec=spec)
        ranked = iter(zip(items, scores, strict=True))
        if unknown:
            pop_items, pop_scores = popular_items(model, spec=spec)
        for user, i in zip(args.user_ids, index, strict=True):
            if i >= 0:
                row_items, row_scores = next(ranked)
                results.append(
                    {
                        "user": user,
                        "source": "model",
                        "items": ranked_items(model, row_items, row_scores),
                    }
                )
            else:
                results.append(
                    {
                        "user": user,
                        "source": FALLBACK_POPULAR,
                        "items": fallback_rows(model, pop_items[0], pop_scores[0]),
                    }
                )
    if features is not None:
        results.append(_features_result(model, features, basket or [], args, options))
    elif basket is not None:
        results.append(_basket_result(model, basket, args, options))
    n_short = sum(len(result["items"]) < args.n for result in results)
    out.emit_json(
        {
            "model": model_payload(model, args.model),
            "list_spec": options.payload(),
            "n_short_lists": n_short,
            "results": results,
        }
    )
    for result in results:
        out.print(_result_table(out, result))
    note = short_lists_note(n_short, len(results), args.n)
    if note:
        out.print(note)


def _basket_result(
    model: Model, basket: list[str], args: argparse.Namespace, options: ListOptions
) -> dict[str, Any]:
    """The basket's list: its known items folded in, unknown ones ignored (or refused)."""
    known, unknown = known_items(model, basket)
    if unknown and args.strict:
        raise UnknownIdError(
            f"basket: {named(unknown)} not in the model's catalogue (--strict refuses them)"
        )
    if not known and args.fallback == "none":
        raise UnknownIdError(
            f"basket: none of its items is in the model's catalogue ({named(unknown)}); "
            "use --fallback popular for best sellers"
        )
    if unknown:
        warn(f"basket items not in the model's catalogue, ignored: {named(unknown)}")
    result: dict[str, Any] = {"basket": basket, "ignored_items": unknown}
    if not known:
        items, scores = popular_items(model, spec=options.spec)
        rows = fallback_rows(model, items[0], scores[0])
        return {**result, "source": FALLBACK_POPULAR, "items": rows}
    items, scores = recommend_baskets(model, [known], spec=options.spec)
    return {**result, "source": "fold-in", "items": ranked_items(model, items[0], scores[0])}


def _features_result(
    model: Model,
    features: dict[str, str],
    basket: list[str],
    args: argparse.Namespace,
    options: ListOptions,
) -> dict[str, Any]:
    """A new customer's list from their features, and their basket if they have one."""
    if model.user_features is None:
        raise ParameterError(
            f"--customer-feature: {args.model} was trained without customer features; train "
            "it with --customers FILE --user-features COLUMNS (e.g. segment,region)"
        )
    columns = [spec.column for spec in model.user_features.specs]
    unknown_columns = [c for c in features if c not in columns]
    if unknown_columns:
        raise ParameterError(
            f"--customer-feature {unknown_columns[0]}=...: the model knows no customer feature "
            f"{unknown_columns[0]!r}; its customer features are {', '.join(columns)}"
        )
    known, unknown = known_items(model, basket)
    if unknown and args.strict:
        raise UnknownIdError(
            f"basket: {named(unknown)} not in the model's catalogue (--strict refuses them)"
        )
    values = {c: np.array([features.get(c, "")], dtype=object) for c in columns}
    blank = {c: np.array([""], dtype=object) for c in columns}
    unlearned = [
        f"{c}={v}"
        for c, v in features.items()
        if v and model.user_features.encode({**blank, c: values[c]}, 1).nnz == 0
    ]
    result: dict[str, Any] = {"customer_features": features}
    if basket:
        result.update(basket=basket, ignored_items=unknown)
    if model.user_features.encode(values, 1).nnz == 0 and not known:
        if args.fallback == "none":
            given = ", ".join(f"{c}={v}" for c, v in features.items())
            items_given = f" ({named(unknown)})" if unknown else ""
            raise UnknownIdError(
                f"new customer: no feature value the model knows ({given}) and no basket item "
                f"it knows{items_given}; give a value it learned, or use --fallback popular for "
                "best sellers"
            )
        items, scores = popular_items(model, spec=options.spec)
        rows = fallback_rows(model, items[0], scores[0])
        return {**result, "source": FALLBACK_POPULAR, "items": rows}
    # Warnings only now: when nothing is known, the error (or the fallback's title) says it all.
    if unknown:
        warn(f"basket items not in the model's catalogue, ignored: {named(unknown)}")
    if unlearned:
        warn(f"customer feature values the model did not learn, ignored: {named(unlearned)}")
    items, scores = recommend_new_customers(
        model,
        [known],
        {c: v.tolist() for c, v in values.items()},
        spec=options.spec,
    )
    source = "features+basket" if known else "features"
    return {**result, "source": source, "items": ranked_items(model, items[0], scores[0])}


def _title(result: dict[str, Any]) -> str:
    if "customer_features" in result:
        given = ", ".join(f"{c}={v}" for c, v in result["customer_features"].items())
        if result["source"] == FALLBACK_POPULAR:
            return f"New customer ({given}): nothing the model knows, so the best sellers"
        if result["source"] == "features+basket":
            return f"New customer ({given}) with basket {', '.join(result['basket'])}"
        return f"New customer ({given}), from their features alone"
    if result["source"] == FALLBACK_POPULAR and "basket" in result:
        return "New customer: no basket item is in the training data, so the best sellers"
    if result["source"] == FALLBACK_POPULAR:
        return f"User {result['user']}: not in the training data, so the best sellers"
    if result["source"] == "fold-in":
        return f"New customer with basket {', '.join(result['basket'])}"
    return f"Recommendations for user {result['user']}"


def _result_table(out: Output, result: dict[str, Any]) -> Table:
    rows = result["items"]
    extra = list(rows[0]["attributes"]) if rows else []
    popular = result["source"] == FALLBACK_POPULAR
    score_name = "buyers" if popular else "score"
    return out.table(
        ["rank", "item", score_name, *extra],
        [
            (
                r["rank"],
                r["item"],
                r["buyers"] if popular else r["score"],
                *(r["attributes"][k] for k in extra),
            )
            for r in rows
        ],
        title=_title(result),
        numeric=["rank", score_name],
    )
