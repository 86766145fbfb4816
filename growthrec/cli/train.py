"""``growthrec train``: fit a backend on a transactions file and write the model file."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from growthrec.cli.options import (
    add_backend_options,
    add_data_options,
    add_json_option,
    load_data,
    load_report_table,
    model_choices,
)
from growthrec.cli.output import Output, human_bytes
from growthrec.cli.payloads import data_payload, file_payload, model_payload
from growthrec.core.interactions import interactions_from_events
from growthrec.core.model import Model
from growthrec.pipeline.fitting import fit_model
from growthrec.store.modelfile import save_model

__all__ = ["add_parser", "model_path_for", "model_rows", "model_summary"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fit a backend and write its model file",
        description="Fit a backend on a transactions file and write one .npz model file that "
        "carries the id maps, the training matrix and the learned arrays.",
    )
    add_data_options(p)
    add_backend_options(p, recency=True)
    p.add_argument(
        "--output",
        type=Path,
        default=Path("models"),
        help="a directory (writes <backend>.npz in it) or a .npz path (default: models/)",
    )
    p.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="parameters written by 'growthrec tune' (its backend unless --model is given; "
        "--param and --factors override single values)",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def model_path_for(output: Path, backend: str) -> Path:
    """``output`` itself when it names a .npz file, else ``output/<backend>.npz``."""
    return output if output.suffix == ".npz" else output / f"{backend}.npz"


def model_summary(model: Model, path: Path, catalog: Path | None) -> dict[str, Any]:
    """What every training command reports of the model it wrote (JSON: model and catalog)."""
    return {
        "model": model_payload(model, path),
        "catalog": file_payload(catalog, columns=list(model.item_attributes)) if catalog else None,
    }


def model_rows(model: Model, catalog: Path | None) -> list[tuple[str, str]]:
    """The table rows every training command shows of the model it wrote."""
    data = model.train
    return [
        ("backend", model.backend),
        ("parameters", ", ".join(f"{k}={v}" for k, v in model.params.items()) or "-"),
        ("weighting", model.weighting),
        *(
            [("recency half-life", f"{model.recency:g} (in purchase times)")]
            if model.recency
            else []
        ),
        ("users", f"{data.n_users:,}"),
        ("items", f"{data.n_items:,}"),
        ("interactions (distinct pairs)", f"{data.nnz:,}"),
        ("density", f"{data.density:.4%}"),
        ("catalogue", str(catalog) if catalog else "-"),
    ]


def features_payload(model: Model, n_cold_items: int) -> dict[str, Any] | None:
    """The features a model learned from (JSON), or None without any."""
    if model.item_features is None and model.user_features is None:
        return None
    out: dict[str, Any] = {}
    for side, features in (("items", model.item_features), ("users", model.user_features)):
        out[side] = (
            None
            if features is None
            else {
                "columns": {spec.column: spec.kind for spec in features.specs},
                "n_features": features.n_features,
            }
        )
    out["n_cold_items"] = n_cold_items
    out["coldstart"] = "factor map" if model.coldstart else "feature rows or content"
    return out


def features_rows(model: Model, n_cold_items: int) -> list[tuple[str, str]]:
    """Table rows saying which features the model learned from."""
    rows = []
    for label, features in (("item", model.item_features), ("customer", model.user_features)):
        if features is not None:
            columns = ", ".join(f"{s.column}:{s.kind}" for s in features.specs)
            rows.append((f"{label} features", f"{columns} ({features.n_features:,} values)"))
    if model.item_features is not None:
        rows.append(("products nobody bought (cold)", f"{n_cold_items:,}"))
    return rows


def run(args: argparse.Namespace, out: Output) -> None:
    backend, params, weighting, recency = model_choices(args)
    args.backend = backend
    with out.steps(3) as steps:
        steps.step(f"reading {args.data}")
        loaded = load_data(args)
        data = interactions_from_events(loaded.events)
        attributes, catalog = loaded.attributes, loaded.catalog
        steps.step(f"fitting {args.backend}")
        start = time.perf_counter()
        model = fit_model(
            data,
            args.backend,
            params,
            weighting=weighting,
            seed=args.seed,
            item_attributes=attributes,
            item_features=loaded.item_features,
            user_features=loaded.user_features,
            coldstart=loaded.coldstart,
            recency=recency,
        )
        fit_seconds = time.perf_counter() - start
        steps.step("writing the model file")
        path = save_model(model, model_path_for(args.output, args.backend))
    summary = {
        "data": data_payload(loaded.report, model.train),
        **model_summary(model, path, catalog),
        "features": features_payload(model, loaded.n_cold_items),
        "fit_seconds": round(fit_seconds, 4),
    }
    out.emit_json(summary)
    rows = [
        *model_rows(model, catalog),
        *features_rows(model, loaded.n_cold_items),
        ("fit time", f"{fit_seconds:.3f} s"),
        ("model file", f"{path} ({human_bytes(summary['model']['bytes'])})"),
    ]
    out.print(load_report_table(out, loaded.report))
    out.print(out.table(["", "value"], rows, title="Model trained"))
