"""``growthrec evaluate`` and ``compare``: split, fit on train, rank the held-out items."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from growthrec.cli.notes import warn
from growthrec.cli.options import (
    ListOptions,
    LoadedData,
    add_backend_options,
    add_data_options,
    add_json_option,
    add_list_options,
    add_threads_option,
    backend_params,
    list_spec_from,
    list_spec_text,
    load_data,
    load_report_table,
    positive_int,
    seconds_from,
    short_lists_note,
)
from growthrec.cli.output import Output, data_text
from growthrec.cli.payloads import data_payload, split_payload
from growthrec.core.metrics import BEYOND_ACCURACY, METRIC_NAMES, MORE_BEYOND_ACCURACY
from growthrec.core.split import Split
from growthrec.evaluation.protocols import PROTOCOLS, Protocol, check_features, make_split
from growthrec.evaluation.runs import (
    Evaluation,
    categories_from,
    clamp_ks,
    evaluate_backend,
    item_vectors_for_diversity,
    plain_ranking,
)

__all__ = [
    "add_parser",
    "add_protocol_options",
    "clamp_warnings",
    "diversity_basis",
    "evaluation_payload",
    "evaluation_table",
    "protocol_from",
]

BASELINE = "popularity"


def add_protocol_options(parser: argparse.ArgumentParser) -> None:
    """How to hold data out, and the cut-offs."""
    group = parser.add_argument_group("evaluation protocol")
    group.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="leave-one-out",
        help="one item per customer, a share of each customer's items, everything after a "
        "date, or (cold start) a share of the items or of the customers held out entirely: "
        "cold-items needs --item-features, cold-users --user-features (default: leave-one-out)",
    )
    group.add_argument(
        "--by",
        choices=("auto", "latest", "random"),
        default="auto",
        help="leave-one-out: the latest item or a random one; auto = latest when the data has "
        "times (default)",
    )
    group.add_argument(
        "--test-ratio",
        type=float,
        default=0.2,
        help="ratio: share of each customer's items held out; cold-items: the same, of their "
        "warm items (default 0.2)",
    )
    group.add_argument(
        "--cutoff",
        default=None,
        help="temporal: train before this date/time (ISO 8601 or Unix seconds); default: the "
        "time that leaves the last --test-fraction of events for test",
    )
    group.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="temporal: share of events after the default cutoff; cold-items / cold-users: "
        "share of the items / customers held out entirely, the newest by first purchase when "
        "the data has times, else a seeded draw (default 0.2)",
    )
    group.add_argument(
        "--first-purchase",
        action="store_true",
        help="cold-users: also rank each held-out customer from their first purchase (with "
        "and without features); the test items are what they bought after it",
    )
    group.add_argument(
        "--k", type=positive_int, nargs="+", default=[5, 10], help="cut-offs (default: 5 10)"
    )
    group.add_argument(
        "--sampled",
        type=positive_int,
        default=None,
        metavar="N",
        help="rank the held-out items among N sampled unbought items (the NCF protocol) "
        "instead of the full catalogue; results are labelled as sampled",
    )
    add_threads_option(group)


def protocol_from(args: argparse.Namespace) -> Protocol:
    cutoff = None if args.cutoff is None else seconds_from(args.cutoff, "--cutoff")
    return Protocol(
        args.protocol,
        args.by,
        args.test_ratio,
        cutoff,
        args.test_fraction,
        getattr(args, "first_purchase", False),
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="offline evaluation of a backend beside the popularity baseline",
        description="Hold out part of each customer's purchases, fit on the rest, rank all items "
        "each customer has not bought and score the held-out ones (Hit rate, Precision, Recall, "
        "NDCG, MAP, MRR, coverage, novelty, diversity, Gini of exposure, long-tail share, "
        "miscalibration at each K). The lists go through the same rules and re-ranker as "
        "'recommend' and 'export' with the same options.",
    )
    add_data_options(p)
    add_backend_options(p, recency=True)
    add_protocol_options(p)
    add_list_options(p)
    p.add_argument("--no-baseline", action="store_true", help="skip the popularity baseline")
    add_json_option(p)
    p.set_defaults(run=run_evaluate)


def diversity_basis(
    split: Split, attributes: Mapping[str, np.ndarray], seed: int, column: str = "category"
) -> dict[str, Any]:
    """Item categories from the catalogue's ``column`` if it has one, else item vectors from
    the train part.

    One basis for every backend of a run, so their diversity figures compare.
    """
    if column in attributes:
        return {"categories": categories_from(attributes[column])}
    return {"item_vectors": item_vectors_for_diversity(split.train, seed=seed)}


def run_evaluation(
    args: argparse.Namespace,
    out: Output,
    backends: Sequence[tuple[str, Mapping[str, Any]]],
    weighting: str,
    tuned_on: Mapping[Path, str] | None = None,
    recency: Mapping[str, float] | None = None,
) -> None:
    """Fit and evaluate each of ``backends`` on one split (``recency``: each backend's
    half-life, 0 where absent) and print or emit the comparison."""
    protocol = protocol_from(args)
    with out.steps(2 + len(backends)) as steps:
        steps.step(f"reading {args.data}")
        loaded = load_data(args)
        features = {"item_features": loaded.item_features, "user_features": loaded.user_features}
        check_features(protocol, **features)
        steps.step(f"splitting: {protocol.name}")
        split = make_split(loaded.events, protocol, args.seed, **features)
        ks, clamped = clamp_ks(args.k, split.train.n_items)
        options = list_spec_from(args, max(ks), split.train.items, loaded.attributes)
        warnings = clamp_warnings(clamped, split.train.n_items)
        warnings += _fingerprint_warnings(tuned_on or {}, args.data, loaded.report.fingerprint)
        for warning in warnings:
            warn(warning)
        basis = diversity_basis(split, loaded.attributes, args.seed, options.spec.category)
        evaluations = []
        for name, params in backends:
            steps.step(f"fitting and ranking: {name}")
            evaluations.append(
                evaluate_backend(
                    split,
                    name,
                    params,
                    ks=ks,
                    weighting=weighting,
                    seed=args.seed,
                    n_threads=args.threads or 0,
                    sampled_negatives=args.sampled,
                    coldstart=loaded.coldstart,
                    item_attributes=loaded.attributes,
                    spec=options.spec,
                    recency=(recency or {}).get(name, 0.0),
                    **features,
                    **basis,
                )
            )
    payload = run_payload(loaded, split, evaluations, ks, options, basis, clamped, warnings)
    out.emit_json(payload)
    out.print(load_report_table(out, loaded.report))
    out.print(_split_line(split, args.seed, evaluations[0].ranking))
    if not plain_ranking(options.spec):
        out.print(f"lists: {data_text(list_spec_text(options.spec))}")
    if evaluations[0].tasks:
        for table in task_tables(out, evaluations, ks):
            out.print(table)
    else:
        out.print(evaluation_table(out, evaluations, ks))
    for e in evaluations:
        note = short_lists_note(e.n_short_lists, e.n_users, max(ks))
        if note:
            out.print(f"{e.backend}: {note}")


def clamp_warnings(clamped: Sequence[int], n_items: int) -> list[str]:
    if not clamped:
        return []
    asked = ", ".join(str(k) for k in clamped)
    return [
        f"--k {asked}: more than the {n_items:,} items in the catalogue, so computed at "
        f"K={n_items} (a list cannot be longer)"
    ]


def _fingerprint_warnings(
    tuned_on: Mapping[Path, str], data: object, fingerprint: str
) -> list[str]:
    return [
        f"{path} was tuned on other data (fingerprint {tuned}); {data} has fingerprint "
        f"{fingerprint}"
        for path, tuned in tuned_on.items()
        if tuned != fingerprint
    ]


def _split_line(split: Split, seed: int, ranking: str) -> str:
    extra = "".join(
        f"; {k.replace('_', ' ')}: {v:,}" for k, v in split.counts.items() if k != "cutoff"
    )
    return (
        f"[bold]{data_text(split.protocol)}[/bold], seed {seed}, {data_text(ranking)} ranking: "
        f"{split.n_test_users:,} customers evaluated, {split.n_train_only:,} kept in train only"
        f"{extra}"
    )


def run_evaluate(args: argparse.Namespace, out: Output) -> None:
    backend = args.backend or "svd"
    backends = [(backend, backend_params(args))]
    if not args.no_baseline and backend != BASELINE:
        backends.append((BASELINE, {}))
    recency = {name: args.recency or 0.0 for name, _ in backends}
    run_evaluation(args, out, backends, args.weighting or "binary", recency=recency)


def evaluation_table(
    out: Output,
    evaluations: Sequence[Evaluation],
    ks: Sequence[int],
    task: str | None = None,
    title: str | None = None,
) -> Table:
    """Metrics as rows, one column per backend and K (of one ``task`` of a cold-start split)."""

    def metrics(e: Evaluation) -> Mapping[int, Mapping[str, float]]:
        return e.metrics if task is None else e.tasks[task].metrics

    first = metrics(evaluations[0])[ks[0]]
    names = [m for m in (*METRIC_NAMES, *BEYOND_ACCURACY, *MORE_BEYOND_ACCURACY) if m in first]
    columns = [f"{e.backend} @{k}" for k in ks for e in evaluations]
    rows = [(name, *(metrics(e)[k][name] for k in ks for e in evaluations)) for name in names]
    rows.append(("fit seconds", *(round(e.fit_seconds, 3) for _ in ks for e in evaluations)))
    return out.table(["metric", *columns], rows, title=title, numeric=columns)


def task_tables(out: Output, evaluations: Sequence[Evaluation], ks: Sequence[int]) -> list[Table]:
    """A cold-start split's tables: one per task, then NDCG and recall at the deepest K of
    every task side by side, one row per backend."""
    tasks = evaluations[0].tasks
    tables = [
        evaluation_table(
            out,
            evaluations,
            ks,
            task=name,
            title=f"Task {name}: ranked among {task.ranked_among}; {task.n_users:,} customers",
        )
        for name, task in tasks.items()
    ]
    k = max(ks)
    pairs = [(name, m) for m in ("ndcg", "recall") for name in tasks]
    columns = [f"{name} {m}@{k}" for name, m in pairs]
    rows = [(e.backend, *(e.tasks[name].metrics[k][m] for name, m in pairs)) for e in evaluations]
    tables.append(out.table(["backend", *columns], rows, title="By task", numeric=columns))
    return tables


def run_payload(
    loaded: LoadedData,
    split: Split,
    evaluations: Sequence[Evaluation],
    ks: Sequence[int],
    options: ListOptions,
    basis: Mapping[str, Any],
    clamped: Sequence[int],
    warnings: Sequence[str],
) -> dict[str, Any]:
    """The JSON of an ``evaluate`` or ``compare`` run: the data, the results, how diversity
    and the lists were made, the cut-offs clamped and the warnings."""
    return {
        "data": data_payload(loaded.report),
        **evaluation_payload(split, evaluations, ks),
        "diversity_basis": options.spec.category
        if "categories" in basis
        else "item vectors (svd of train)",
        "list_spec": options.payload(with_purchases=False),
        "ks_clamped": {str(k): split.train.n_items for k in clamped},
        "warnings": list(warnings),
    }


def evaluation_payload(
    split: Split, evaluations: Sequence[Evaluation], ks: Sequence[int]
) -> dict[str, Any]:
    """The JSON form of a run: the split, the cut-offs and every backend's result."""
    return {
        "split": split_payload(split),
        "ks": sorted(set(ks)),
        "results": [e.as_dict() for e in evaluations],
    }
