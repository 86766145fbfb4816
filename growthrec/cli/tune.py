"""``growthrec tune``: search backend parameters on a validation split carved from train."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from growthrec.backends.contract import resolve_params
from growthrec.backends.registry import get_backend
from growthrec.cli.evaluate import add_protocol_options, clamp_warnings, protocol_from
from growthrec.cli.notes import warn
from growthrec.cli.options import (
    add_data_options,
    add_json_option,
    add_recency_option,
    add_weighting_and_seed,
    backend_params,
    load_data,
    load_report_table,
    positive_int,
)
from growthrec.cli.output import Output, data_text
from growthrec.cli.payloads import data_payload, file_payload, split_payload
from growthrec.core.metrics import METRIC_NAMES
from growthrec.errors import ParameterError
from growthrec.evaluation.protocols import check_features, make_validation_split
from growthrec.evaluation.runs import clamp_ks
from growthrec.evaluation.tuning import (
    INSTALL_HINT,
    Search,
    candidates,
    default_search_space,
    evaluate_settings,
    parse_space,
    sequential_search,
)
from growthrec.store.atomic import atomic_write
from growthrec.store.tuned import tuned_path

__all__ = ["add_parser", "trials_text"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="search backend parameters on a validation split",
        description="Carve a validation split from the train part of the chosen protocol (the "
        "test part is never looked at), try parameter settings (a grid, --trials random draws, "
        "or a sequential search of --budget trials), rank them by --metric at --at, and write "
        "the best so 'train --params-file' and 'compare --tuned' reuse them. Without --grid, "
        "--budget and --trials search the backend's default space (declared with its parameters).",
    )
    add_data_options(p)
    p.add_argument("--model", "--backend", dest="backend", default="svd", help="backend name")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2|NAME=LOW..HIGH",
        help="values to try for a parameter (a LOW..HIGH range needs --trials or --budget); "
        "repeatable",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter every trial takes as given (not searched); repeatable",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--trials",
        type=positive_int,
        default=None,
        help="random search: this many draws (default: the whole grid)",
    )
    how.add_argument(
        "--budget",
        type=positive_int,
        default=None,
        metavar="N",
        help="sequential search (Optuna's TPE, each trial chosen from the earlier ones): N "
        f"trials; needs optuna ({INSTALL_HINT})",
    )
    p.add_argument(
        "--no-prune",
        action="store_true",
        help="with --budget: fit every trial in full (by default a trial of an iterative model "
        "is stopped after a third of its iterations when it is behind the median)",
    )
    p.add_argument(
        "--metric", default="ndcg", choices=METRIC_NAMES, help="what to maximise (default: ndcg)"
    )
    p.add_argument("--at", type=positive_int, default=10, help="the K of --metric (default 10)")
    add_weighting_and_seed(p)
    add_recency_option(p)
    p.add_argument(
        "--output",
        type=Path,
        default=Path("models"),
        help="folder for <backend>.params.json, or a .json path (default: models/)",
    )
    add_protocol_options(p)
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Output) -> None:
    backend = get_backend(args.backend)
    fixed = backend_params(args)
    searching = args.budget is not None or args.trials is not None
    if args.grid or not searching:
        space = parse_space(args.grid, backend)
        both = sorted(set(fixed) & {*space.choices, *space.ranges})
        if both:
            raise ParameterError(f"--param {both[0]}: also given to --grid; give it one way")
    else:
        space = default_search_space(backend).without(fixed)
    settings = []
    if args.budget is None:
        settings = [
            resolve_params(backend, {**s, **fixed})
            for s in candidates(space, backend, trials=args.trials, seed=args.seed)
        ]
    n_trials = args.budget if args.budget is not None else len(settings)
    protocol = protocol_from(args)
    with out.steps(2 + n_trials) as steps:
        steps.step(f"reading {args.data}")
        loaded = load_data(args)
        features = {"item_features": loaded.item_features, "user_features": loaded.user_features}
        check_features(protocol, **features)
        steps.step("carving a validation split from train")
        split = make_validation_split(loaded.events, protocol, args.seed, **features)
        n_items = split.train.n_items
        for warning in clamp_warnings(clamp_ks([*args.k, args.at], n_items)[1], n_items):
            warn(warning)
        args.at, args.k = min(args.at, n_items), [min(k, n_items) for k in args.k]
        options = {
            "metric": args.metric,
            "k": args.at,
            "ks": args.k,
            "weighting": args.weighting,
            "seed": args.seed,
            "n_threads": args.threads or 0,
            "on_trial": lambda n, p: steps.step(f"trial {n + 1}/{n_trials}: {p}"),
            "coldstart": loaded.coldstart,
            "recency": args.recency or 0.0,
            **features,
        }
        if args.budget is not None:
            search = sequential_search(
                split,
                args.backend,
                space,
                budget=args.budget,
                prune=not args.no_prune,
                fixed=fixed,
                **options,
            )
        else:
            method = "grid" if args.trials is None else "random"
            search = evaluate_settings(split, args.backend, settings, method=method, **options)
    trials = search.ranked(args.metric, args.at)
    best = trials[0]
    task = next(iter(best.evaluation.tasks), None)  # a cold-start split ranks by its first task
    target = f"{args.metric}@{args.at}"
    record = {
        "backend": args.backend,
        "params": dict(best.params),
        "weighting": args.weighting,
        "recency": args.recency or 0.0,
        "metric": target,
        "value": best.score(args.metric, args.at),
        "protocol": f"validation of {split.protocol}",
        "seed": args.seed,
        "data_fingerprint": loaded.report.fingerprint,
    }
    path = tuned_path(args.output, args.backend)
    with atomic_write(path) as handle:
        handle.write((json.dumps(record, indent=2) + "\n").encode())
    out.emit_json(
        {
            "data": data_payload(loaded.report),
            "backend": args.backend,
            "weighting": args.weighting,
            "recency": args.recency or 0.0,
            "seed": args.seed,
            "metric": target,
            "split": {**split_payload(split), "protocol": record["protocol"]},
            "best": {"params": record["params"], "value": record["value"]},
            "output": file_payload(path, format="json"),
            "trials": [t.evaluation.as_dict() for t in trials],
            "search": search.as_dict(),
        }
    )
    out.print(load_report_table(out, loaded.report))
    tried = [t.params for t in search.history]
    varied = [n for n in tried[0] if len({str(s[n]) for s in tried}) > 1] or list(tried[0])
    ks = sorted({*args.k, args.at})
    shown = [f"{m}@{k}" for k in ks for m in ("hit_rate", "recall", "ndcg")]
    rows = [
        (
            rank,
            *(t.params[n] for n in varied),
            *(
                t.evaluation.metrics[int(c.split("@")[1])][c.split("@")[0]]
                for c in [target, *shown]
            ),
            round(t.evaluation.fit_seconds, 3),
        )
        for rank, t in enumerate(trials, start=1)
    ]
    out.print(
        out.table(
            ["rank", *varied, f"{target} (sorted)", *shown, "fit s"],
            rows,
            title=f"{args.backend}: {trials_text(search)}, validation split of {split.protocol}"
            + (f"; metrics of task {task}" if task else ""),
            numeric=["rank", f"{target} (sorted)", *shown, "fit s"],
        )
    )
    shown_path = data_text(path)
    out.print(
        f"Best parameters: [bold]{shown_path}[/bold] (growthrec train --params-file {shown_path})"
    )


def trials_text(search: Search) -> str:
    """How many trials of which search, and how many were pruned or repeated."""
    n = len(search.history)
    method = {"tpe": "sequential (TPE)", "random": "random", "grid": "grid"}[search.method]
    text = f"{n} {method} trial{'s' if n != 1 else ''}"
    repeats = sum(t.state == "repeat" for t in search.history)
    if search.n_pruned:
        text += f" ({search.n_pruned} pruned at a third of their iterations)"
    if repeats:
        text += f" ({repeats} repeated an earlier setting)"
    return text
