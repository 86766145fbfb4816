"""Option groups shared by several commands, and turning their values into core arguments."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from growthrec.core.weighting import WEIGHTINGS
from growthrec.errors import ParameterError
from growthrec.tables import Columns

__all__ = [
    "add_backend_options",
    "add_data_options",
    "add_json_option",
    "backend_params",
    "columns_from",
    "positive_int",
]


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of tables"
    )


def add_data_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """--data and the column options of a transactions file."""
    group = parser.add_argument_group("input data")
    group.add_argument(
        "--data", type=Path, required=required, help="transactions file (.csv, .csv.gz, .parquet)"
    )
    group.add_argument("--user-col", default="user_id", help="user (customer) id column")
    group.add_argument("--item-col", default="item_id", help="item (product) id column")
    group.add_argument(
        "--weight-col",
        default=None,
        help="weight column, e.g. a quantity (default: 'quantity' if present)",
    )
    group.add_argument(
        "--time-col",
        default=None,
        help="event time column, ISO date/time or Unix seconds (default: 'timestamp' if present)",
    )


def columns_from(args: argparse.Namespace) -> Columns:
    return Columns(args.user_col, args.item_col, args.weight_col, args.time_col)


def add_backend_options(parser: argparse.ArgumentParser, *, model_flag: bool = True) -> None:
    """The backend, its parameters, the weighting and the seed."""
    group = parser.add_argument_group("model")
    if model_flag:
        group.add_argument(
            "--model",
            "--backend",
            dest="backend",
            default="svd",
            help="backend name (see 'growthrec backends'; default: svd)",
        )
    group.add_argument(
        "--factors", type=positive_int, default=None, help="shortcut for --param factors=N"
    )
    group.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a backend parameter; repeat for several",
    )
    group.add_argument(
        "--weighting",
        default="binary",
        choices=sorted(WEIGHTINGS),
        help="how purchase counts become training values (default: binary)",
    )
    group.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def backend_params(args: argparse.Namespace) -> dict[str, Any]:
    """``--param name=value`` pairs (and ``--factors``) as a dict of strings/ints."""
    params: dict[str, Any] = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--param {item!r}: expected NAME=VALUE, e.g. --param factors=64")
        params[name.strip()] = value.strip()
    if args.factors is not None:
        params["factors"] = args.factors
    return params
