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

__all__ = ["DEFAULT_OUTPUT", "add_parser", "catalog_path_for", "customers_path_for", "write_shop"]

DEFAULT_OUTPUT = Path("data/transactions.csv")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="write synthetic transactions and an item catalogue",
        description="Simulate a shop (customer segments, long-tail items, repeat purchases) and "
        "write its transactions (user_id, item_id, quantity, timestamp) and, beside them, its "
        "item catalogue (item_id, category, price, brand, line) and customer file (user_id, "
        "segment, region): the features that cold start learns from.",
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
        "--customers-output",
        type=Path,
        default=None,
        help="customer file (default: customers.csv beside --output)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace existing files that were not named (the default --output, the catalogue "
        "and customer file beside it); a named file is always replaced",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def catalog_path_for(transactions: Path) -> Path:
    """Where the catalogue of a transactions file lives by default: ``items.<suffix>`` beside it."""
    suffix = ".parquet" if transactions.suffix.lower() in (".parquet", ".pq") else ".csv"
    return transactions.with_name("items" + suffix)


def customers_path_for(transactions: Path) -> Path:
    """Where the customer file of a transactions file lives by default: ``customers.<suffix>``."""
    return catalog_path_for(transactions).with_stem("customers")


def write_shop(
    shop: SyntheticShop, transactions: Path, catalog: Path, customers: Path | None = None
) -> None:
    """Write the shop's transactions, catalogue and customer file (each atomically)."""
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
            "brand": shop.catalog_brand,
            "line": shop.catalog_line,
        },
        catalog,
    )
    if customers is not None:
        write_table(
            {
                "user_id": shop.customer_id,
                "segment": shop.customer_segment,
                "region": shop.customer_region,
            },
            customers,
        )


def run(args: argparse.Namespace, out: Output) -> None:
    transactions = args.output or DEFAULT_OUTPUT
    catalog = args.catalog_output or catalog_path_for(transactions)
    customers = args.customers_output or customers_path_for(transactions)
    paths = {"--output": transactions, "--catalog-output": catalog, "--customers-output": customers}
    seen: dict[str, str] = {}
    for option, path in paths.items():
        key = os.path.abspath(path)
        if key in seen:
            raise ParameterError(
                f"{seen[key]} and {option} are the same file ({path}); give each its own file"
            )
        seen[key] = option
    unnamed: dict[Path, str] = {}
    if args.output is None:
        unnamed[transactions] = "--output"
    if args.catalog_output is None:
        unnamed[catalog] = "--catalog-output"
    if args.customers_output is None:
        unnamed[customers] = "--customers-output"
    refuse_unnamed_files(unnamed, force=args.force)
    with out.steps(2) as steps:
        steps.step("simulating customers")
        start = time.perf_counter()
        shop = generate_shop(args.users, args.items, args.density, seed=args.seed)
        steps.step("writing files")
        write_shop(shop, transactions, catalog, customers)
    seconds = time.perf_counter() - start
    summary = {
        "transactions": file_payload(
            transactions, format=output_format(transactions), rows=shop.user_id.size
        ),
        "catalog": file_payload(
            catalog, format=output_format(catalog), rows=shop.catalog_item_id.size
        ),
        "customers": file_payload(
            customers, format=output_format(customers), rows=shop.customer_id.size
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
        ("customer file", str(customers)),
        ("rows", int(shop.user_id.size)),
        ("users", args.users),
        ("items", args.items),
        ("seed", args.seed),
        ("seconds", summary["seconds"]),
    ]
    out.print(out.table(["", "value"], rows, title="Synthetic shop written", numeric=["value"]))
