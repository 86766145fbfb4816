"""Reading transactions and catalogues from CSV/Parquet (pyarrow), and writing them atomically."""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from growthrec.atomic import atomic_write
from growthrec.core.interactions import (
    IdMap,
    Interactions,
    _normalise_ids,
    factorize,
    interactions_from_codes,
)
from growthrec.errors import DataError

__all__ = [
    "DEFAULT_TIME_COLUMN",
    "DEFAULT_WEIGHT_COLUMN",
    "Columns",
    "catalog_attributes",
    "read_catalog",
    "read_interactions",
    "read_table",
    "write_table",
]

#: Used as weight / time columns when present and no other column is named.
DEFAULT_WEIGHT_COLUMN = "quantity"
DEFAULT_TIME_COLUMN = "timestamp"
_FORMATS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


@attrs.frozen
class Columns:
    """Which columns of a transactions file hold the user, the item, the weight and the time.

    ``weight``/``time`` of ``None`` mean: use ``quantity``/``timestamp`` if the file has them.
    """

    user: str = "user_id"
    item: str = "item_id"
    weight: str | None = None
    time: str | None = None


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _FORMATS or (suffix == ".gz" and not path.name.lower().endswith(".csv.gz")):
        raise DataError(f"{path}: unknown file type; expected .csv, .csv.gz or .parquet")
    return _FORMATS[suffix]


def _schema_names(path: Path, kind: str) -> list[str]:
    try:
        if kind == "parquet":
            return list(pq.read_schema(path).names)
        with pa_csv.open_csv(path) as reader:
            return list(reader.schema.names)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: not a readable {kind.upper()} file ({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    """The first line of an error, printable and short (parse errors quote raw bytes)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line if len(line) <= 160 else line[:157] + "..."


def _file_columns(source: Path) -> list[str]:
    """The column names of an existing, non-empty CSV or Parquet file."""
    if not source.is_file():
        raise DataError(f"{source}: no such file")
    if source.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty")
    return _schema_names(source, _format(source))


def read_table(path: str | os.PathLike[str], columns: list[str]) -> pa.Table:
    """The named columns of a CSV or Parquet file; a missing file or column is a ``DataError``."""
    source = Path(path)
    names = _file_columns(source)
    kind = _format(source)
    for column in columns:
        if column not in names:
            raise DataError(
                f"{source}: no column {column!r}; the file has {', '.join(map(repr, names))}"
            )
    try:
        if kind == "parquet":
            table = pq.read_table(source, columns=columns)
        else:
            table = pa_csv.read_csv(
                source, convert_options=pa_csv.ConvertOptions(include_columns=columns)
            )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{source}: not a readable {kind.upper()} file ({_first_line(exc)})"
        ) from None
    if table.num_rows == 0:
        raise DataError(f"{source}: the file has a header but no rows")
    return table


def _where(path: Path, row: int) -> str:
    line = f" (line {row + 2})" if _format(path) == "csv" else ""
    return f"row {row + 1}{line}"


def _no_nulls(path: Path, column: str, values: pa.ChunkedArray) -> None:
    if values.null_count:
        row = int(pc.index(pc.is_null(values), True).as_py())
        raise DataError(f"{path}: column {column!r} is empty at {_where(path, row)}")


def _ids(path: Path, column: str, values: pa.ChunkedArray) -> tuple[IdMap, np.ndarray]:
    """Sorted distinct ids and each row's code; strings go through arrow's dictionary encoding."""
    _no_nulls(path, column, values)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        encoded = values.combine_chunks().dictionary_encode()
        dictionary = np.asarray(encoded.dictionary.to_pylist(), dtype=str)
        order = np.argsort(dictionary, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        codes = rank[encoded.indices.to_numpy(zero_copy_only=False)]
        ids = dictionary[order]
        if ids.size and ids[0] == "":
            row = int(np.flatnonzero(codes == 0)[0])
            raise DataError(f"{path}: column {column!r} is empty at {_where(path, row)}")
        return IdMap(ids, np.arange(ids.size)), codes.astype(np.int64)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        raw = values.to_numpy()
        if raw.dtype.kind == "f" and np.any(raw != np.round(raw)):
            row = int(np.flatnonzero(raw != np.round(raw))[0])
            raise DataError(
                f"{path}: column {column!r} has {raw[row]:g} at {_where(path, row)}; "
                "ids must be text or whole numbers"
            )
        try:
            raw = _normalise_ids(raw, column)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        uniques, codes = factorize(raw)
        return IdMap(uniques, np.arange(uniques.size)), codes
    raise DataError(
        f"{path}: column {column!r} has type {values.type}; ids must be text or integers"
    )


def _bad_value(path: Path, column: str, values: pa.ChunkedArray, exc: Exception) -> DataError:
    match = re.search(r"[Ff]ailed to parse string: '([^']*)'", str(exc))
    if match:
        row = int(pc.index(values, match.group(1)).as_py())
        return DataError(
            f"{path}: column {column!r}: cannot read {match.group(1)!r} at {_where(path, row)}"
        )
    return DataError(f"{path}: column {column!r}: {_first_line(exc)}")


def _numbers(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    _no_nulls(path, column, values)
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        try:
            values = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _bad_value(path, column, values, exc) from None
    return values.to_numpy().astype(np.float64, copy=False)


def _seconds(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    """Unix seconds from a timestamp, date, ISO 8601 text or numeric (seconds) column."""
    _no_nulls(path, column, values)
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return values.to_numpy().astype(np.float64, copy=False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            values = pc.cast(values, pa.timestamp("s"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            err = _bad_value(path, column, values, exc)
            raise DataError(
                f"{err}; expected a date/time such as 2025-03-01 14:30:00, or Unix seconds"
            ) from None
        kind = values.type
    if pa.types.is_date(kind):
        values = pc.cast(values, pa.timestamp("s"))
        kind = values.type
    if not pa.types.is_timestamp(kind):
        raise DataError(f"{path}: column {column!r} has type {kind}; expected dates or seconds")
    seconds = pc.cast(pc.cast(values, pa.timestamp("s"), safe=False), pa.int64())
    return seconds.to_numpy().astype(np.float64)


def read_interactions(path: str | os.PathLike[str], columns: Columns = Columns()) -> Interactions:
    """The interaction matrix of a transactions file (CSV or Parquet), one row per event."""
    source = Path(path)
    names = _file_columns(source)
    weight = columns.weight or (DEFAULT_WEIGHT_COLUMN if DEFAULT_WEIGHT_COLUMN in names else None)
    time = columns.time or (DEFAULT_TIME_COLUMN if DEFAULT_TIME_COLUMN in names else None)
    wanted = [columns.user, columns.item, *(c for c in (weight, time) if c)]
    table = read_table(source, list(dict.fromkeys(wanted)))
    users, user_codes = _ids(source, columns.user, table[columns.user])
    items, item_codes = _ids(source, columns.item, table[columns.item])
    weights = _numbers(source, weight, table[weight]) if weight else None
    if weights is not None and np.any(~np.isfinite(weights) | (weights < 0)):
        row = int(np.flatnonzero(~np.isfinite(weights) | (weights < 0))[0])
        raise DataError(
            f"{source}: column {weight!r} has {weights[row]:g} at {_where(source, row)}; "
            "weights must be finite and not negative"
        )
    timestamps = _seconds(source, time, table[time]) if time else None
    return interactions_from_codes(user_codes, users, item_codes, items, weights, timestamps)


def read_catalog(path: str | os.PathLike[str], item_column: str = "item_id") -> pa.Table:
    """An item catalogue: one row per item id, any other columns (category, price, ...)."""
    source = Path(path)
    names = _file_columns(source)
    return read_table(source, [item_column, *(n for n in names if n != item_column)])


def catalog_attributes(
    catalog: pa.Table, items: IdMap, item_column: str = "item_id"
) -> dict[str, np.ndarray]:
    """Each catalogue column as strings aligned with ``items`` ("" where an item is not listed)."""
    ids = catalog[item_column].to_numpy(zero_copy_only=False)
    position = items.index(ids)
    listed = position >= 0
    out: dict[str, np.ndarray] = {}
    for name in catalog.column_names:
        if name == item_column:
            continue
        values = np.asarray(catalog[name].cast(pa.string()).fill_null("").to_pylist(), dtype=str)
        column = np.full(len(items), "", dtype=values.dtype if values.size else "<U1")
        column[position[listed]] = values[listed]
        out[name] = column
    return out


def write_table(columns: Mapping[str, np.ndarray | pa.Array], path: str | os.PathLike[str]) -> Path:
    """Write columns to CSV or Parquet (by the file's suffix), atomically."""
    target = Path(path)
    kind = _format(target)
    table = pa.table(dict(columns))
    with atomic_write(target) as handle:
        if kind == "parquet":
            pq.write_table(table, handle)
        elif target.suffix.lower() == ".gz":
            # gzip.GzipFile leaves ``handle`` open (arrow's stream closed it before the fsync).
            with gzip.GzipFile(fileobj=handle, mode="wb") as stream:
                pa_csv.write_csv(table, stream)
        else:
            pa_csv.write_csv(table, handle)
    return target
