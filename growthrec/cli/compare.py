"""``growthrec compare``: several backends evaluated on one split, in one table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from growthrec.cli.evaluate import add_protocol_options, run_evaluation
from growthrec.cli.options import (
    add_data_options,
    add_json_option,
    add_list_options,
    add_weighting_and_seed,
)
from growthrec.cli.output import Output
from growthrec.errors import DataError, ParameterError
from growthrec.store.tuned import read_tuned, tuned_fingerprint, tuned_path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "compare",
        help="evaluate several backends on one split, in one table",
        description="Evaluate several backends on the same split and print one table of metrics "
        "and fit times. Parameters per backend: --param BACKEND.NAME=VALUE, or the files "
        "'growthrec tune' wrote (--tuned DIR). Every backend's lists go through the same rules "
        "and re-ranker (the list options), as 'recommend' would serve them.",
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
    add_weighting_and_seed(c)
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
    tuned_on: dict[Path, str] = {}
    if args.tuned:  # a backend without a tuned file keeps its defaults
        if not Path(args.tuned).exists():
            raise DataError(f"--tuned {args.tuned}: no such folder or file (run 'growthrec tune')")
        for name in names:
            path = tuned_path(args.tuned, name)
            if path.is_file():
                params[name].update(read_tuned(args.tuned, name)[1])
                fingerprint = tuned_fingerprint(path)
                if fingerprint is not None:
                    tuned_on[path] = fingerprint
    for item in args.param:
        scoped, sep, value = item.partition("=")
        backend, dot, key = scoped.partition(".")
        if not sep or not dot or backend not in params:
            raise ParameterError(
                f"--param {item!r}: expected BACKEND.NAME=VALUE with BACKEND one of --models"
            )
        params[backend][key.strip()] = value.strip()
    run_evaluation(args, out, [(n, params[n]) for n in names], args.weighting, tuned_on)
