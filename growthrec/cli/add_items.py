"""``growthrec add-items``: new products into a trained model from their features, no retraining."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from growthrec.cli.notes import named, warn
from growthrec.cli.options import add_json_option
from growthrec.cli.output import Output, human_bytes
from growthrec.cli.payloads import file_payload, model_payload
from growthrec.data.catalog import read_catalog
from growthrec.pipeline.catalog import added_items
from growthrec.store.modelfile import load_model, save_model

__all__ = ["add_parser"]

#: Ids the table shows (all of them are in --json).
SHOWN_IDS = 8


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "add-items",
        help="add new products to a trained model from their features (no retraining)",
        description="Add the products of a catalogue file that a model does not have yet, "
        "scored from their features alone (the columns the model was trained with "
        "--item-features), without retraining. The model file is replaced atomically, or "
        "the result written to --output.",
    )
    p.add_argument("--model", type=Path, required=True, help="model file written by 'train'")
    p.add_argument(
        "--catalog",
        type=Path,
        required=True,
        metavar="FILE",
        help="the new products: an id column and the model's item feature columns "
        "(.csv, .csv.gz, .parquet)",
    )
    p.add_argument(
        "--catalog-item-col",
        default="item_id",
        help="item id column of --catalog (default: item_id)",
    )
    p.add_argument(
        "--delimiter", default=None, metavar="CHAR", help="CSV delimiter (default: detected)"
    )
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="write the new model here (default: replace --model itself, atomically)",
    )
    p.add_argument(
        "--skip-known",
        action="store_true",
        help="leave products the model already has as they are (default: refuse the file)",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Output) -> None:
    start = time.perf_counter()
    model = load_model(args.model)
    catalog = read_catalog(args.catalog, args.catalog_item_col, delimiter=args.delimiter)
    result = added_items(
        model,
        catalog,
        args.catalog_item_col,
        known="skip" if args.skip_known else "error",
        where=str(args.catalog),
    )
    target = args.output or args.model
    save_model(result.model, target)
    seconds = time.perf_counter() - start
    added = [str(i) for i in result.added]
    skipped = [str(i) for i in result.skipped]
    new = result.model
    scored_by = (
        "feature map to factors"
        if "item_map" in new.coldstart
        else ("their features" if new.backend == "content" else f"the {new.backend} backend")
    )
    out.emit_json(
        {
            "model": model_payload(new, target),
            "catalog": file_payload(args.catalog, rows=catalog.num_rows),
            "added": added,
            "skipped": skipped,
            "n_items_before": model.train.n_items,
            "n_items": new.train.n_items,
            "scored_by": scored_by,
            "seconds": round(seconds, 4),
        }
    )
    if skipped:
        warn(f"already in the model, left as they are: {named(skipped)}")
    shown = ", ".join(added[:SHOWN_IDS]) + (", ..." if len(added) > SHOWN_IDS else "")
    rows = [
        ("products added", f"{len(added):,}" + (f" ({shown})" if added else "")),
        ("skipped (already in the model)", f"{len(skipped):,}"),
        ("products in the model", f"{model.train.n_items:,} -> {new.train.n_items:,}"),
        ("new products scored by", scored_by),
        ("time", f"{seconds:.3f} s"),
        ("model file", f"{target} ({human_bytes(target.stat().st_size)})"),
    ]
    out.print(out.table(["", "value"], rows, title=f"Products added from {args.catalog}"))
