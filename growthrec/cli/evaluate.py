"""``growthrec evaluate``: split, fit on train, rank the held-out items; beside the baseline."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from growthrec.cli.options import (
    add_backend_options,
    add_data_options,
    add_json_option,
    backend_params,
    columns_from,
    positive_int,
)
from growthrec.cli.output import Output
from growthrec.core.interactions import Interactions
from growthrec.core.metrics import METRIC_NAMES
from growthrec.core.split import Split, split_leave_one_out, split_ratio
from growthrec.evaluation import Evaluation, evaluate_backend
from growthrec.tables import read_interactions

__all__ = ["add_parser", "evaluation_table", "make_split"]

BASELINE = "popularity"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="offline evaluation of a backend beside the popularity baseline",
        description="Hold out part of each customer's purchases, fit on the rest, rank all items "
        "each customer has not bought and score the held-out ones (Hit rate, Precision, Recall, "
        "NDCG, MAP, MRR, coverage at each K).",
    )
    add_data_options(p)
    add_backend_options(p)
    p.add_argument(
        "--protocol",
        choices=("leave-one-out", "ratio"),
        default="leave-one-out",
        help="hold out one item per customer, or a share of them (default: leave-one-out)",
    )
    p.add_argument(
        "--by",
        choices=("auto", "latest", "random"),
        default="auto",
        help="leave-one-out: the latest item (needs times) or a random one; "
        "auto = latest when the data has times (default)",
    )
    p.add_argument(
        "--test-ratio", type=float, default=0.2, help="ratio protocol: share held out (default 0.2)"
    )
    p.add_argument(
        "--k", type=positive_int, nargs="+", default=[5, 10], help="cut-offs (default: 5 10)"
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the popularity baseline")
    add_json_option(p)
    p.set_defaults(run=run)


def make_split(data: Interactions, protocol: str, by: str, test_ratio: float, seed: int) -> Split:
    """The split a command line asks for."""
    if protocol == "ratio":
        return split_ratio(data, test_ratio=test_ratio, seed=seed)
    if by == "auto":
        by = "latest" if data.timestamps is not None else "random"
    return split_leave_one_out(data, by=by, seed=seed)


def evaluation_table(out: Output, evaluations: Sequence[Evaluation], ks: Sequence[int]) -> Table:
    """Metrics as rows, one column per backend and K."""
    columns = [f"{e.backend} @{k}" for k in ks for e in evaluations]
    rows = [(name, *(e.metrics[k][name] for k in ks for e in evaluations)) for name in METRIC_NAMES]
    rows.append(("fit seconds", *(round(e.fit_seconds, 3) for _ in ks for e in evaluations)))
    return out.table(["metric", *columns], rows, numeric=columns)


def evaluation_payload(
    split: Split, evaluations: Sequence[Evaluation], ks: Sequence[int]
) -> dict[str, Any]:
    return {
        "protocol": split.protocol,
        "ks": sorted(set(ks)),
        "test_users": split.n_test_users,
        "train_only_users": split.n_train_only,
        "results": [e.as_dict() for e in evaluations],
    }


def run(args: argparse.Namespace, out: Output) -> None:
    params = backend_params(args)
    backends = [(args.backend, params)]
    if not args.no_baseline and args.backend != BASELINE:
        backends.append((BASELINE, {}))
    ks = sorted(set(args.k))
    with out.steps(1 + len(backends)) as steps:
        steps.step(f"reading and splitting {args.data}")
        data = read_interactions(args.data, columns_from(args))
        split = make_split(data, args.protocol, args.by, args.test_ratio, args.seed)
        evaluations = []
        for name, backend_args in backends:
            steps.step(f"fitting and ranking: {name}")
            evaluations.append(
                evaluate_backend(
                    split, name, backend_args, ks=ks, weighting=args.weighting, seed=args.seed
                )
            )
    payload = {"data": str(args.data), **evaluation_payload(split, evaluations, ks)}
    out.emit_json(payload)
    out.print(
        f"[bold]{split.protocol}[/bold], seed {args.seed}: {split.n_test_users:,} customers "
        f"evaluated, {split.n_train_only:,} with too few purchases kept in train only"
    )
    out.print(evaluation_table(out, evaluations, ks))
