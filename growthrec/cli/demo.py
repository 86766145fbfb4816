"""``growthrec demo``: the whole story on built-in synthetic data, in a few seconds."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.columns import Columns

from growthrec.cli.evaluate import evaluation_payload, evaluation_table
from growthrec.cli.generate import catalog_path_for, customers_path_for, write_shop
from growthrec.cli.options import add_json_option
from growthrec.cli.output import Output, data_text, human_bytes
from growthrec.cli.payloads import data_payload, model_payload
from growthrec.cli.recommend import ranked_items
from growthrec.cli.train import model_path_for
from growthrec.core.features import parse_feature_list
from growthrec.core.interactions import column_counts, interactions_from_events
from growthrec.core.model import Model
from growthrec.data.catalog import read_catalog
from growthrec.data.features import FeatureSources, load_features
from growthrec.data.files import write_table
from growthrec.data.loading import load_events
from growthrec.data.presets import catalog_for
from growthrec.data.synthetic import generate_shop
from growthrec.evaluation.protocols import Protocol, make_split
from growthrec.evaluation.runs import evaluate_backend
from growthrec.pipeline.catalog import added_items
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_new_customers, user_indices
from growthrec.store.atomic import refuse_unnamed_files
from growthrec.store.modelfile import load_model, save_model

__all__ = ["add_parser"]

KS = (5, 10)
#: The features the demo's model learns from: the catalogue's and the customer file's.
ITEM_FEATURES = "brand,line,category,price:numeric"
USER_FEATURES = "segment,region"
#: Lists the demo shows, and the top-N a new product must reach.
TOP_N = 5
#: Customers the new product reaches that the demo lists by name.
SHOWN_CUSTOMERS = 5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate, train, evaluate and recommend on built-in synthetic data",
        description="Run the whole workflow on a synthetic shop (1,000 customers, 100 products): "
        "generate transactions, evaluate svd against the popularity baseline with leave-one-out, "
        "train svd on everything with product and customer features, recommend for a sample "
        "customer beside what they bought, add a new product from its features alone "
        "(add-items) and show the customers it reaches, and recommend for a new customer "
        "from their segment and region alone.",
    )
    p.add_argument("--user-id", "--user_id", dest="user_id", default="42", help="sample customer")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the data and model files here (default: a temporary folder, removed after)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the data and model files already in --workdir (refused by default)",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Output) -> None:
    if args.workdir is not None:
        transactions = args.workdir / "data" / "transactions.csv"
        files = (
            transactions,
            catalog_path_for(transactions),
            customers_path_for(transactions),
            new_items_path(transactions),
            args.workdir / "models" / "svd.npz",
        )
        refuse_unnamed_files(dict.fromkeys(files, ""), force=args.force)
        _story(args, out, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="growthrec-demo-") as workdir:
        _story(args, out, Path(workdir))


def new_items_path(transactions: Path) -> Path:
    """Where the demo writes the new product's catalogue: ``new_items.csv`` beside the data."""
    return transactions.with_name("new_items.csv")


def _story(args: argparse.Namespace, out: Output, workdir: Path) -> None:
    transactions = workdir / "data" / "transactions.csv"
    catalog, customers = catalog_path_for(transactions), customers_path_for(transactions)
    start = time.perf_counter()
    with out.steps(7) as steps:
        steps.step("generating a synthetic shop")
        shop = generate_shop(seed=args.seed)
        write_shop(shop, transactions, catalog, customers)
        events, report = load_events(transactions)
        sources = FeatureSources(
            item_kinds=parse_feature_list(ITEM_FEATURES),
            catalog=catalog,
            user_kinds=parse_feature_list(USER_FEATURES, "--user-features"),
            customers=customers,
        )
        events, item_features, user_features = load_features(sources, events)
        data = interactions_from_events(events)
        attributes, _ = catalog_for(None, transactions, events.items)
        steps.step("splitting: leave-one-out, each customer's latest purchase")
        split = make_split(events, Protocol(), args.seed)
        evaluations = []
        for backend, params in (("svd", {"factors": 50}), ("popularity", {})):
            steps.step(f"evaluating {backend}")
            evaluations.append(evaluate_backend(split, backend, params, ks=KS, seed=args.seed))
        steps.step("training svd on all the data, with product and customer features")
        trained = fit_model(
            data,
            "svd",
            {"factors": 50},
            seed=args.seed,
            item_attributes=attributes,
            item_features=item_features,
            user_features=user_features,
        )
        model_path = save_model(trained, model_path_for(workdir / "models", "svd"))
        model = load_model(model_path)
        user = user_indices(model, [args.user_id])
        items, scores = recommend(model, user, TOP_N)
        steps.step("adding a new product from its features alone (add-items)")
        new_catalog = _write_new_product(model, new_items_path(transactions))
        model = added_items(model, read_catalog(new_catalog), where=str(new_catalog)).model
        save_model(model, model_path)
        steps.step("finding the customers the new product reaches")
        new_product = _new_product_reach(model, customers)
        new_customer = _new_customer(model, new_product)
    bought = model.train.matrix[user[0]]
    purchases = [
        {
            "item": str(model.train.items.ids[i]),
            "quantity": int(n),
            "attributes": {k: str(v[i]) for k, v in model.item_attributes.items()},
        }
        for i, n in sorted(zip(bought.indices, bought.data, strict=True), key=lambda p: -p[1])
    ]
    recommendations = ranked_items(model, items[0], scores[0])
    payload: dict[str, Any] = {
        "data": data_payload(report, data),
        "evaluation": evaluation_payload(split, evaluations, KS),
        "model": model_payload(model, model_path),
        "sample_user": {
            "user": args.user_id,
            "purchased": purchases,
            "recommended": recommendations,
        },
        "new_product": new_product,
        "new_customer": new_customer,
        "seconds": round(time.perf_counter() - start, 3),
    }
    out.emit_json(payload)
    svd, pop = evaluations
    out.print(
        f"[bold]Synthetic shop[/bold]: {data.n_users:,} customers, {data.n_items:,} products, "
        f"{shop.user_id.size:,} purchases ({data.nnz:,} distinct customer-product pairs)"
    )
    out.print(
        f"[bold]{data_text(split.protocol)}[/bold]: {split.n_test_users:,} customers' latest "
        "purchase "
        "held out; every product they have not bought is ranked"
    )
    out.print(evaluation_table(out, evaluations, KS))
    out.print(
        f"svd finds the held-out purchase in its top 5 for [bold]{svd.metrics[5]['hit_rate']:.1%}"
        f"[/bold] of customers; best sellers do for {pop.metrics[5]['hit_rate']:.1%}."
    )
    extra = [k for k in model.item_attributes if k != "price"]
    out.print(
        Columns(
            [
                out.table(
                    ["item", "quantity", *extra],
                    [
                        (p["item"], p["quantity"], *(p["attributes"][k] for k in extra))
                        for p in purchases
                    ],
                    title=f"Customer {args.user_id} bought",
                    numeric=["quantity"],
                ),
                out.table(
                    ["rank", "item", "score", *extra],
                    [
                        (r["rank"], r["item"], r["score"], *(r["attributes"][k] for k in extra))
                        for r in recommendations
                    ],
                    title="svd recommends",
                    numeric=["rank", "score"],
                ),
            ]
        )
    )
    _print_new_product(out, new_product, extra)
    _print_new_customer(out, new_customer, extra)
    out.print(
        f"Model file: {human_bytes(payload['model']['bytes'])}; whole demo "
        f"{payload['seconds']:.1f} s. Next: 'growthrec generate', 'growthrec train', "
        "'growthrec add-items', 'growthrec recommend' (see README)."
    )


def _write_new_product(model: Model, path: Path) -> Path:
    """A new SKU in the product line most customers bought from: its brand, line, category,
    and the line's median price. Returns the catalogue file written (``new_items.csv``)."""
    attributes = model.item_attributes
    buyers = column_counts(model.train.matrix)
    lines, codes = np.unique(attributes["line"], return_inverse=True)
    line = int(np.argmax(np.bincount(codes, weights=buyers)))
    members = np.flatnonzero(codes == line)
    first = members[0]
    prices = attributes["price"][members].astype(np.float64)
    ids = model.train.items.ids
    new_id = f"SKU{len(ids) + 1:05d}" if str(ids[0]).startswith("SKU") else "NEW-PRODUCT"
    write_table(
        {
            "item_id": np.array([new_id]),
            "category": np.array([attributes["category"][first]]),
            "price": np.array([round(float(np.median(prices)), 2)]),
            "brand": np.array([attributes["brand"][first]]),
            "line": np.array([lines[line]]),
        },
        path,
    )
    return path


def _new_product_reach(model: Model, customers: Path) -> dict[str, Any]:
    """Who has the newest product in their top-N, and what they bought that shares its
    features (its line, its brand), against every customer."""
    new = model.train.n_items - 1
    attributes = model.item_attributes
    items, scores = recommend(model, np.arange(model.train.n_users), TOP_N)
    rank_of = np.where(items == new, np.arange(1, TOP_N + 1)[None, :], 0).max(axis=1)
    reached = np.flatnonzero(rank_of > 0)
    matrix = model.train.matrix.tocsc()
    line = np.flatnonzero(attributes["line"][:new] == attributes["line"][new])
    brand = np.flatnonzero(attributes["brand"][:new] == attributes["brand"][new])
    bought_line = np.asarray(matrix[:, line].sum(axis=1)).ravel() > 0
    bought_brand = np.asarray(matrix[:, brand].sum(axis=1)).ravel() > 0
    segment_of = _segments(model, customers)
    order = reached[np.lexsort((-scores[reached, rank_of[reached] - 1], rank_of[reached]))]
    user_ids = model.train.users.ids
    ids = model.train.items.ids
    shown = []
    for u in order[:SHOWN_CUSTOMERS]:
        row = model.train.matrix[u]
        shared = [str(ids[i]) for i in row.indices if i in set(line.tolist())]
        shown.append(
            {
                "user": str(user_ids[u]),
                "segment": str(segment_of[u]),
                "rank": int(rank_of[u]),
                "bought_from_line": shared,
            }
        )
    n_users = model.train.n_users
    return {
        "item": str(ids[new]),
        "attributes": {k: str(v[new]) for k, v in attributes.items()},
        "top_n": TOP_N,
        "n_reached": int(reached.size),
        "n_reached_bought_line": int(bought_line[reached].sum()),
        "n_reached_bought_brand": int(bought_brand[reached].sum()),
        "n_bought_line": int(bought_line.sum()),
        "n_bought_brand": int(bought_brand.sum()),
        "n_users": n_users,
        "top_segment": _most_common(segment_of[reached]) if reached.size else "",
        "customers": shown,
    }


def _segments(model: Model, customers: Path) -> np.ndarray:
    """Each training customer's segment, from the customer file."""
    table = read_catalog(customers, "user_id")
    ids = np.asarray(table["user_id"].to_pylist(), dtype=str)
    segment = dict(zip(ids.tolist(), table["segment"].to_pylist(), strict=True))
    return np.array([segment.get(str(u), "") for u in model.train.users.ids.tolist()])


def _most_common(values: np.ndarray) -> str:
    names, counts = np.unique(values, return_counts=True)
    return str(names[int(np.argmax(counts))])


def _new_customer(model: Model, new_product: dict[str, Any]) -> dict[str, Any]:
    """A customer who has bought nothing, from the segment the new product reaches most."""
    features = {"segment": new_product["top_segment"]}
    columns = {c: [features.get(c, "")] for c in ("segment", "region")}
    items, scores = recommend_new_customers(model, [[]], columns, model.train.n_items)
    new = model.train.n_items - 1
    return {
        "customer_features": features,
        "recommended": ranked_items(model, items[0, :TOP_N], scores[0, :TOP_N]),
        "new_product_rank": int(np.flatnonzero(items[0] == new)[0]) + 1,
        "n_items": model.train.n_items,
    }


def _print_new_product(out: Output, reach: dict[str, Any], extra: list[str]) -> None:
    attributes = reach["attributes"]
    n_users, reached = reach["n_users"], max(reach["n_reached"], 1)
    out.print(
        f"[bold]New product[/bold] {data_text(reach['item'])} "
        f"({', '.join(data_text(f'{k} {attributes[k]}') for k in extra)}), added from its "
        f"features alone, no retraining: in the top {reach['top_n']} of "
        f"[bold]{reach['n_reached']:,}[/bold] customers. "
        f"{reach['n_reached_bought_line'] / reached:.0%} of them bought from its line "
        f"(of all customers: {reach['n_bought_line'] / n_users:.0%}), "
        f"{reach['n_reached_bought_brand'] / reached:.0%} its brand "
        f"(of all: {reach['n_bought_brand'] / n_users:.0%}); it reaches "
        f"{reach['n_reached_bought_line']:,} of the {reach['n_bought_line']:,} who bought its line."
    )
    out.print(
        out.table(
            ["customer", "segment", "rank", "bought from its line"],
            [
                (c["user"], c["segment"], c["rank"], ", ".join(c["bought_from_line"]) or "-")
                for c in reach["customers"]
            ],
            title=f"Some customers {data_text(reach['item'])} now reaches",
            numeric=["rank"],
        )
    )


def _print_new_customer(out: Output, customer: dict[str, Any], extra: list[str]) -> None:
    given = ", ".join(f"{k}={v}" for k, v in customer["customer_features"].items())
    out.print(
        out.table(
            ["rank", "item", "score", *extra],
            [
                (r["rank"], r["item"], r["score"], *(r["attributes"][k] for k in extra))
                for r in customer["recommended"]
            ],
            title=f"New customer, {given}: features alone",
            numeric=["rank", "score"],
        )
    )
    out.print(
        f"A customer who has bought nothing yet, scored from their segment alone (the one "
        f"the new product reaches most); the new product ranks "
        f"{customer['new_product_rank']} of {customer['n_items']} for them."
    )
