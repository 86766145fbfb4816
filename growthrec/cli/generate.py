"""``growthrec generate``: write a synthetic shop's transactions and item catalogue."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from growthrec.cli.export import output_format
from growthrec.cli.options import add_json_option, positive_int
from growthrec.cli.output import Output
from growthrec.cli.payloads import file_payload
from growthrec.data.files import write_table
from growthrec.data.synthetic import SyntheticShop, generate_shop
from growthrec.errors import ParameterError
from growthrec.store.atomic import refuse_unnamed_files

__all__ = ["DEFAULT_OUTPUT", "add_parser", "catalog_path_for", "write_shop"]

DEFAULT_OUTPUT = Path("data/transactions.csv")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="write synthetic transactions and an item catalogue",
        description="Simulate a shop (customer segments, long-tail items, repeat purchases) and "
        "write its transactions (user_id, item_id, quantity, timestamp) and, beside them, its "
        "item catalogue (item_id, category, price).",
    )
    p.add_argument("--users", type=positive_int, default=1000, help="customers (default: 1000)")
    p.add_argument("--items", type=positive_int, default=100, help="products (default: 100)")
    p.add_argument(
        "--density",
        type=float,
        default=0.05,
        help="transaction rows / (users x items) (default: 0.05)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"transactions file, .csv or .parquet (default: {DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--catalog-output",
        type=Path,
        default=None,
        help="item catalogue file (default: items.csv beside --output)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace existing files that were not named (the default --output, the catalogue "
        "beside it); a file named by --output or --catalog-output is always replaced",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def catalog_path_for(transactions: Path) -> Path:
    """Where the catalogue of a transactions file lives by default: ``items.<suffix>`` beside it."""
    suffix = ".parquet" if transactions.suffix.lower() in (".parquet", ".pq") else ".csv"
    return transactions.with_name("items" + suffix)


def write_shop(shop: SyntheticShop, transactions: Path, catalog: Path) -> None:
    """Write the shop's transactions and catalogue (each atomically)."""
    write_table(
        {
            "user_id": shop.user_id,
            "item_id": shop.item_id,
            "quantity": shop.quantity,
            "timestamp": shop.timestamp.astype("datetime64[s]"),
        },
        transactions,
    )
    write_table(
        {
            "item_id": shop.catalog_item_id,
            "category": shop.catalog_category,
            "price": shop.catalog_price,
        },
        catalog,
    )


def run(args: argparse.Namespace, out: Output) -> None:
    transactions = args.output or DEFAULT_OUTPUT
    catalog = args.catalog_output or catalog_path_for(transactions)
    if os.path.abspath(transactions) == os.path.abspath(catalog):
        raise ParameterError(
            f"--output and the catalogue are the same file ({catalog}); give another "
            "--catalog-output"
        )
    unnamed: dict[Path, str] = {}
    if args.output is None:
        unnamed[transactions] = "--output"
    if args.catalog_output is None:
        unnamed[catalog] = "--catalog-output"
    refuse_unnamed_files(unnamed, force=args.force)
    with out.steps(2) as steps:
        steps.step("simulating customers")
        start = time.perf_counter()
        shop = generate_shop(args.users, args.items, args.density, seed=args.seed)
        steps.step("writing files")
        write_shop(shop, transactions, catalog)
    seconds = time.perf_counter() - start
    summary = {
        "transactions": file_payload(
            transactions, format=output_format(transactions), rows=shop.user_id.size
        ),
        "catalog": file_payload(
            catalog, format=output_format(catalog), rows=shop.catalog_item_id.size
        ),
        "n_users": args.users,
        "n_items": args.items,
        "density": args.density,
        "seed": args.seed,
        "seconds": round(seconds, 3),
    }
    out.emit_json(summary)
    rows = [
        ("transactions file", str(transactions)),
        ("catalog file", str(catalog)),
        ("rows", int(shop.user_id.size)),
        ("users", args.users),
        ("items", args.items),
        ("seed", args.seed),
        ("seconds", summary["seconds"]),
    ]
    out.print(out.table(["", "value"], rows, title="Synthetic shop written", numeric=["value"]))
