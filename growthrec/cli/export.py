"""``growthrec export``: the top-N of every customer (or of some) to a Parquet or CSV file."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from growthrec.cli.notes import named
from growthrec.cli.options import (
    add_json_option,
    add_list_options,
    add_threads_option,
    list_spec_from,
    positive_int,
    short_lists_note,
)
from growthrec.cli.output import Output
from growthrec.cli.payloads import FALLBACK_POPULAR, file_payload, model_payload
from growthrec.core.interactions import IdMap
from growthrec.core.model import Model
from growthrec.core.ranking import thread_count
from growthrec.errors import DataError, ParameterError, UnknownIdError
from growthrec.pipeline.lists import (
    EXPORT_BATCH_USERS,
    list_spec,
    popular_items,
    recommend_in_batches,
)
from growthrec.pipeline.rules import ListSpec
from growthrec.store.atomic import atomic_write
from growthrec.store.modelfile import load_model

__all__ = ["add_parser", "output_format", "read_user_ids", "write_recommendations"]

#: File suffix -> format, as ``growthrec.data`` reads them back.
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv.gz"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write the top-N of every customer to a Parquet or CSV file",
        description="Write the top-N items of every customer in a model's training data (or of "
        "the customers given) to one file, one row per recommendation: user_id, rank, item_id, "
        "score. The file is written batch by batch and appears only once complete.",
    )
    p.add_argument("--model", type=Path, required=True, help="model file written by 'train'")
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="the file to write: .parquet, .csv or .csv.gz (the suffix picks the format)",
    )
    p.add_argument("--n", type=positive_int, default=10, help="items per customer (default: 10)")
    p.add_argument(
        "--user-id",
        "--user_id",
        dest="user_ids",
        nargs="+",
        action="extend",
        default=[],
        metavar="USER",
        help="only these customers (default: every customer of the model)",
    )
    p.add_argument(
        "--users-file",
        type=Path,
        default=None,
        help="only the customers listed in this text file, one id per line",
    )
    p.add_argument(
        "--fallback",
        choices=("none", "popular"),
        default="none",
        help="for a customer the model does not know: 'popular' writes the best sellers, "
        "marked in a 'source' column (default: such a customer is an error)",
    )
    add_list_options(p, purchases=True)
    add_threads_option(p)
    add_json_option(p)
    p.set_defaults(run=run)


def output_format(path: Path) -> str:
    """``"parquet"``, ``"csv"`` or ``"csv.gz"`` from the file name; anything else is an error."""
    name = path.name.lower()
    for suffix, kind in sorted(_FORMATS.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return kind
    raise ParameterError(
        f"--output {path}: unknown file type; use a name ending in .parquet, .csv or .csv.gz"
    )


def read_user_ids(path: Path) -> list[str]:
    """Customer ids from a text file, one per line; blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such users file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file of customer ids") from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: the users file lists no customer ids")
    return ids


def _id_type(ids: IdMap) -> pa.DataType:
    return pa.int64() if ids.kind == "int" else pa.string()


def _schema(model: Model, with_source: bool = False) -> pa.Schema:
    fields = [
        ("user_id", _id_type(model.train.users)),
        ("rank", pa.int32()),
        ("item_id", _id_type(model.train.items)),
        ("score", pa.float32()),
    ]
    return pa.schema([*fields, ("source", pa.string())] if with_source else fields)


def _rows(
    model: Model, schema: pa.Schema, users: np.ndarray, items: np.ndarray, scores: np.ndarray
) -> pa.Table:
    """One batch in long form, external ids; the -1 padding of short lists is left out."""
    keep = items >= 0
    n_kept = keep.sum(axis=1)
    ranks = np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.int32), items.shape)
    columns = [
        model.train.users.external(np.repeat(users, n_kept)),
        ranks[keep],
        model.train.items.external(items[keep]),
        scores[keep].astype(np.float32, copy=False),
    ]
    if "source" in schema.names:
        columns.append(np.full(int(keep.sum()), "model", dtype=object))
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


@contextlib.contextmanager
def _table_writer(handle: BinaryIO, kind: str, schema: pa.Schema) -> Iterator[Any]:
    """A Parquet or CSV writer into ``handle`` that takes one table (batch) at a time."""
    if kind == "parquet":
        writer = pq.ParquetWriter(handle, schema)
        try:
            yield writer
        finally:
            writer.close()
        return
    # gzip.GzipFile leaves ``handle`` open, so atomic_write can still fsync it.
    stream = gzip.GzipFile(fileobj=handle, mode="wb") if kind == "csv.gz" else handle
    try:
        writer = pa_csv.CSVWriter(stream, schema)
        try:
            yield writer
        finally:
            writer.close()
    finally:
        if stream is not handle:
            stream.close()


def _fallback_rows(
    model: Model, schema: pa.Schema, user_ids: Sequence[str], spec: ListSpec
) -> pa.Table:
    """The best sellers (under ``spec``'s rules) for customers the model does not know;
    score: share of buyers."""
    items, buyers = popular_items(model, spec=spec)
    keep = items[0] >= 0
    share = buyers[0][keep].astype(np.float64) / max(model.train.n_users, 1)
    per_user = int(keep.sum())
    ids: list[Any] = list(user_ids)
    if schema.field("user_id").type == pa.int64():
        ids = [_whole_number(u) for u in ids]
    columns = [
        np.repeat(np.asarray(ids, dtype=object), per_user),
        np.tile(np.arange(1, per_user + 1, dtype=np.int32), len(ids)),
        np.tile(model.train.items.external(items[0][keep]), len(ids)),
        np.tile(share.astype(np.float32), len(ids)),
        np.full(per_user * len(ids), FALLBACK_POPULAR, dtype=object),
    ]
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def _whole_number(user_id: str) -> int:
    """``user_id`` as the integer column holds it, refused unless that keeps its exact text."""
    with contextlib.suppress(ValueError):
        if str(int(user_id)) == user_id:
            return int(user_id)
    raise DataError(
        f"user {user_id}: not in the model's training data, and its best sellers cannot be "
        "written: the user_id column holds whole numbers and would not keep this id as given"
    )


def _selected_users(model: Model, args: argparse.Namespace) -> tuple[np.ndarray, list[str]]:
    """Row indices of the customers asked for, and the ids the model does not know."""
    wanted = list(args.user_ids)
    if args.users_file is not None:
        wanted += read_user_ids(args.users_file)
    if not wanted:
        return np.arange(model.train.n_users), []
    index = model.train.users.index(wanted)
    unknown = [u for u, i in zip(wanted, index, strict=True) if i < 0]
    if unknown and args.fallback == "none":
        who = "user {} is" if len(unknown) == 1 else "users {} are"
        raise UnknownIdError(
            f"{who.format(named(unknown))} not in the model's training data ({len(unknown)} of "
            f"{len(wanted)} asked for); use --fallback popular to export the best sellers for them"
        )
    return index[index >= 0], unknown


def write_recommendations(
    model: Model,
    users: np.ndarray,
    path: Path,
    n: int = 10,
    *,
    exclude_seen: bool = True,
    n_threads: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
    fallback_users: Sequence[str] | None = None,
    spec: ListSpec | None = None,
) -> int:
    """Write the top ``n`` of ``users`` (row indices) to ``path`` batch by batch, atomically.

    The format follows the suffix (``output_format``); ``on_batch(customers done, short
    lists so far)`` is called after each batch. With ``fallback_users`` (external ids the model
    does not know) a ``source`` column says ``model`` or ``fallback:popular``, and those
    customers get the best sellers, after the others. ``spec`` (a ``ListSpec``: rules and
    re-ranking) decides the lists instead of ``n`` and ``exclude_seen``, the fallback's too.
    Returns the number of rows written.
    """
    kind = output_format(path)
    spec = list_spec(spec, n, exclude_seen)
    schema = _schema(model, with_source=fallback_users is not None)
    n_rows = n_short = 0
    with atomic_write(path) as handle, _table_writer(handle, kind, schema) as writer:
        batches = recommend_in_batches(model, users, n_threads=thread_count(n_threads), spec=spec)
        done = 0
        for batch_users, items, scores in batches:
            table = _rows(model, schema, batch_users, items, scores)
            writer.write_table(table)
            n_rows += table.num_rows
            n_short += int(np.count_nonzero(items[:, -1] < 0)) if items.size else 0
            done += batch_users.size
            if on_batch is not None:
                on_batch(done, n_short)
        unknown = list(fallback_users or [])
        for start in range(0, len(unknown), EXPORT_BATCH_USERS):
            chunk = unknown[start : start + EXPORT_BATCH_USERS]
            table = _fallback_rows(model, schema, chunk, spec)
            writer.write_table(table)
            n_rows += table.num_rows
            if table.num_rows < len(chunk) * spec.n:
                n_short += len(chunk)
                if on_batch is not None:
                    on_batch(done, n_short)
    return n_rows


def run(args: argparse.Namespace, out: Output) -> None:
    kind = output_format(args.output)
    model = load_model(args.model)
    options = list_spec_from(args, args.n, model.train.items, model.item_attributes)
    users, unknown = _selected_users(model, args)
    n_batches = max(1, -(-users.size // EXPORT_BATCH_USERS))
    start = time.perf_counter()
    short, shown = [0], [0]

    def on_batch(done: int, n_short: int) -> None:
        short[0] = n_short
        if done != shown[0]:  # the fallback's count comes without a new batch
            shown[0] = done
            steps.step(f"ranking and writing: {done:,} of {users.size:,} customers")

    with out.steps(n_batches) as steps:
        steps.step(f"ranking and writing: 0 of {users.size:,} customers")
        n_rows = write_recommendations(
            model,
            users,
            args.output,
            n_threads=args.threads or 0,
            on_batch=on_batch,
            fallback_users=unknown if args.fallback == "popular" else None,
            spec=options.spec,
        )
    seconds = time.perf_counter() - start
    n_users = int(users.size) + len(unknown)
    summary = {
        "model": model_payload(model, args.model),
        "output": file_payload(args.output, format=kind, rows=n_rows),
        "n": args.n,
        "n_users": n_users,
        "n_fallback_users": len(unknown),
        "n_short_lists": short[0],
        "list_spec": options.payload(),
        "seconds": round(seconds, 3),
    }
    out.emit_json(summary)
    rows = [
        ("file", f"{args.output} ({kind})"),
        ("customers", f"{users.size + len(unknown):,}"),
        *([("of them best sellers (not in the model)", f"{len(unknown):,}")] if unknown else []),
        ("rows (customer, rank, item, score)", f"{n_rows:,}"),
        ("items per customer", str(args.n)),
        ("time", f"{seconds:.2f} s"),
    ]
    out.print(out.table(["", "value"], rows, title="Recommendations exported"))
    note = short_lists_note(short[0], n_users, args.n)
    if note:
        out.print(note)
