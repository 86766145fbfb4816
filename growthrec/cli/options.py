"""Option groups shared by several commands, and turning their values into core arguments."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from rich.table import Table

from growthrec.cli.output import Output
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features, parse_feature_list
from growthrec.core.interactions import Events
from growthrec.core.weighting import WEIGHTINGS
from growthrec.data.cleaning import Cleaning
from growthrec.data.features import FeatureSources, load_features
from growthrec.data.loading import Columns, LoadReport, load_events
from growthrec.data.parsing import TIME_UNITS
from growthrec.data.presets import (
    PRESETS,
    Preset,
    catalog_for,
    default_catalog_path,
    get_preset,
    preset_file,
)
from growthrec.errors import DataError, ParameterError

__all__ = [
    "LoadedData",
    "add_backend_options",
    "add_cleaning_options",
    "add_data_options",
    "add_feature_options",
    "add_json_option",
    "add_threads_option",
    "add_weighting_and_seed",
    "backend_params",
    "data_options",
    "dialect_options",
    "feature_sources",
    "load_data",
    "load_report_table",
    "positive_int",
    "seconds_from",
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


def seconds_from(text: str, option: str) -> float:
    """Unix seconds from an ISO 8601 date/time or a number of seconds given on the command line."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float(np.datetime64(text.strip().replace(" ", "T"), "s").astype(np.int64))
    except ValueError:
        raise ParameterError(
            f"{option} {text!r}: expected a date/time such as 2011-09-01 or 2011-09-01 12:00:00, "
            "or Unix seconds"
        ) from None


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of tables"
    )


def add_threads_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="ranking threads (default: every core this process may use)",
    )


def add_data_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """--data, --preset, the column options, the cleaning rules and the catalogue."""
    group = parser.add_argument_group("input data")
    group.add_argument(
        "--data", type=Path, required=required, help="transactions file (.csv, .csv.gz, .parquet)"
    )
    group.add_argument(
        "--preset",
        default=None,
        help=f"column options of a known dataset: {', '.join(PRESETS)}",
    )
    group.add_argument("--user-col", default=None, help="user (customer) id column (user_id)")
    group.add_argument("--item-col", default=None, help="item (product) id column (item_id)")
    group.add_argument(
        "--weight-col", default=None, help="weight column, e.g. a quantity ('quantity' if present)"
    )
    group.add_argument(
        "--time-col",
        default=None,
        help="event time column, ISO date/time or Unix time ('timestamp' if present)",
    )
    group.add_argument(
        "--delimiter",
        default=None,
        metavar="CHAR",
        help="CSV delimiter, e.g. ';' or tab (default: detected from the header line "
        "among , ; tab |)",
    )
    group.add_argument(
        "--time-format",
        default=None,
        metavar="FORMAT",
        help="strptime-style format of text times, e.g. '%%d/%%m/%%Y %%H:%%M' (default: ISO 8601)",
    )
    group.add_argument(
        "--time-unit",
        default=None,
        choices=list(TIME_UNITS),
        help="unit of numeric (epoch) times (default: by magnitude: below 1e11 seconds, "
        "1e14 ms, 1e17 us, else ns)",
    )
    group.add_argument(
        "--catalog",
        type=Path,
        default=None,
        help="item catalogue file (default: the preset's, or items.csv beside --data if any)",
    )
    group.add_argument(
        "--catalog-item-col", default=None, help="item id column of the catalogue (item_id)"
    )
    add_cleaning_options(parser)
    add_feature_options(parser)


_COLD_DEFAULTS = ColdStart()


def add_feature_options(parser: argparse.ArgumentParser) -> None:
    """Item and customer features for cold start, and how they become factors."""
    group = parser.add_argument_group(
        "features (cold start: products nobody bought, customers who bought nothing)"
    )
    group.add_argument(
        "--item-features",
        default=None,
        metavar="SPEC",
        help="catalogue columns as features, each COLUMN[:KIND] with KIND category (default), "
        "multi (values split on |), numeric (quantile buckets) or text (TF-IDF words), e.g. "
        "brand,line,price:numeric,title:text; catalogue products nobody bought join the model",
    )
    group.add_argument(
        "--customers",
        type=Path,
        default=None,
        metavar="FILE",
        help="customer file for --user-features (default: the preset's, or customers.csv "
        "beside --data)",
    )
    group.add_argument(
        "--customer-col", default=None, help="customer id column of --customers (user_id)"
    )
    group.add_argument(
        "--user-features",
        default=None,
        metavar="SPEC",
        help="customer file columns as features, as --item-features, e.g. segment,region",
    )
    group.add_argument(
        "--features",
        action="store_true",
        help="the preset's features (movielens: genres, title; online-retail: Description, "
        "UnitPrice, and Country of customers)",
    )
    group.add_argument(
        "--coldstart-shrinkage",
        type=float,
        default=_COLD_DEFAULTS.shrinkage,
        metavar="N",
        help="buyers at which an item's learned and feature-mapped factors weigh the same "
        f"(default {_COLD_DEFAULTS.shrinkage:g})",
    )
    group.add_argument(
        "--coldstart-regularization",
        type=float,
        default=_COLD_DEFAULTS.regularization,
        metavar="L2",
        help=f"ridge penalty of the map from features to factors (default "
        f"{_COLD_DEFAULTS.regularization:g})",
    )
    group.add_argument(
        "--feature-weight",
        type=float,
        default=_COLD_DEFAULTS.feature_weight,
        metavar="W",
        help="weight of the feature rows itemknn and ease learn from "
        f"(default {_COLD_DEFAULTS.feature_weight:g})",
    )


def add_cleaning_options(
    parser: argparse.ArgumentParser,
    title: str = "cleaning (each rule's dropped rows are reported)",
) -> None:
    """The cleaning rules, each an option; shared by every command that reads transactions."""
    clean = parser.add_argument_group(title)
    clean.add_argument(
        "--min-weight",
        type=float,
        default=None,
        help="keep rows whose weight is at least this, e.g. 4 for 1-5 star ratings",
    )
    clean.add_argument(
        "--keep-missing",
        action="store_true",
        help="refuse rows with a missing user or item instead of dropping them",
    )
    clean.add_argument(
        "--keep-nonpositive",
        action="store_true",
        help="refuse rows with a zero or negative weight (returns) instead of dropping them",
    )
    clean.add_argument(
        "--keep-duplicates", action="store_true", help="keep rows that repeat another row exactly"
    )
    clean.add_argument(
        "--require-positive",
        action="append",
        default=[],
        metavar="COL",
        help="also drop rows where numeric column COL is not > 0 (e.g. UnitPrice); repeatable",
    )
    clean.add_argument(
        "--min-user-interactions",
        type=positive_int,
        default=1,
        help="k-core: customers need this many distinct items (default 1: off)",
    )
    clean.add_argument(
        "--min-item-interactions",
        type=positive_int,
        default=1,
        help="k-core: items need this many distinct customers (default 1: off)",
    )


@attrs.frozen
class LoadedData:
    """What a command read: the events, what cleaning did, the catalogue's item columns, and
    the item and customer features (with the cold-start options) when asked for."""

    events: Events
    report: LoadReport
    attributes: dict[str, np.ndarray]
    catalog: Path | None
    item_features: Features | None = None
    user_features: Features | None = None
    coldstart: ColdStart = attrs.field(factory=ColdStart)

    @property
    def n_cold_items(self) -> int:
        """Catalogue products nobody bought (they joined the items)."""
        return len(self.events.items) - int(np.unique(self.events.item_codes).size)


def data_options(args: argparse.Namespace) -> tuple[Columns, Cleaning, Preset | None]:
    """The columns, cleaning rules and preset the command line asks for."""
    preset = get_preset(args.preset) if args.preset else None
    base = preset.columns if preset else Columns()
    columns = Columns(
        args.user_col or base.user,
        args.item_col or base.item,
        args.weight_col or base.weight,
        args.time_col or base.time,
    )
    cleaning = Cleaning(
        drop_missing=not args.keep_missing,
        drop_nonpositive=not args.keep_nonpositive,
        drop_duplicates=not args.keep_duplicates,
        min_weight=args.min_weight,
        require_positive=tuple(
            dict.fromkeys([*(preset.require_positive if preset else ()), *args.require_positive])
        ),
        min_user_interactions=args.min_user_interactions,
        min_item_interactions=args.min_item_interactions,
    )
    return columns, cleaning, preset


def dialect_options(args: argparse.Namespace) -> dict[str, str | None]:
    """--delimiter, --time-format and --time-unit as ``load_events`` keyword arguments."""
    return {
        "delimiter": args.delimiter,
        "time_format": args.time_format,
        "time_unit": args.time_unit,
    }


def feature_sources(
    args: argparse.Namespace, preset: Preset | None, columns: Columns
) -> FeatureSources:
    """Where the command line (or, with --features, the preset) takes features from."""
    use_preset = getattr(args, "features", False)
    if use_preset and preset is None:
        raise ParameterError("--features needs --preset (or name columns with --item-features)")
    item_spec = args.item_features or (preset.item_features if use_preset else None)
    user_spec = args.user_features or (preset.user_features if use_preset else None)
    catalog = args.catalog
    if catalog is None and item_spec:
        catalog = (
            preset_file(preset, args.data, preset.catalog_file)
            if preset
            else default_catalog_path(args.data)
        )
    customers = args.customers
    if customers is None and user_spec:
        if preset is not None:
            customers = preset_file(preset, args.data, preset.customer_file)
        else:
            customers = default_catalog_path(args.data).with_stem("customers")
    if customers is not None and not Path(customers).is_file():
        raise DataError(f"{customers}: no such customer file")
    if catalog is not None and item_spec and not Path(catalog).is_file():
        raise DataError(f"{catalog}: no such catalogue file")
    same_file = catalog is not None and Path(catalog).resolve() == Path(args.data).resolve()
    return FeatureSources(
        item_kinds=parse_feature_list(item_spec, "--item-features") if item_spec else (),
        catalog=catalog,
        catalog_column=args.catalog_item_col
        or (preset.catalog_item_column if preset else "item_id"),
        user_kinds=parse_feature_list(user_spec, "--user-features") if user_spec else (),
        customers=customers,
        customer_column=args.customer_col
        or (preset.customer_column if preset else None)
        or columns.user,
        cold_items=not same_file,
    )


def load_data(args: argparse.Namespace) -> LoadedData:
    """Read --data with the preset, column, dialect, cleaning and feature options."""
    columns, cleaning, preset = data_options(args)
    events, report = load_events(args.data, columns, cleaning, **dialect_options(args))
    item_features = user_features = None
    coldstart = ColdStart()
    if hasattr(args, "item_features"):
        sources = feature_sources(args, preset, columns)
        events, item_features, user_features = load_features(sources, events)
        coldstart = ColdStart(
            regularization=args.coldstart_regularization,
            shrinkage=args.coldstart_shrinkage,
            feature_weight=args.feature_weight,
        )
    attributes, catalog = catalog_for(
        preset,
        args.data,
        events.items,
        catalog_path=args.catalog,
        item_column=args.catalog_item_col,
    )
    return LoadedData(events, report, attributes, catalog, item_features, user_features, coldstart)


def load_report_table(out: Output, report: LoadReport) -> Table:
    """Rows read, rows each cleaning rule dropped, and what is left."""
    rows = [("rows read", f"{report.rows_read:,}")]
    rows += [(f"dropped: {rule}", f"{n:,}") for rule, n in report.dropped.items()]
    rows += [
        ("rows kept", f"{report.rows_kept:,}"),
        ("customers x items", f"{report.n_users:,} x {report.n_items:,}"),
        ("fingerprint", report.fingerprint),
    ]
    return out.table(["", "value"], rows, title=f"Data: {report.path}", numeric=["value"])


def add_backend_options(parser: argparse.ArgumentParser, *, model_flag: bool = True) -> None:
    """The backend, its parameters, the weighting and the seed."""
    group = parser.add_argument_group("model")
    if model_flag:
        group.add_argument(
            "--model",
            "--backend",
            dest="backend",
            default=None,
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
    add_weighting_and_seed(group, tuned=True)


def add_weighting_and_seed(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, tuned: bool = False
) -> None:
    """--weighting (default binary; with ``tuned``, unset so a tuned file's applies) and --seed."""
    parser.add_argument(
        "--weighting",
        default=None if tuned else "binary",
        choices=sorted(WEIGHTINGS),
        help="how purchase counts become training values (default: binary"
        + (", or the tuned one)" if tuned else ")"),
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


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
