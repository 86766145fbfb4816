"""``growthrec retrain``: refit the store's champion on new data; promote only if not worse.

Exit status: 0 when a decision was made and recorded (promoted, rejected, refused) or the data
was judged before (unchanged); 1 for an error (unreadable data, a damaged store, a failed fit:
nothing recorded); 75 when another retrain holds the store's lock. A scheduler tells a refusal
from an error by the status (0 vs 1) and reads what was decided from ``--json``'s ``outcome``
(or ``growthrec models show``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from growthrec.cli.options import (
    add_backend_options,
    add_data_options,
    add_json_option,
    given_choices,
    load_data,
)
from growthrec.cli.output import Output, data_text
from growthrec.errors import ParameterError
from growthrec.evaluation.retraining import NewData, Thresholds, retrain
from growthrec.store.versions import champion_entry, lock_store, read_manifest

__all__ = ["add_parser", "recipe_from", "run"]

_DEFAULTS = Thresholds()


def _data_dests() -> dict[str, argparse.Action]:
    """The options of ``add_data_options`` (but --data): what a store's recipe records."""
    probe = argparse.ArgumentParser(add_help=False)
    add_data_options(probe)
    return {a.dest: a for a in probe._actions if a.dest != "data"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retrain",
        help="refit the store's champion on new data; promote it only if not worse",
        description="Retrain a model store on a new transactions file: data guardrails, a "
        "challenger warm-started from the champion, judged on the latest days by a paired "
        "bootstrap of NDCG@10, promoted only if not worse. The first run creates the store "
        "(name --model and how to read the data); later runs need only --store and --data. "
        "Exit 0: a decision was recorded (see 'outcome'); 1: an error; 75: the store is busy.",
    )
    p.add_argument("--store", type=Path, required=True, help="the model store directory")
    add_data_options(p)
    add_backend_options(p, recency=True)
    p.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="parameters written by 'growthrec tune' (with --retune: the tuned recipe to try)",
    )
    group = p.add_argument_group("data guardrails (against the champion's data)")
    group.add_argument(
        "--max-shrink",
        type=float,
        default=_DEFAULTS.max_shrink,
        help="refuse when rows, customers or items fall by more than this share "
        f"(default {_DEFAULTS.max_shrink:g})",
    )
    group.add_argument(
        "--min-recent-rate",
        type=float,
        default=_DEFAULTS.min_recent_rate,
        help="refuse when the rows per day since the champion's data ended are under this "
        f"times those of as many days before (default {_DEFAULTS.min_recent_rate:g})",
    )
    group.add_argument(
        "--max-item-shift",
        type=float,
        default=_DEFAULTS.max_item_shift,
        help="refuse when the shares of buyers per item move by more than this total "
        f"variation distance (default {_DEFAULTS.max_item_shift:g})",
    )
    group.add_argument(
        "--min-repeat-ratio",
        type=float,
        default=_DEFAULTS.min_repeat_ratio,
        help="refuse when the share of returning customers' purchases that are repeats falls "
        f"under this times the earlier period's (default {_DEFAULTS.min_repeat_ratio:g})",
    )
    group.add_argument(
        "--min-history-match",
        type=float,
        default=_DEFAULTS.min_history_match,
        help="refuse when the data holds less than this share of the champion's purchases "
        f"over the days both cover (default {_DEFAULTS.min_history_match:g})",
    )
    group.add_argument(
        "--window-days",
        type=float,
        default=_DEFAULTS.window_days,
        help="the recent checks compare the latest N days since the champion's data ended "
        f"with as many days before them (default {_DEFAULTS.window_days:g})",
    )
    judge = p.add_argument_group("judgement (champion against challenger)")
    judge.add_argument(
        "--holdout-days",
        type=float,
        default=_DEFAULTS.holdout_days,
        help="judge on the last N days of the data, never before the champion's data ended "
        f"(default {_DEFAULTS.holdout_days:g})",
    )
    judge.add_argument(
        "--min-holdout-customers",
        type=int,
        default=_DEFAULTS.min_holdout_customers,
        help=f"refuse to judge on fewer (default {_DEFAULTS.min_holdout_customers})",
    )
    judge.add_argument(
        "--epsilon",
        type=float,
        default=_DEFAULTS.epsilon,
        help="promote when the lower confidence bound of the NDCG@10 difference is above "
        f"-epsilon (default {_DEFAULTS.epsilon:g})",
    )
    judge.add_argument(
        "--confidence",
        type=float,
        default=_DEFAULTS.confidence,
        help=f"one-sided confidence of that bound (default {_DEFAULTS.confidence:g})",
    )
    judge.add_argument(
        "--bootstrap",
        type=int,
        default=_DEFAULTS.n_resamples,
        metavar="N",
        help=f"bootstrap resamples (default {_DEFAULTS.n_resamples})",
    )
    judge.add_argument(
        "--max-coverage-drop",
        type=float,
        default=_DEFAULTS.max_coverage_drop,
        help="reject when the challenger's catalogue coverage is under (1 - this) x the "
        f"champion's (default {_DEFAULTS.max_coverage_drop:g})",
    )
    judge.add_argument(
        "--max-empty-increase",
        type=float,
        default=_DEFAULTS.max_empty_increase,
        help="reject when the share of holdout customers without a list grows by more "
        f"(default {_DEFAULTS.max_empty_increase:g})",
    )
    fit = p.add_argument_group("challenger")
    fit.add_argument(
        "--retune",
        action="store_true",
        help="fit afresh (no warm start), with --params-file's parameters if given",
    )
    fit.add_argument(
        "--warm-iterations",
        type=int,
        default=None,
        help="sweeps of a warm-started fit (default: a third of the champion's, at least 2)",
    )
    p.add_argument(
        "--force", action="store_true", help="judge data whose fingerprint was judged before"
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another retrain to finish (default 0: exit 75 at once)",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def recipe_from(args: argparse.Namespace) -> dict[str, Any]:
    """How the data was read (every data option but --data), as JSON values."""
    out = {}
    for dest in _data_dests():
        value = getattr(args, dest)
        out[dest] = str(Path(value).resolve()) if isinstance(value, Path) else value
    return out


def _apply_recipe(args: argparse.Namespace, recipe: dict[str, Any]) -> None:
    """Read the data as the champion was: refuse a data option that says otherwise."""
    dests = _data_dests()
    changed = [
        dests[d].option_strings[0]
        for d, action in dests.items()
        if getattr(args, d) != action.default
        and d in recipe
        and _plain(getattr(args, d)) != recipe[d]
    ]
    if changed:
        raise ParameterError(
            f"{', '.join(changed)}: the store reads data as its champion was read (recorded in "
            "its manifest); leave these options out, or start a new store"
        )
    for dest, action in dests.items():
        if dest in recipe:
            value = recipe[dest]
            setattr(args, dest, action.type(value) if action.type is Path and value else value)


def _plain(value: Any) -> Any:
    return str(Path(value).resolve()) if isinstance(value, Path) else value


def run(args: argparse.Namespace, out: Output) -> None:
    store: Path = args.store
    manifest = read_manifest(store) if (store / "manifest.json").exists() else None
    champion = champion_entry(manifest) if manifest else None
    backend, params, weighting, recency = given_choices(args)
    if champion is not None:
        if backend is not None and backend != champion["backend"]:
            raise ParameterError(
                f"--model {backend}: the store's champion is {champion['backend']}; a store "
                "keeps one backend (start a new store for another)"
            )
        _apply_recipe(args, champion["recipe"])
    elif backend is None:
        raise ParameterError(
            f"{store}: no champion yet; the first retrain names the backend with --model "
            "(and the columns, cleaning and features to read the data with)"
        )
    thresholds = Thresholds(
        max_shrink=args.max_shrink,
        min_recent_rate=args.min_recent_rate,
        max_item_shift=args.max_item_shift,
        min_repeat_ratio=args.min_repeat_ratio,
        min_history_match=args.min_history_match,
        window_days=args.window_days,
        holdout_days=args.holdout_days,
        min_holdout_customers=args.min_holdout_customers,
        epsilon=args.epsilon,
        confidence=args.confidence,
        n_resamples=args.bootstrap,
        max_coverage_drop=args.max_coverage_drop,
        max_empty_increase=args.max_empty_increase,
    )
    if args.warm_iterations is not None and args.warm_iterations < 1:
        raise ParameterError(f"--warm-iterations {args.warm_iterations}: expected at least 1")
    with out.steps(2) as steps:
        steps.step(f"reading {args.data}")
        loaded = load_data(args)
        new = NewData(
            loaded.events,
            loaded.report,
            loaded.attributes,
            loaded.item_features,
            loaded.user_features,
            loaded.coldstart,
        )
        steps.step("retraining")
        with lock_store(store, wait=args.wait):
            decision = retrain(
                store,
                new,
                recipe_from(args),
                thresholds=thresholds,
                backend=backend,
                params=params,
                weighting=weighting,
                recency=recency,
                seed=args.seed if champion is None else None,
                retune=args.retune,
                warm_iterations=args.warm_iterations,
                force=args.force,
            )
    out.emit_json({"store": str(store), **decision})
    _print(out, decision)


def _print(out: Output, decision: dict[str, Any]) -> None:
    if decision["checks"]:
        rows = [
            (c["name"], f"{c['value']:g}", f"{c['limit']:g}", "ok" if c["passed"] else "REFUSED")
            for c in decision["checks"]
        ]
        out.print(out.table(["check", "value", "limit", ""], rows, title="Data guardrails"))
    figures = decision["judgement"]
    if figures and "ndcg" in figures:
        k, ndcg, coverage, empty = (
            figures["k"],
            figures["ndcg"],
            figures["coverage"],
            figures["empty_lists"],
        )
        rows = [
            ("customers judged", f"{figures['judged_customers']:,}"),
            (
                f"NDCG@{k} champion / challenger",
                f"{ndcg['champion']:.4f} / {ndcg['challenger']:.4f}",
            ),
            (
                "difference (lower bound)",
                f"{figures['difference']:+.4f} ({figures['lower_bound']:+.4f})",
            ),
            ("coverage", f"{coverage['champion']:.2%} / {coverage['challenger']:.2%}"),
            ("customers without a list", f"{empty['champion']:.2%} / {empty['challenger']:.2%}"),
            ("overlap of the lists", f"{figures['overlap']:.2%}"),
        ]
        out.print(out.table(["", "champion / challenger"], rows, title="Judgement"))
    version = f" ({decision['version']})" if decision["version"] else ""
    out.print(f"{decision['outcome']}{version}: {data_text(decision['reason'])}")
