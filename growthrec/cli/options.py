"""Option groups shared by several commands, and turning their values into core arguments."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from rich.table import Table

from growthrec.cli.notes import named, warn
from growthrec.cli.output import Output
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features, parse_feature_list
from growthrec.core.interactions import Events, IdMap
from growthrec.core.reranking import RERANKERS, SIMILARITIES, RerankSpec
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
from growthrec.errors import DataError, ParameterError, UnknownIdError
from growthrec.pipeline.rules import (
    DEFAULT_CANDIDATES,
    ListSpec,
    cap_groups,
    filter_mask,
    parse_cap,
    parse_filter,
)
from growthrec.store.tuned import read_tuned

__all__ = [
    "ListOptions",
    "LoadedData",
    "add_backend_options",
    "add_cleaning_options",
    "add_data_options",
    "add_feature_options",
    "add_json_option",
    "add_list_options",
    "add_threads_option",
    "add_weighting_and_seed",
    "backend_params",
    "data_options",
    "dialect_options",
    "feature_sources",
    "given_choices",
    "list_spec_from",
    "list_spec_text",
    "load_data",
    "load_report_table",
    "model_choices",
    "positive_int",
    "read_item_ids",
    "seconds_from",
    "short_lists_note",
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


def add_backend_options(
    parser: argparse.ArgumentParser, *, model_flag: bool = True, recency: bool = False
) -> None:
    """The backend, its parameters, the weighting and the seed (and, with ``recency``,
    ``--recency``)."""
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
    if recency:
        add_recency_option(group)


def add_recency_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--recency HALF_LIFE: weight each customer's recent purchases more when ranking them."""
    parser.add_argument(
        "--recency",
        type=float,
        default=None,
        metavar="HALF_LIFE",
        help="when ranking a customer, weight their purchases by how recent they are: the "
        "k-th latest purchase time counts 0.5^(k/HALF_LIFE) (default 0: off, or the tuned "
        "value); needs a time column",
    )


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
    if getattr(args, "factors", None) is not None:  # 'tune' has no --factors
        params["factors"] = args.factors
    return params


def given_choices(
    args: argparse.Namespace,
) -> tuple[str | None, dict[str, Any], str | None, float | None]:
    """Backend, parameters, weighting and recency as given: explicit options, then
    ``--params-file`` (what 'tune' chose); ``None`` where neither says."""
    params: dict[str, Any] = {}
    backend, weighting = args.backend, args.weighting
    recency = getattr(args, "recency", None)
    if args.params_file is not None:
        tuned = read_tuned(args.params_file, backend)
        backend = tuned.backend
        params.update(tuned.params)
        weighting = weighting or tuned.weighting
        recency = tuned.recency if recency is None else recency
    params.update(backend_params(args))
    return backend, params, weighting, recency


def model_choices(args: argparse.Namespace) -> tuple[str, dict[str, Any], str, float]:
    """``given_choices`` with the defaults where nothing was given (svd, binary, no recency)."""
    backend, params, weighting, recency = given_choices(args)
    return backend or "svd", params, weighting or "binary", recency or 0.0


def read_item_ids(path: Path, what: str = "items file") -> list[str]:
    """Item ids from a text file, one per line, exactly as written (only the line end is cut)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an {what}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file of item ids") from None
    ids = [line.removesuffix("\r") for line in text.split("\n")]
    ids = [i for i in ids if i]
    if not ids:
        raise DataError(f"{path}: the {what} lists no item ids")
    return ids


def _id_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_list_options(parser: argparse.ArgumentParser, *, purchases: bool = False) -> None:
    """The business rules and the re-ranker, one definition for every command that makes
    lists (recommend, export, evaluate, compare); ``list_spec_from`` turns them into the
    ``ListSpec`` the pipeline runs. ``purchases`` adds --include-purchased."""
    group = parser.add_argument_group(
        "business rules and re-ranking (the same pipeline for every list; see README)"
    )
    group.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        metavar="'COLUMN OP VALUE'",
        help="keep items whose catalogue column passes, e.g. 'price <= 50', "
        "'category in books,toys', 'in_stock == true' (OP: in, not in, ==, !=, <=, >=, <, >); "
        "repeatable, all must pass",
    )
    group.add_argument(
        "--available",
        type=Path,
        default=None,
        metavar="FILE",
        help="only these items (in stock): a text file of item ids, one per line, exactly as "
        "written; ids the model does not know are ignored with a warning",
    )
    group.add_argument(
        "--exclude",
        type=_id_list,
        action="extend",
        default=None,
        metavar="A,B",
        help="items never to recommend (comma-separated ids); repeatable",
    )
    if purchases:
        group.add_argument(
            "--include-purchased",
            action="store_true",
            help="allow items the customer already bought (excluded by default)",
        )
    group.add_argument(
        "--cap",
        dest="caps",
        action="append",
        default=[],
        metavar="COLUMN=N",
        help="at most N items per value of a catalogue column in a list, e.g. brand=2; "
        "repeatable (one per column)",
    )
    group.add_argument(
        "--rerank",
        choices=(*RERANKERS, "mmr-mean"),
        default="none",
        help="re-order each customer's top --candidates: mmr or dpp (diversity; mmr-mean "
        "penalises the mean similarity to the items chosen, not the largest, and so raises "
        "intra-list diversity more for the same accuracy), calibration (the list's category "
        "mix close to the customer's history) (default: none)",
    )
    group.add_argument(
        "--strength",
        "--diversity",
        dest="strength",
        type=float,
        default=None,
        metavar="X",
        help="how hard --rerank pulls, in [0, 1]: 0 keeps the model's order, 1 is the "
        "re-ranker's objective alone (required with --rerank)",
    )
    group.add_argument(
        "--popularity-penalty",
        type=float,
        default=0.0,
        metavar="B",
        help="novelty: subtract B x log popularity (scaled to [0, 1]) from each candidate's "
        "relevance first, B in [0, 1] (default 0); composes with --rerank",
    )
    group.add_argument(
        "--coverage",
        type=float,
        default=0.0,
        metavar="C",
        help="catalogue coverage: raise, round by round over every customer's list, the "
        "relevance of each item no list shows, in steps of 0.02 up to C in [0, 1] (default "
        "0); each item enters the lists of the customers nearest to wanting it first; "
        "composes with --rerank and --popularity-penalty",
    )
    group.add_argument(
        "--similarity",
        choices=SIMILARITIES,
        default="categories",
        help="what mmr and dpp compare items by: catalogue categories (--category-col), the "
        "model's item features, its item factors, or purchases (SVD item vectors of the "
        "train matrix, 32 dims, the run's seed: the ruler intra-list diversity uses without "
        "categories; any backend) (default: categories)",
    )
    group.add_argument(
        "--window",
        type=int,
        default=None,
        metavar="N",
        help="dpp only: diverse over any N consecutive items rather than the whole list",
    )
    group.add_argument(
        "--candidates",
        type=positive_int,
        default=DEFAULT_CANDIDATES,
        metavar="M",
        help=f"the model's top M per customer that caps and re-rankers choose from "
        f"(default {DEFAULT_CANDIDATES})",
    )
    group.add_argument(
        "--category-col",
        default=None,
        metavar="NAME",
        help="the catalogue column of item categories, for calibration, --similarity "
        "categories and diversity ('a|b' is two categories; default: category)",
    )


@attrs.frozen
class ListOptions:
    """The list options as a command took them: the ``ListSpec`` (its ``n`` the command's),
    and the --available file with how many of its ids the model did not know."""

    spec: ListSpec
    available: Path | None = None
    n_available: int = 0
    n_unknown_available: int = 0

    def payload(self, *, with_purchases: bool = True) -> dict[str, Any]:
        """The ``list_spec`` object of --json: every setting that shaped the lists."""
        spec, rerank = self.spec, self.spec.rerank
        out: dict[str, Any] = {}
        if with_purchases:
            out["exclude_purchased"] = spec.exclude_seen
        out.update(
            available=None
            if self.available is None
            else {
                "path": str(self.available),
                "n_items": self.n_available,
                "n_unknown": self.n_unknown_available,
            },
            exclude=[str(i) for i in spec.deny],
            filters=[str(f) for f in spec.filters],
            caps={column: limit for column, limit in spec.caps},
            rerank={
                "kind": rerank.kind,
                "strength": rerank.strength,
                "popularity_penalty": rerank.popularity_penalty,
                "similarity": rerank.similarity,
                "window": rerank.window,
                "aggregate": rerank.aggregate,
                "coverage": rerank.coverage,
            },
            candidates=spec.candidates,
            category_col=spec.category,
        )
        return out


def _rerank_from(args: argparse.Namespace) -> RerankSpec:
    """--rerank and its options as a ``RerankSpec``; each mistake one line naming the option."""
    kind, strength = args.rerank, args.strength
    if kind == "none" and strength is not None:
        raise ParameterError(
            f"--strength {strength:g} needs a re-ranker: add --rerank mmr, dpp or calibration"
        )
    if kind != "none" and strength is None:
        raise ParameterError(
            f"--rerank {kind}: give --strength X in [0, 1] (0 keeps the model's order, 1 is "
            f"{kind}'s objective alone), e.g. --strength 0.3"
        )
    if strength is not None and not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
        raise ParameterError(
            f"--strength {strength:g}: outside [0, 1] (0 keeps the model's order, 1 is "
            f"{kind}'s objective alone)"
        )
    beta = args.popularity_penalty
    if not (math.isfinite(beta) and 0.0 <= beta <= 1.0):
        raise ParameterError(
            f"--popularity-penalty {beta:g}: outside [0, 1] (0: none, 1: the full log "
            "popularity, scaled to [0, 1], off each relevance)"
        )
    coverage = args.coverage
    if not (math.isfinite(coverage) and 0.0 <= coverage <= 1.0):
        raise ParameterError(
            f"--coverage {coverage:g}: outside [0, 1] (0: off; the largest boost an item no "
            "list shows gets on its relevance, itself scaled to [0, 1])"
        )
    if args.window is not None:
        if kind != "dpp":
            raise ParameterError(f"--window {args.window}: applies to --rerank dpp only")
        if args.window < 2:
            raise ParameterError(f"--window {args.window}: must be at least 2")
    mean = kind == "mmr-mean"  # MMR over the mean similarity (RerankSpec.aggregate)
    return RerankSpec(
        "mmr" if mean else kind,
        float(strength or 0.0),
        float(beta),
        args.similarity,
        args.window,
        "mean" if mean else "max",
        float(coverage),
    )


def list_spec_from(
    args: argparse.Namespace,
    n: int,
    items: IdMap,
    attributes: Mapping[str, np.ndarray],
) -> ListOptions:
    """The ``ListSpec`` the list options ask for, checked against a catalogue (``items``,
    the model's ids, and its item ``attributes``) before any ranking: an unknown column, a
    filter or allow list that leaves nothing, a re-ranker that needs categories there are
    none of, each one line. Unknown --available ids are ignored with a warning."""
    filters = tuple(parse_filter(text) for text in args.filters)
    caps = tuple(parse_cap(text) for text in args.caps)
    twice = sorted({c for c, _ in caps if [c2 for c2, _ in caps].count(c) > 1})
    if twice:
        raise ParameterError(f"--cap {twice[0]}=...: given more than once; give one per column")
    rerank = _rerank_from(args)
    column = args.category_col or "category"
    if args.category_col is not None and column not in attributes:
        known = ", ".join(attributes) or "none: the model has no catalogue"
        raise ParameterError(
            f"--category-col {column}: the catalogue has no such column (columns: {known})"
        )
    needs_categories = rerank.needs_categories or (
        rerank.needs_similarity and rerank.similarity == "categories"
    )
    if needs_categories and column not in attributes:
        known = ", ".join(attributes) or "none: the model has no catalogue"
        if rerank.kind == "calibration":
            what, other = "calibration", "or train with a catalogue that has one"
        else:
            what, other = f"{rerank.kind} by categories", "or use --similarity purchases"
        raise ParameterError(
            f"--rerank {rerank.kind}: {what} needs item categories, and the catalogue has no "
            f"column {column!r} (columns: {known}); name the column with --category-col, {other}"
        )
    for column_name, _ in caps:
        cap_groups(attributes, column_name)  # an unknown column: one line naming it
    keep = filter_mask(attributes, filters) if filters else np.ones(len(items), dtype=bool)
    allow: tuple[object, ...] | None = None
    available, unknown = None, []
    if args.available is not None:
        given = read_item_ids(args.available, "--available file")
        index = items.index(given)
        unknown = [i for i, at in zip(given, index, strict=True) if at < 0]
        known = index[index >= 0]
        if not known.size:
            raise DataError(
                f"--available {args.available}: none of its {len(given):,} item ids is in the "
                f"model's catalogue (first: {given[0]!r})"
            )
        if unknown:
            warn(
                f"--available {args.available}: {len(unknown):,} item ids not in the model's "
                f"catalogue, ignored: {named(unknown)}"
            )
        allow = tuple(items.external(np.unique(known)).tolist())
        available = args.available
        passing = np.zeros_like(keep)
        passing[known] = True
        keep &= passing
    deny = tuple(args.exclude or ())
    if deny:
        index = items.index(list(deny))
        if np.any(index < 0):
            missing = [d for d, at in zip(deny, index, strict=True) if at < 0]
            raise UnknownIdError(f"--exclude: item {missing[0]} is not in the model's catalogue")
        keep[index] = False
    if not keep.any():
        given = [f"--filter {f}" for f in filters] + (["--available"] if allow else [])
        raise DataError(
            f"the rules leave no item of the catalogue's {len(items):,}: "
            f"{', '.join(given + (['--exclude'] if deny else []))} together allow none"
        )
    spec = ListSpec(
        n=n,
        exclude_seen=not getattr(args, "include_purchased", False),
        allow=allow,
        deny=deny,
        filters=filters,
        caps=caps,
        rerank=rerank,
        candidates=args.candidates,
        category=column,
    )
    n_available = 0 if allow is None else len(allow)
    return ListOptions(spec, available, n_available, len(unknown))


def short_lists_note(n_short: int, n_lists: int, n: int) -> str | None:
    """The line that says lists came out short (None when none did)."""
    if not n_short:
        return None
    if n_lists == 1:
        return (
            f"note: 1 of 1 list is shorter than {n} items: the catalogue, the rules and what the "
            "customer bought leave no more (nothing is made up to fill it)"
        )
    lists = "list is" if n_short == 1 else "lists are"
    return (
        f"note: {n_short:,} of {n_lists:,} {lists} shorter than {n} items: the catalogue, the "
        "rules and what each customer bought leave no more (nothing is made up to fill them)"
    )


def list_spec_text(spec: ListSpec) -> str:
    """The rules and re-ranker of ``spec`` in a few words, for a line above a table."""
    rerank = spec.rerank
    parts = [f"filter {f}" for f in spec.filters]
    if spec.allow is not None:
        parts.append(f"{len(spec.allow):,} items available")
    if spec.deny:
        parts.append(f"{len(spec.deny):,} excluded")
    parts += [f"at most {limit} per {column}" for column, limit in spec.caps]
    if rerank.kind != "none":
        by = "" if rerank.kind == "calibration" else f" by {rerank.similarity}"
        window = f", window {rerank.window}" if rerank.window else ""
        kind = "mmr-mean" if rerank.aggregate == "mean" else rerank.kind
        parts.append(f"{kind} {rerank.strength:g}{by}{window}")
    if rerank.popularity_penalty:
        parts.append(f"popularity penalty {rerank.popularity_penalty:g}")
    if rerank.coverage:
        parts.append(f"coverage boost up to {rerank.coverage:g}")
    if spec.reorders:
        parts.append(f"re-ranked from the top {spec.candidates}")
    if not spec.exclude_seen:
        parts.append("purchases included")
    return "; ".join(parts) or "the model's plain ranking"
