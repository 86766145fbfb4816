"""``growthrec spark-train``: fit ``spark`` on Spark from CSV/Parquet files, save the model."""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs

from growthrec.cli.options import (
    add_backend_options,
    add_cleaning_options,
    add_json_option,
    backend_params,
    data_options,
)
from growthrec.cli.output import Output, human_bytes
from growthrec.cli.payloads import data_payload
from growthrec.cli.train import model_path_for, model_rows, model_summary
from growthrec.core.interactions import IdMap
from growthrec.data.presets import PRESETS, Preset, catalog_for
from growthrec.errors import DataError, ParameterError
from growthrec.spark import BACKEND, DEFAULT_MASTER, SparkLoadReport, spark_training
from growthrec.store.modelfile import save_model

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spark-train",
        help="train implicit ALS on Spark, from files one machine cannot hold",
        description="Read transactions with Spark (local or on a cluster), clean them as "
        "'growthrec train' does, fit Spark's implicit ALS and write the same .npz model file as "
        "every backend (backend spark): recommend, evaluate and serving need no Spark. "
        'Needs pyspark and Java: pip install "growthrec[spark]".',
    )
    data = p.add_argument_group("input data (read by Spark)")
    data.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="PATH",
        help="transactions: a CSV (.csv, .csv.gz) or Parquet file, directory or glob that Spark "
        "can read (a local path, hdfs://, s3a://, gs://, ...); repeat for several",
    )
    data.add_argument(
        "--format",
        choices=("csv", "parquet"),
        default=None,
        help="the files' format (default: from the names; needed for a directory without one)",
    )
    data.add_argument(
        "--preset", default=None, help=f"column options of a known dataset: {', '.join(PRESETS)}"
    )
    data.add_argument("--user-col", default=None, help="user (customer) id column (user_id)")
    data.add_argument("--item-col", default=None, help="item (product) id column (item_id)")
    data.add_argument(
        "--weight-col", default=None, help="weight column, e.g. a quantity ('quantity' if present)"
    )
    data.add_argument(
        "--time-col",
        default=None,
        help="event time column, ISO date/time or Unix seconds ('timestamp' if present)",
    )
    data.add_argument(
        "--catalog",
        type=Path,
        default=None,
        help="item catalogue file on this machine (default: the preset's, or items.csv beside "
        "a single local --data, if any)",
    )
    data.add_argument(
        "--catalog-item-col", default=None, help="item id column of the catalogue (item_id)"
    )
    add_cleaning_options(p, "cleaning (as 'growthrec train'; each rule's rows are reported)")
    spark = p.add_argument_group("Spark")
    spark.add_argument(
        "--master",
        default=None,
        help=f"Spark master URL: local[*], local[4], spark://host:7077, yarn, k8s://... "
        f"(default: {DEFAULT_MASTER})",
    )
    spark.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting, e.g. spark.executor.memory=8g or spark.driver.memory=8g; repeatable",
    )
    spark.add_argument(
        "--checkpoint-dir",
        default=None,
        metavar="DIR",
        help="a directory all executors can write (hdfs://, s3a://, ...) for reliable "
        "checkpoints (k-core rounds; ALS every 10 iterations)",
    )
    add_backend_options(p, model_flag=False)
    p.add_argument(
        "--output",
        type=Path,
        default=Path("models"),
        help=f"a directory (writes {BACKEND}.npz in it) or a .npz path (default: models/)",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def spark_conf(items: list[str]) -> dict[str, str]:
    """``--conf KEY=VALUE`` pairs as a dict (a later value for a key wins)."""
    conf: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(
                f"--conf {item!r}: expected KEY=VALUE, e.g. --conf spark.executor.memory=8g"
            )
        conf[key.strip()] = value.strip()
    return conf


def _local_data(paths: list[str]) -> Path | None:
    """The one --data path as a local file, when it is one (the default catalogue is beside it)."""
    if len(paths) != 1:
        return None
    path = paths[0].removeprefix("file://")
    if "://" in path or not Path(path).is_file():
        return None
    return Path(path)


def _catalog(
    args: argparse.Namespace, preset: Preset | None, items: IdMap
) -> tuple[dict, Path | None]:
    local = _local_data(args.data)
    if local is None and args.catalog is None:
        return {}, None
    return catalog_for(
        preset,
        local if local is not None else args.catalog,
        items,
        catalog_path=args.catalog,
        item_column=args.catalog_item_col,
    )


def _data_table(out: Output, report: SparkLoadReport):
    rows = [("rows read", f"{report.rows_read:,}")]
    rows += [(f"dropped: {rule}", f"{n:,}") for rule, n in report.dropped.items()]
    rows += [
        ("rows kept", f"{report.rows_kept:,}"),
        ("customers x items", f"{report.n_users:,} x {report.n_items:,}"),
        ("distinct pairs", f"{report.n_pairs:,}"),
    ]
    title = f"Data ({report.file_format}, read by Spark): {', '.join(report.paths)}"
    return out.table(["", "value"], rows, title=title, numeric=["value"])


def run(args: argparse.Namespace, out: Output) -> None:
    columns, cleaning, preset = data_options(args)
    conf = spark_conf(args.conf)
    if args.catalog is not None and not args.catalog.is_file():
        raise DataError(f"{args.catalog}: no such file")
    with out.steps(3) as steps:
        steps.step(f"training on Spark ({args.master or DEFAULT_MASTER})")
        result = spark_training(
            args.data,
            columns,
            params=backend_params(args),
            cleaning=cleaning,
            weighting=args.weighting or "binary",
            seed=args.seed,
            master=args.master,
            spark_conf=conf,
            file_format=args.format,
            checkpoint_dir=args.checkpoint_dir,
        )
        steps.step("reading the catalogue")
        model = result.model
        attributes, catalog = _catalog(args, preset, model.train.items)
        if attributes:
            model = attrs.evolve(model, item_attributes=attributes)
        steps.step("writing the model file")
        path = save_model(model, model_path_for(args.output, BACKEND))
    report = result.report
    seconds = {name: round(value, 3) for name, value in result.seconds.items()}
    summary = {
        "data": data_payload(report, model.train),
        **model_summary(model, path, catalog),
        "spark": {
            "master": result.master,
            "version": result.spark_version,
            "session_seconds": seconds["session"],
            "load_seconds": seconds["load"],
        },
        "fit_seconds": seconds["als"],
        "seconds": seconds["total"],
    }
    out.emit_json(summary)
    rows = [
        *model_rows(model, catalog),
        ("Spark", f"{result.spark_version} on {result.master}"),
        (
            "time",
            f"{seconds['total']:.1f} s (Spark start {seconds['session']:.1f} s, read and clean "
            f"{seconds['load']:.1f} s, ALS {seconds['als']:.1f} s)",
        ),
        ("model file", f"{path} ({human_bytes(summary['model']['bytes'])})"),
    ]
    out.print(_data_table(out, report))
    out.print(out.table(["", "value"], rows, title="Model trained on Spark"))
