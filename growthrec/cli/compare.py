"""``growthrec compare``: several backends evaluated on one split, in one table."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from growthrec.backends.contract import resolve_params
from growthrec.backends.registry import get_backend
from growthrec.cli.evaluate import (
    add_protocol_options,
    clamp_warnings,
    diversity_basis,
    evaluation_table,
    protocol_from,
    run_evaluation,
    run_payload,
)
from growthrec.cli.notes import warn
from growthrec.cli.options import (
    add_data_options,
    add_json_option,
    add_list_options,
    add_recency_option,
    add_weighting_and_seed,
    list_spec_from,
    list_spec_text,
    load_data,
    load_report_table,
    positive_int,
    short_lists_note,
)
from growthrec.cli.output import Output, data_text
from growthrec.cli.payloads import split_payload
from growthrec.cli.tune import trials_text
from growthrec.errors import DataError, ParameterError
from growthrec.evaluation.comparison import (
    PairedDifference,
    evaluate_per_customer,
    paired_difference,
    rank_backends,
)
from growthrec.evaluation.protocols import check_features, make_split, make_validation_split
from growthrec.evaluation.runs import clamp_ks, plain_ranking
from growthrec.evaluation.tuning import (
    INSTALL_HINT,
    Search,
    SearchSpace,
    default_search_space,
    sequential_search,
)
from growthrec.store.tuned import read_tuned, tuned_path

__all__ = ["DEFAULT_BUDGET", "add_parser"]

#: Trials per backend of ``compare --tune`` without ``--budget``.
DEFAULT_BUDGET = 20


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "compare",
        help="evaluate several backends on one split, in one table",
        description="Evaluate several backends on the same split and print one table of metrics "
        "and fit times. Parameters per backend: --param BACKEND.NAME=VALUE, or the files "
        "'growthrec tune' wrote (--tuned DIR). Every backend's lists go through the same rules "
        "and re-ranker (the list options), as 'recommend' would serve them. With --tune, each "
        "backend is first tuned on a validation split carved from train (as 'tune' does), then "
        "all are compared on the test split: the winner, its lead in NDCG over the runner-up "
        "and a paired bootstrap interval of that lead over the test customers.",
    )
    add_data_options(c)
    c.add_argument(
        "--models",
        required=True,
        metavar="A,B,C",
        help="comma-separated backend names, e.g. svd,als,itemknn,ease,popularity",
    )
    c.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="BACKEND.NAME=VALUE",
        help="a parameter of one backend, e.g. als.factors=128; repeatable",
    )
    c.add_argument(
        "--tuned",
        type=str,
        default=None,
        metavar="DIR",
        help="use <backend>.params.json files written by 'growthrec tune' from this folder",
    )
    tuning = c.add_argument_group("tuning (--tune)")
    tuning.add_argument(
        "--tune",
        action="store_true",
        help="tune every backend on a validation split first (a sequential search of its "
        f"default space; needs optuna: {INSTALL_HINT}); --param values stay fixed",
    )
    tuning.add_argument(
        "--budget",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"with --tune: trials per backend (default {DEFAULT_BUDGET})",
    )
    tuning.add_argument(
        "--at",
        type=positive_int,
        default=10,
        help="with --tune: the K of the NDCG tuned for and compared (default 10)",
    )
    tuning.add_argument(
        "--no-prune", action="store_true", help="with --tune: fit every trial in full"
    )
    tuning.add_argument(
        "--bootstrap",
        type=positive_int,
        default=2000,
        metavar="N",
        help="with --tune: bootstrap resamples of the test customers (default 2000)",
    )
    add_weighting_and_seed(c)
    add_recency_option(c)
    add_protocol_options(c)
    add_list_options(c)
    add_json_option(c)
    c.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace, out: Output) -> None:
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if not names:
        raise ParameterError("--models: give backend names, e.g. --models svd,popularity")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ParameterError(
            f"--models {args.models}: {', '.join(twice)} named more than once; give each "
            "backend once (one set of parameters each)"
        )
    params: dict[str, dict[str, Any]] = {n: {} for n in names}
    if args.budget is not None and not args.tune:
        raise ParameterError(f"--budget {args.budget}: the trials of --tune; add --tune")
    if args.tune and args.tuned:
        raise ParameterError(
            "--tune and --tuned: give one (--tune searches afresh; --tuned reuses 'tune' files)"
        )
    tuned_on: dict[Path, str] = {}
    recency = {name: args.recency or 0.0 for name in names}
    if args.tuned:  # a backend without a tuned file keeps its defaults
        if not Path(args.tuned).exists():
            raise DataError(f"--tuned {args.tuned}: no such folder or file (run 'growthrec tune')")
        for name in names:
            path = tuned_path(args.tuned, name)
            if path.is_file():
                tuned = read_tuned(path, name)
                params[name].update(tuned.params)
                if args.recency is None:
                    recency[name] = tuned.recency or 0.0
                if tuned.fingerprint is not None:
                    tuned_on[path] = tuned.fingerprint
    for item in args.param:
        scoped, sep, value = item.partition("=")
        backend, dot, key = scoped.partition(".")
        if not sep or not dot or backend not in params:
            raise ParameterError(
                f"--param {item!r}: expected BACKEND.NAME=VALUE with BACKEND one of --models"
            )
        params[backend][key.strip()] = value.strip()
    if args.tune:
        run_tuned_comparison(args, out, params)
        return
    backends = [(n, params[n]) for n in names]
    run_evaluation(args, out, backends, args.weighting, tuned_on, recency)


def run_tuned_comparison(
    args: argparse.Namespace, out: Output, pinned: Mapping[str, Mapping[str, Any]]
) -> None:
    """Tune each backend on the validation split, then compare them all on the test split."""
    protocol = protocol_from(args)
    budget = DEFAULT_BUDGET if args.budget is None else args.budget
    if protocol.name in ("cold-items", "cold-users"):
        raise ParameterError(
            f"--tune with --protocol {protocol.name}: the per-customer comparison needs a warm "
            "split; tune each backend with 'growthrec tune', then 'compare --tuned'"
        )
    spaces = {}
    for name, given in pinned.items():
        backend = get_backend(name)
        resolve_params(backend, given)  # a misspelt --param fails before any fit
        space = default_search_space(backend)
        spaces[name] = SearchSpace(
            {n: v for n, v in space.choices.items() if n not in given},
            {n: v for n, v in space.ranges.items() if n not in given},
            space.log,
        )
    searched = [n for n, s in spaces.items() if s.choices or s.ranges]
    n_steps = 4 + len(searched) * budget + len(spaces)
    with out.steps(n_steps) as steps:
        steps.step(f"reading {args.data}")
        loaded = load_data(args)
        features = {"item_features": loaded.item_features, "user_features": loaded.user_features}
        check_features(protocol, **features)
        steps.step("carving a validation split from train")
        validation = make_validation_split(loaded.events, protocol, args.seed, **features)
        steps.step(f"splitting: {protocol.name}")
        split = make_split(loaded.events, protocol, args.seed, **features)
        ks, clamped = clamp_ks([*args.k, args.at], split.train.n_items)
        at = min(args.at, split.train.n_items)
        options = list_spec_from(args, max(ks), split.train.items, loaded.attributes)
        warnings = clamp_warnings(clamped, split.train.n_items)
        for warning in warnings:
            warn(warning)
        searches: dict[str, Search | None] = {}
        chosen: dict[str, dict[str, Any]] = {}
        for name in spaces:
            if name not in searched:
                searches[name], chosen[name] = None, dict(pinned[name])
                continue
            search = sequential_search(
                validation,
                name,
                spaces[name],
                budget=budget,
                metric="ndcg",
                k=min(at, validation.train.n_items),
                ks=[min(at, validation.train.n_items)],
                weighting=args.weighting,
                seed=args.seed,
                n_threads=args.threads or 0,
                prune=not args.no_prune,
                fixed=pinned[name],
                recency=args.recency or 0.0,
                on_trial=lambda n, p, name=name: steps.step(
                    f"tuning {name}: trial {n + 1}/{budget}"
                ),
                coldstart=loaded.coldstart,
                **features,
            )
            searches[name] = search
            chosen[name] = dict(search.ranked("ndcg", at)[0].params)
        steps.step("measuring diversity's basis")
        basis = diversity_basis(split, loaded.attributes, args.seed, options.spec.category)
        evaluations, per_customer = [], {}
        for name in spaces:
            steps.step(f"fitting and ranking on test: {name}")
            evaluation, ndcg = evaluate_per_customer(
                split,
                name,
                chosen[name],
                k=at,
                ks=ks,
                weighting=args.weighting,
                seed=args.seed,
                n_threads=args.threads or 0,
                sampled_negatives=args.sampled,
                coldstart=loaded.coldstart,
                item_attributes=loaded.attributes,
                spec=options.spec,
                recency=args.recency or 0.0,
                **features,
                **basis,
            )
            evaluations.append(evaluation)
            per_customer[name] = ndcg
    ranking = rank_backends(per_customer)
    paired = None
    if len(ranking) > 1:
        paired = paired_difference(
            (ranking[0], per_customer[ranking[0]]),
            (ranking[1], per_customer[ranking[1]]),
            k=at,
            n_resamples=args.bootstrap,
            seed=args.seed,
        )
    payload = {
        **run_payload(loaded, split, evaluations, ks, options, basis, clamped, warnings),
        "tuning": {
            "split": {**split_payload(validation), "protocol": f"validation of {split.protocol}"},
            "metric": f"ndcg@{at}",
            "budget": budget,
            "backends": [
                {
                    "backend": name,
                    "params": chosen[name],
                    "value": None if searches[name] is None else _best_value(searches[name], at),
                    "search": None if searches[name] is None else searches[name].as_dict(),
                }
                for name in spaces
            ],
        },
        "comparison": {
            "metric": f"ndcg@{at}",
            "ranking": ranking,
            "paired": None if paired is None else paired.as_dict(),
        },
    }
    out.emit_json(payload)
    out.print(load_report_table(out, loaded.report))
    rows = [
        (
            name,
            "defaults" if searches[name] is None else trials_text(searches[name]),
            "-" if searches[name] is None else _best_value(searches[name], at),
            ", ".join(
                f"{k}={_short(v)}"
                for k, v in chosen[name].items()
                if k in pinned[name] or k in spaces[name].choices or k in spaces[name].ranges
            )
            or "defaults",
        )
        for name in spaces
    ]
    out.print(
        out.table(
            ["backend", "tuning", f"validation ndcg@{at}", "parameters chosen"],
            rows,
            title=f"Tuned on the validation split of {split.protocol} (seed {args.seed})",
            numeric=[f"validation ndcg@{at}"],
        )
    )
    out.print(
        f"[bold]{data_text(split.protocol)}[/bold], seed {args.seed}, "
        f"{data_text(evaluations[0].ranking)} ranking: {split.n_test_users:,} customers "
        f"evaluated, {split.n_train_only:,} kept in train only"
    )
    if not plain_ranking(options.spec):
        out.print(f"lists: {data_text(list_spec_text(options.spec))}")
    out.print(evaluation_table(out, evaluations, ks))
    for e in evaluations:
        note = short_lists_note(e.n_short_lists, e.n_users, max(ks))
        if note:
            out.print(f"{e.backend}: {note}")
    out.print(_winner_line(paired, ranking, per_customer, at))


def _best_value(search: Search, k: int) -> float:
    return search.ranked("ndcg", k)[0].score("ndcg", k)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _winner_line(
    paired: PairedDifference | None,
    ranking: list[str],
    per_customer: Mapping[str, Any],
    k: int,
) -> str:
    """Who won on test, by how much, and the interval of the lead over the runner-up."""
    best = float(per_customer[ranking[0]].mean())
    if paired is None:
        return f"Only {ranking[0]} was compared: NDCG@{k} {best:.4f} on test."
    relative = "" if paired.relative is None else f" ({paired.relative:+.1%})"
    return (
        f"Winner on test: [bold]{paired.winner}[/bold], NDCG@{k} {best:.4f} against "
        f"{paired.runner_up}'s {float(per_customer[paired.runner_up].mean()):.4f}: "
        f"{paired.difference:+.4f}{relative}; {paired.confidence:.0%} interval "
        f"{paired.low:+.4f} to {paired.high:+.4f} (paired bootstrap over "
        f"{paired.n_customers:,} test customers, {paired.n_resamples:,} resamples)"
        + ("; the interval holds 0: not a clear win" if paired.low <= 0 else "")
    )
