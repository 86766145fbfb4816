"""``growthrec demo``: the whole story on built-in synthetic data, in a few seconds."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.columns import Columns

from growthrec.cli.evaluate import evaluation_payload, evaluation_table
from growthrec.cli.generate import catalog_path_for, write_shop
from growthrec.cli.options import add_json_option
from growthrec.cli.output import Output, data_text, human_bytes
from growthrec.cli.payloads import data_payload, model_payload
from growthrec.cli.recommend import ranked_items
from growthrec.cli.train import model_path_for
from growthrec.core.interactions import interactions_from_events
from growthrec.data.loading import load_events
from growthrec.data.presets import catalog_for
from growthrec.data.synthetic import generate_shop
from growthrec.evaluation.protocols import Protocol, make_split
from growthrec.evaluation.runs import evaluate_backend
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, user_indices
from growthrec.store.atomic import refuse_unnamed_files
from growthrec.store.modelfile import load_model, save_model

__all__ = ["add_parser"]

KS = (5, 10)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate, train, evaluate and recommend on built-in synthetic data",
        description="Run the whole workflow on a synthetic shop (1,000 customers, 100 products): "
        "generate transactions, evaluate svd against the popularity baseline with leave-one-out, "
        "train svd on everything, and recommend for a sample customer beside what they bought.",
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
        files = (transactions, catalog_path_for(transactions), args.workdir / "models" / "svd.npz")
        refuse_unnamed_files(dict.fromkeys(files, ""), force=args.force)
        _story(args, out, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="growthrec-demo-") as workdir:
        _story(args, out, Path(workdir))


def _story(args: argparse.Namespace, out: Output, workdir: Path) -> None:
    transactions = workdir / "data" / "transactions.csv"
    start = time.perf_counter()
    with out.steps(5) as steps:
        steps.step("generating a synthetic shop")
        shop = generate_shop(seed=args.seed)
        write_shop(shop, transactions, catalog_path_for(transactions))
        events, report = load_events(transactions)
        data = interactions_from_events(events)
        attributes, _ = catalog_for(None, transactions, events.items)
        steps.step("splitting: leave-one-out, each customer's latest purchase")
        split = make_split(events, Protocol(), args.seed)
        evaluations = []
        for backend, params in (("svd", {"factors": 50}), ("popularity", {})):
            steps.step(f"evaluating {backend}")
            evaluations.append(evaluate_backend(split, backend, params, ks=KS, seed=args.seed))
        steps.step("training svd on all the data")
        model_path = save_model(
            fit_model(data, "svd", {"factors": 50}, seed=args.seed, item_attributes=attributes),
            model_path_for(workdir / "models", "svd"),
        )
        model = load_model(model_path)
        user = user_indices(model, [args.user_id])
        items, scores = recommend(model, user, 5)
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
    out.print(
        f"Model file: {human_bytes(payload['model']['bytes'])}; whole demo "
        f"{payload['seconds']:.1f} s. Next: 'growthrec generate', 'growthrec train', "
        "'growthrec recommend' (see README)."
    )
