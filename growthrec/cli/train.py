"""``growthrec train``: fit a backend on a transactions file and write the model file."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from growthrec.cli.generate import catalog_path_for
from growthrec.cli.options import (
    add_backend_options,
    add_data_options,
    add_json_option,
    backend_params,
    columns_from,
)
from growthrec.cli.output import Output, human_bytes
from growthrec.core.interactions import Interactions
from growthrec.modelfile import save_model
from growthrec.recommender import fit_model
from growthrec.tables import catalog_attributes, read_catalog, read_interactions

__all__ = ["add_parser", "item_attributes_for", "model_path_for"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fit a backend and write its model file",
        description="Fit a backend on a transactions file and write one .npz model file that "
        "carries the id maps, the training matrix and the learned arrays.",
    )
    add_data_options(p)
    add_backend_options(p)
    p.add_argument(
        "--output",
        type=Path,
        default=Path("models"),
        help="a directory (writes <backend>.npz in it) or a .npz path (default: models/)",
    )
    p.add_argument(
        "--catalog",
        type=Path,
        default=None,
        help="item catalogue with an item_id column (default: items.csv beside --data, if any)",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def model_path_for(output: Path, backend: str) -> Path:
    """``output`` itself when it names a .npz file, else ``output/<backend>.npz``."""
    return output if output.suffix == ".npz" else output / f"{backend}.npz"


def item_attributes_for(
    data: Interactions, catalog: Path | None, transactions: Path
) -> tuple[dict, Path | None]:
    """Catalogue columns aligned with the items, and the catalogue file used (if any)."""
    path = catalog or catalog_path_for(transactions)
    if catalog is None and not path.is_file():
        return {}, None
    return catalog_attributes(read_catalog(path), data.items), path


def run(args: argparse.Namespace, out: Output) -> None:
    params = backend_params(args)
    with out.steps(3) as steps:
        steps.step(f"reading {args.data}")
        data = read_interactions(args.data, columns_from(args))
        attributes, catalog = item_attributes_for(data, args.catalog, args.data)
        steps.step(f"fitting {args.backend}")
        start = time.perf_counter()
        model = fit_model(
            data,
            args.backend,
            params,
            weighting=args.weighting,
            seed=args.seed,
            item_attributes=attributes,
        )
        fit_seconds = time.perf_counter() - start
        steps.step("writing the model file")
        path = save_model(model, model_path_for(args.output, args.backend))
    summary = {
        "model_file": str(path),
        "backend": model.backend,
        "params": dict(model.params),
        "weighting": model.weighting,
        "seed": model.seed,
        "users": data.n_users,
        "items": data.n_items,
        "interactions": data.nnz,
        "density": data.density,
        "catalog_file": str(catalog) if catalog else None,
        "fit_seconds": round(fit_seconds, 4),
        "file_bytes": path.stat().st_size,
    }
    out.emit_json(summary)
    rows = [
        ("backend", model.backend),
        ("parameters", ", ".join(f"{k}={v}" for k, v in model.params.items()) or "-"),
        ("weighting", model.weighting),
        ("users", f"{data.n_users:,}"),
        ("items", f"{data.n_items:,}"),
        ("interactions (distinct pairs)", f"{data.nnz:,}"),
        ("density", f"{data.density:.4%}"),
        ("catalogue", str(catalog) if catalog else "-"),
        ("fit time", f"{fit_seconds:.3f} s"),
        ("model file", f"{path} ({human_bytes(summary['file_bytes'])})"),
    ]
    out.print(out.table(["", "value"], rows, title="Model trained"))
