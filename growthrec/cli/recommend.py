"""``growthrec recommend``: top-N items for customers, known ones or new baskets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from growthrec.cli.options import add_json_option, positive_int
from growthrec.cli.output import Output
from growthrec.cli.payloads import (
    FALLBACK_POPULAR,
    fallback_rows,
    model_payload,
    recommendation_rows,
)
from growthrec.core.model import Model
from growthrec.errors import UnknownIdError
from growthrec.modelfile import load_model
from growthrec.recommender import popular_items, recommend, recommend_baskets

__all__ = ["add_parser", "ranked_items"]


def _id_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recommend",
        help="top-N items for customers",
        description="Recommend items for customers in the training data (--user-id) or for a "
        "new customer given the items in their basket (--items), from a model file.",
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
        type=_id_list,
        default=None,
        metavar="A,B,C",
        help="a new customer's basket: comma-separated item ids (scored without retraining)",
    )
    p.add_argument("--n", type=positive_int, default=10, help="items per customer (default: 10)")
    p.add_argument(
        "--fallback",
        choices=("none", "popular"),
        default="none",
        help="for a customer the model does not know: 'popular' gives the best sellers",
    )
    p.add_argument(
        "--exclude", type=_id_list, default=None, metavar="A,B", help="items never to recommend"
    )
    p.add_argument(
        "--include-purchased",
        action="store_true",
        help="allow items the customer already bought (excluded by default)",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def ranked_items(model: Model, items: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    """One recommendation list as rows of rank, item id (text), score and catalogue columns."""
    return recommendation_rows(model, items, scores)


def run(args: argparse.Namespace, out: Output) -> None:
    if not args.user_ids and args.items is None:
        raise UnknownIdError("nothing to recommend for: give --user-id USER or --items A,B,C")
    model = load_model(args.model)
    exclude_seen = not args.include_purchased
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
        items, scores = recommend(
            model, known, args.n, exclude_seen=exclude_seen, exclude_items=args.exclude
        )
        ranked = iter(zip(items, scores, strict=True))
        if unknown:
            pop_items, pop_scores = popular_items(model, args.n, exclude_items=args.exclude)
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
    if args.items is not None:
        items, scores = recommend_baskets(
            model, [args.items], args.n, exclude_seen=exclude_seen, exclude_items=args.exclude
        )
        results.append(
            {
                "basket": args.items,
                "source": "fold-in",
                "items": ranked_items(model, items[0], scores[0]),
            }
        )
    out.emit_json({"model": model_payload(model, args.model), "results": results})
    for result in results:
        out.print(_result_table(out, result))


def _title(result: dict[str, Any]) -> str:
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
