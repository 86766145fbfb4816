"""Tables in and out: CSV (delimiter detected from the header) and Parquet, through pyarrow."""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from growthrec.errors import DataError, ParameterError
from growthrec.store.atomic import atomic_write

__all__ = ["DELIMITERS", "detect_delimiter", "read_table", "write_table"]


_FORMATS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Delimiters recognised in a CSV header line, in order of preference when counts tie.
DELIMITERS = (",", ";", "\t", "|")


def column_names(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _FORMATS or (suffix == ".gz" and not path.name.lower().endswith(".csv.gz")):
        raise DataError(f"{path}: unknown file type; expected .csv, .csv.gz or .parquet")
    return _FORMATS[suffix]


def check_delimiter(delimiter: str | None) -> str | None:
    """``delimiter`` as one character (``tab`` and ``\\t`` name the tab); None means detect."""
    if delimiter is None:
        return None
    value = "\t" if delimiter in ("tab", "\\t", "TAB") else delimiter
    if not isinstance(value, str) or len(value) != 1 or value in '"\r\n' or not value.isascii():
        raise ParameterError(
            f"delimiter {delimiter!r}: expected one character such as ',', ';', '|' or 'tab'"
        )
    return value


def detect_delimiter(path: str | os.PathLike[str]) -> str:
    """The delimiter of a CSV file: the most frequent of ``DELIMITERS`` in its header line.

    Characters inside double quotes do not count; a header with none of them (one column) is
    read with ``,``. Ties go to the earlier delimiter in ``DELIMITERS``.
    """
    source = Path(path)
    opener = gzip.open if source.name.lower().endswith(".gz") else open
    try:
        with opener(source, "rb") as handle:
            first = handle.readline(1 << 16)
    except (OSError, EOFError):
        return ","  # an unreadable file is reported by the reader, with its own message
    header = re.sub(r'"[^"]*"', "", first.decode("utf-8", errors="replace").lstrip("\ufeff"))
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    return best if counts[best] else ","


def _parse_options(path: Path, delimiter: str | None) -> pa_csv.ParseOptions:
    return pa_csv.ParseOptions(delimiter=delimiter or detect_delimiter(path))


def _schema(path: Path, kind: str, delimiter: str | None = None) -> pa.Schema:
    """The file's schema (for CSV: as inferred from its first block)."""
    try:
        if kind == "parquet":
            schema = pq.read_schema(path)
        else:
            with pa_csv.open_csv(path, parse_options=_parse_options(path, delimiter)) as reader:
                schema = reader.schema
        schema.names  # noqa: B018  (decoding the names fails here on binary garbage)
        return schema
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable {kind.upper()} file ({first_line(exc)})") from None


def first_line(exc: BaseException) -> str:
    """The first line of an error, printable and short (parse errors quote raw bytes)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line if len(line) <= 160 else line[:157] + "..."


def file_schema(source: Path, delimiter: str | None = None) -> pa.Schema:
    """The schema of an existing, non-empty CSV or Parquet file."""
    if not source.is_file():
        raise DataError(f"{source}: no such file")
    if source.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty")
    return _schema(source, file_format(source), delimiter)


def is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def read_table(
    path: str | os.PathLike[str],
    columns: list[str],
    *,
    dictionary: Sequence[str] = (),
    text: Sequence[str] = (),
    delimiter: str | None = None,
) -> pa.Table:
    """The named columns of a CSV or Parquet file; a missing file or column is a ``DataError``.

    Columns named in ``dictionary`` are read dictionary-encoded (ids: far less memory): from a
    CSV always as text, exactly as written; from Parquet when they are text. CSV columns named
    in ``text`` are read as text, not inferred. ``delimiter`` (CSV only) is one character, or
    None to detect it from the header line.
    """
    source = Path(path)
    delimiter = check_delimiter(delimiter)
    schema = file_schema(source, delimiter)
    kind = file_format(source)
    absent = [column for column in dict.fromkeys(columns) if column not in schema.names]
    if absent:
        which = "column" if len(absent) == 1 else "columns"
        raise DataError(
            f"{source}: no {which} {', '.join(map(repr, absent))}; "
            f"the file has {', '.join(map(repr, schema.names))}"
        )
    try:
        if kind == "parquet":
            encode = [c for c in dictionary if c in columns and is_text(schema.field(c).type)]
            table = pq.read_table(source, columns=columns, read_dictionary=encode or None)
        else:
            types: dict[str, pa.DataType] = {c: pa.string() for c in text if c in columns}
            types |= {c: pa.dictionary(pa.int32(), pa.string()) for c in dictionary if c in columns}
            table = pa_csv.read_csv(
                source,
                parse_options=_parse_options(source, delimiter),
                convert_options=pa_csv.ConvertOptions(include_columns=columns, column_types=types),
            )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{source}: not a readable {kind.upper()} file ({first_line(exc)})"
        ) from None
    # Arrow's allocator keeps what the reader freed (over a GiB after a large CSV) for reuse,
    # but numpy, which the data goes to next, cannot reuse it: hand it back to the system.
    pa.default_memory_pool().release_unused()
    if table.num_rows == 0:
        raise DataError(f"{source}: the file has a header but no rows")
    return table


def write_table(columns: Mapping[str, np.ndarray | pa.Array], path: str | os.PathLike[str]) -> Path:
    """Write columns to CSV or Parquet (by the file's suffix), atomically."""
    target = Path(path)
    kind = file_format(target)
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
