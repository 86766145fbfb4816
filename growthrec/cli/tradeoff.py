"""``growthrec tradeoff``: each re-ranker over a range of strengths, a table, a plot, a report."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from growthrec.cli.evaluate import add_protocol_options, protocol_from
from growthrec.cli.options import (
    add_backend_options,
    add_data_options,
    add_json_option,
    add_list_options,
    list_spec_from,
    list_spec_text,
    load_data,
    load_report_table,
    model_choices,
)
from growthrec.cli.output import Output, data_text
from growthrec.cli.payloads import data_payload, file_payload, split_payload
from growthrec.errors import ParameterError
from growthrec.evaluation.protocols import COLD_PROTOCOLS, make_split, make_validation_split
from growthrec.evaluation.tradeoff import (
    DEFAULT_CURVES,
    DEFAULT_STRENGTHS,
    TRADEOFF_METRICS,
    parse_curve,
    sweep_tradeoff,
)

__all__ = ["add_parser", "parse_strengths"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tradeoff",
        help="accuracy against diversity, coverage and novelty, each re-ranker over its strength",
        description="Fit a backend on a validation split (carved from the train part) and on "
        "the test split, run each re-ranker (--rerankers) over a range of strengths "
        "(--strengths), and write a report: NDCG and Recall against coverage, intra-list "
        "diversity, Gini of exposure, long-tail share, novelty (and miscalibration with "
        "categories), one curve per re-ranker, the knee (Kneedle) marked; report.png, a "
        "self-contained report.html and report.json in --output. Each re-ranker's strength is "
        "chosen on validation (the most --choose-by gain losing at most --max-ndcg-loss of "
        "NDCG) and its test figures reported, with the paired standard error of the NDCG "
        "change. The lists go through the same pipeline as 'recommend' (--filter, --cap, ... "
        "apply to every point).",
    )
    add_data_options(p)
    add_backend_options(p, recency=True)
    p.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="parameters written by 'growthrec tune' (its backend unless --model is given; "
        "--param and --factors override single values)",
    )
    add_protocol_options(p)
    add_list_options(p)
    group = p.add_argument_group("the sweep")
    group.add_argument(
        "--rerankers",
        default=None,
        metavar="A,B+C",
        help="curves to draw: mmr, mmr-mean (MMR penalising the mean similarity), dpp, "
        "calibration, popularity, and compositions such as "
        "popularity+mmr (both at each strength) or popularity=0.1+mmr (a fixed penalty) "
        f"(default: {','.join(DEFAULT_CURVES)}; calibration only with categories)",
    )
    group.add_argument(
        "--strengths",
        type=parse_strengths,
        default=DEFAULT_STRENGTHS,
        metavar="X,Y,...",
        help="strengths in [0, 1] to run each curve at; 0 (the plain list) is always added "
        f"(default: {','.join(f'{s:g}' for s in DEFAULT_STRENGTHS)})",
    )
    group.add_argument(
        "--max-ndcg-loss",
        type=float,
        default=0.03,
        metavar="SHARE",
        help="the chosen strength loses at most this share of the plain list's NDCG on "
        "validation (default 0.03)",
    )
    group.add_argument(
        "--choose-by",
        choices=[m for m in TRADEOFF_METRICS],
        default="coverage",
        help="the metric whose gain the chosen strength maximises (default: coverage)",
    )
    group.add_argument(
        "--output",
        type=Path,
        default=Path("tradeoff"),
        metavar="DIR",
        help="folder for report.png, report.html and report.json (default: tradeoff/)",
    )
    p.set_defaults(k=[10], similarity=None, run=run)
    add_json_option(p)


def parse_strengths(text: str) -> tuple[float, ...]:
    """``"0,0.1,0.5"`` as strengths; one line naming a value that is not in [0, 1]."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} is not a number (give strengths in [0, 1], e.g. 0,0.1,0.3)"
            ) from None
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise argparse.ArgumentTypeError(
                f"{part.strip()} is outside [0, 1] (0 keeps the model's order, 1 is the "
                "re-ranker's objective alone)"
            )
        values.append(value)
    if not any(v > 0 for v in values):
        raise argparse.ArgumentTypeError("give at least one strength above 0, e.g. 0,0.1,0.3")
    return tuple(values)


def _check_options(args: argparse.Namespace) -> None:
    """Options of 'recommend' that the sweep itself sets, and protocols it cannot sweep."""
    if args.rerank != "none" or args.strength is not None or args.popularity_penalty:
        raise ParameterError(
            "--rerank, --strength and --popularity-penalty are what tradeoff sweeps: give the "
            "curves with --rerankers (e.g. mmr,popularity+mmr) and --strengths"
        )
    if args.coverage:
        raise ParameterError(
            "--coverage is what tradeoff sweeps: give it as a curve with --rerankers "
            "(e.g. coverage, or coverage=0.5+mmr-mean)"
        )
    if len(args.k) != 1:
        raise ParameterError(f"--k {' '.join(map(str, args.k))}: tradeoff takes one K, e.g. --k 10")
    if args.sampled is not None:
        raise ParameterError(
            "--sampled: the trade-off measures served lists over the whole catalogue; drop it"
        )
    if args.protocol in COLD_PROTOCOLS:
        raise ParameterError(
            f"--protocol {args.protocol}: tradeoff ranks warm customers over the whole "
            "catalogue; use leave-one-out, ratio or temporal"
        )
    if not (math.isfinite(args.max_ndcg_loss) and 0.0 <= args.max_ndcg_loss < 1.0):
        raise ParameterError(
            f"--max-ndcg-loss {args.max_ndcg_loss:g}: a share of NDCG in [0, 1), e.g. 0.03"
        )
    if args.output.exists() and not args.output.is_dir():
        raise ParameterError(f"--output {args.output}: is a file; give a folder for the report")


def run(args: argparse.Namespace, out: Output) -> None:
    from growthrec.evaluation.plots import check_plots_available, write_report

    _check_options(args)
    check_plots_available()
    backend, params, weighting, recency = model_choices(args)
    protocol = protocol_from(args)
    explicit = args.rerankers is not None
    texts = [t for t in (args.rerankers or ",".join(DEFAULT_CURVES)).split(",")]
    curves = [parse_curve(t) for t in texts]
    notes: list[str] = []
    with out.steps(3) as steps:
        steps.step(f"reading {args.data}")
        loaded = load_data(args)
        features = {"item_features": loaded.item_features, "user_features": loaded.user_features}
        steps.step(f"splitting: {protocol.name}, and a validation split inside its train part")
        split = make_split(loaded.events, protocol, args.seed, **features)
        validation = make_validation_split(loaded.events, protocol, args.seed, **features)
        column = args.category_col or "category"
        has_categories = column in loaded.attributes
        if args.similarity is None:
            # without categories: the purchase vectors, which every backend has and which are
            # what diversity is measured on there
            args.similarity = "categories" if has_categories else "purchases"
        if not explicit and not has_categories:
            curves = [c for c in curves if c.kind != "calibration"]
            notes.append(
                f"calibration left out: the catalogue has no {column!r} column (name one with "
                "--category-col)"
            )
        window, args.window = args.window, None  # the sweep sets it on dpp curves
        options = list_spec_from(args, args.k[0], split.train.items, loaded.attributes)
        args.window = window
        steps.step("sweeping")
        result = sweep_tradeoff(
            split,
            validation,
            backend,
            params,
            curves=curves,
            strengths=args.strengths,
            k=args.k[0],
            spec=options.spec,
            similarity=args.similarity,
            window=window,
            weighting=weighting,
            recency=recency,
            seed=args.seed,
            n_threads=args.threads or 0,
            max_ndcg_loss=args.max_ndcg_loss,
            choose_by=args.choose_by,
            item_attributes=loaded.attributes,
            coldstart=loaded.coldstart,
            on_step=steps.step,
            **features,
        )
        context = {
            "data": data_payload(loaded.report),
            "split": split_payload(split),
            "validation_split": split_payload(validation),
            "list_spec": options.payload(with_purchases=False),
        }
        report = write_report(result, args.output, extra=context)
    out.emit_json(
        {
            **context,
            **result.as_dict(),
            "report": {
                "png": file_payload(report.png, format="png"),
                "html": file_payload(report.html, format="html"),
                "json": file_payload(report.json, format="json"),
            },
            "notes": notes,
        }
    )
    _print(out, loaded, result, options, report, notes)


def _print(
    out: Output, loaded: Any, result: Any, options: Any, report: Any, notes: list[str]
) -> None:
    from growthrec.evaluation.plots import chosen_rows

    out.print(load_report_table(out, loaded.report))
    test, validation = result.test, result.validation
    out.print(
        f"[bold]{data_text(result.backend)}[/bold] "
        f"({data_text(', '.join(f'{k}={v}' for k, v in result.params.items()) or 'defaults')}); "
        f"test {data_text(test.protocol)}: {test.n_users:,} customers, validation "
        f"{validation.n_users:,}; top {result.k} from {result.candidates} candidates, "
        f"similarity {data_text(result.similarity)}; plain NDCG@{result.k} "
        f"{test.plain['ndcg']:.4f} (test), {validation.plain['ndcg']:.4f} (validation)"
    )
    if options.spec.filters or options.spec.caps or options.spec.allow or options.spec.deny:
        out.print(f"rules on every list: {data_text(list_spec_text(options.spec))}")
    header, rows = chosen_rows(result)
    out.print(
        out.table(
            header,
            rows,
            title=f"Strengths chosen on validation (most {result.choose_by} within "
            f"{result.max_ndcg_loss:.0%} NDCG loss), measured on test; Δ relative to the plain "
            "list, ± one paired standard error",
            numeric=header[1:],
        )
    )
    for note in notes:
        out.print(f"note: {note}")
    out.print(
        f"Report: [bold]{data_text(report.html)}[/bold] (figure {data_text(report.png)}, "
        f"every point in {data_text(report.json)})"
    )
