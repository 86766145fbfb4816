"""``growthrec tune``: search backend parameters on a validation split carved from train."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from growthrec.atomic import atomic_write
from growthrec.backends.registry import get_backend
from growthrec.cli.evaluate import add_protocol_options, clamp_warnings, protocol_from
from growthrec.cli.notes import warn
from growthrec.cli.options import (
    add_data_options,
    add_json_option,
    add_weighting_and_seed,
    load_data,
    load_report_table,
    positive_int,
)
from growthrec.cli.output import Output, data_text
from growthrec.cli.payloads import data_payload, file_payload, split_payload
from growthrec.core.metrics import METRIC_NAMES
from growthrec.errors import DataError
from growthrec.evaluation import clamp_ks
from growthrec.protocols import make_validation_split
from growthrec.tuning import candidates, parse_space, run_trials

__all__ = ["add_parser", "read_tuned", "tuned_fingerprint", "tuned_path", "tuned_weighting"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="search backend parameters on a validation split",
        description="Carve a validation split from the train part of the chosen protocol (the "
        "test part is never looked at), try parameter settings (a grid, or --trials random "
        "draws), rank them by --metric at --at, and write the best so 'train --params-file' "
        "and 'compare --tuned' reuse them.",
    )
    add_data_options(p)
    p.add_argument("--model", "--backend", dest="backend", default="svd", help="backend name")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2|NAME=LOW..HIGH",
        help="values to try for a parameter (a LOW..HIGH range needs --trials); repeatable",
    )
    p.add_argument(
        "--trials",
        type=positive_int,
        default=None,
        help="random search: this many draws (default: the whole grid)",
    )
    p.add_argument(
        "--metric", default="ndcg", choices=METRIC_NAMES, help="what to maximise (default: ndcg)"
    )
    p.add_argument("--at", type=positive_int, default=10, help="the K of --metric (default 10)")
    add_weighting_and_seed(p)
    p.add_argument(
        "--output",
        type=Path,
        default=Path("models"),
        help="folder for <backend>.params.json, or a .json path (default: models/)",
    )
    add_protocol_options(p)
    add_json_option(p)
    p.set_defaults(run=run)


def tuned_path(output: Path | str, backend: str) -> Path:
    """``output`` itself when it names a .json file, else ``output/<backend>.params.json``."""
    output = Path(output)
    return output if output.suffix == ".json" else output / f"{backend}.params.json"


def read_tuned(path: Path | str, backend: str | None = None) -> tuple[str, dict[str, Any]]:
    """The backend and parameters a 'tune' run wrote (a file, or a folder of such files)."""
    source = Path(path)
    if source.is_dir() and backend is not None:
        source = tuned_path(source, backend)
    try:
        content = json.loads(source.read_text())
        params = content["params"]
        named = content["backend"]
    except FileNotFoundError:
        raise DataError(f"{source}: no such parameters file (run 'growthrec tune')") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{source}: not a parameters file written by 'growthrec tune' ({exc})"
        ) from None
    if backend is not None and named != backend:
        raise DataError(f"{source}: holds parameters of backend {named!r}, not {backend!r}")
    return named, dict(params)


def tuned_fingerprint(path: Path | str) -> str | None:
    """The data fingerprint a 'tune' run recorded (None for an older or hand-written file)."""
    try:
        value = json.loads(Path(path).read_text()).get("data_fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def tuned_weighting(path: Path | str) -> str | None:
    """The weighting a 'tune' run used (None for an older or hand-written file)."""
    try:
        return json.loads(Path(path).read_text()).get("weighting")
    except (OSError, ValueError, AttributeError):
        return None


def run(args: argparse.Namespace, out: Output) -> None:
    backend = get_backend(args.backend)
    space = parse_space(args.grid, backend)
    settings = candidates(space, backend, trials=args.trials, seed=args.seed)
    protocol = protocol_from(args)
    with out.steps(2 + len(settings)) as steps:
        steps.step(f"reading {args.data}")
        loaded = load_data(args)
        steps.step("carving a validation split from train")
        split = make_validation_split(loaded.events, protocol, args.seed)
        n_items = split.train.n_items
        for warning in clamp_warnings(clamp_ks([*args.k, args.at], n_items)[1], n_items):
            warn(warning)
        args.at, args.k = min(args.at, n_items), [min(k, n_items) for k in args.k]
        trials = run_trials(
            split,
            args.backend,
            settings,
            metric=args.metric,
            k=args.at,
            ks=args.k,
            weighting=args.weighting,
            seed=args.seed,
            n_threads=args.threads or 0,
            on_trial=lambda n, p: steps.step(f"trial {n + 1}/{len(settings)}: {p}"),
        )
    best = trials[0]
    target = f"{args.metric}@{args.at}"
    record = {
        "backend": args.backend,
        "params": dict(best.params),
        "weighting": args.weighting,
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
            "seed": args.seed,
            "metric": target,
            "split": {**split_payload(split), "protocol": record["protocol"]},
            "best": {"params": record["params"], "value": record["value"]},
            "output": file_payload(path, format="json"),
            "trials": [t.evaluation.as_dict() for t in trials],
        }
    )
    out.print(load_report_table(out, loaded.report))
    varied = [n for n in settings[0] if len({str(s[n]) for s in settings}) > 1] or list(settings[0])
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
            title=f"{args.backend}: {len(trials)} trials, validation split of {split.protocol}",
            numeric=["rank", f"{target} (sorted)", *shown, "fit s"],
        )
    )
    shown_path = data_text(path)
    out.print(
        f"Best parameters: [bold]{shown_path}[/bold] (growthrec train --params-file {shown_path})"
    )
