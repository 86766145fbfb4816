"""Reading transactions and catalogues from CSV/Parquet (pyarrow), and writing them atomically.

``load_events`` reads a transactions file into coded ``Events`` and applies the cleaning rules
of ``Cleaning``, each in this order, each counted in the ``LoadReport``. A row failing several
rules is counted once, by the first rule in this order that drops it:

1. ``missing user or item``: the user or item id is empty (null, "" or NaN);
2. ``non-positive weight``: the weight is 0 or negative (returns, cancellations);
3. ``non-positive <column>``: a ``require_positive`` column is 0, negative or empty;
4. ``duplicate rows``: the row repeats an earlier kept row in every column read (the first
   one is kept);
5. ``below min weight <m>``: the weight is under ``min_weight`` (ratings as positives);
6. ``k-core (users >= a, items >= b)``: users with fewer than ``a`` distinct items and items
   with fewer than ``b`` distinct users, removed repeatedly until none is left.

Values that cannot be read at all (a date that does not parse, text in a number column, an
empty weight or time) are errors naming the column and the first such row, wherever it is.

Ids come back exactly as written. A CSV id column is read as integers only when every value is
an integer in canonical form (its text is ``str(int(text))``: no leading zero, ``+``, space or
exponent, within int64), or every value is such an integer followed by ``.0`` (a float column
as pandas writes it: ``17850.0`` is customer 17850); otherwise every id of the column is text,
exactly as in the file. A missing id is an empty field; ``NA``, ``NULL`` or ``nan`` are ids like
any other (so a column holding them is text). Parquet integer columns are integers, text
columns text, and float columns of whole numbers integers.

CSV dialects: the delimiter is detected from the header line (the most frequent of ``,`` ``;``
tab ``|`` outside quotes; ``,`` when none occurs) unless given. Text times are ISO 8601 unless a
``time_format`` (strptime-style) is given; a column mixing times with and without a zone offset
is an error naming the first row that differs from the first row. Numeric times are Unix time in
``time_unit`` (``s``, ``ms``, ``us`` or ``ns``); without one, the unit is chosen from the
column's largest absolute value ``v``: seconds if ``v < 1e11``, milliseconds if ``v < 1e14``,
microseconds if ``v < 1e17``, else nanoseconds. A time after 9999-12-31 is an error.
"""

from __future__ import annotations

import gzip
import hashlib
import numbers
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from growthrec.atomic import atomic_write
from growthrec.core.interactions import (
    Events,
    IdMap,
    Interactions,
    factorize,
    interactions_from_events,
)
from growthrec.errors import DataError, ParameterError

__all__ = [
    "DEFAULT_TIME_COLUMN",
    "DEFAULT_WEIGHT_COLUMN",
    "DELIMITERS",
    "TIME_UNITS",
    "Cleaning",
    "Columns",
    "LoadReport",
    "catalog_attributes",
    "detect_delimiter",
    "load_events",
    "read_catalog",
    "read_interactions",
    "read_table",
    "write_table",
]

#: Used as weight / time columns when present and no other column is named.
DEFAULT_WEIGHT_COLUMN = "quantity"
DEFAULT_TIME_COLUMN = "timestamp"
_FORMATS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Delimiters recognised in a CSV header line, in order of preference when counts tie.
DELIMITERS = (",", ";", "\t", "|")
#: Units of numeric (epoch) times and their number per second.
TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
#: Below these largest absolute values a numeric time column is read in this unit.
_UNIT_LIMITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))
#: 9999-12-31 23:59:59 UTC: a time after it is a unit mistake, not a purchase.
_LAST_SECOND = 253_402_300_799


@attrs.frozen
class Columns:
    """Which columns of a transactions file hold the user, the item, the weight and the time.

    ``weight``/``time`` of ``None`` mean: use ``quantity``/``timestamp`` if the file has them.
    """

    user: str = "user_id"
    item: str = "item_id"
    weight: str | None = None
    time: str | None = None


def _column_names(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class Cleaning:
    """What to drop while loading; every rule's count is reported (see the module docstring)."""

    #: Drop rows with a missing user or item id (else such a row is an error naming it).
    drop_missing: bool = True
    #: Drop rows whose weight is <= 0; only with a weight column (else negative is an error).
    drop_nonpositive: bool = True
    #: Drop rows identical to an earlier row in every column read (user, item, weight, time and
    #: the ``require_positive`` columns). Without weight and time columns, a repeat purchase
    #: of the same item is such a row.
    drop_duplicates: bool = True
    #: Implicit threshold: keep rows with weight >= min_weight (needs a weight column).
    min_weight: float | None = None
    #: Extra numeric columns that must be > 0 (e.g. a unit price); rows failing are dropped.
    require_positive: tuple[str, ...] = attrs.field(default=(), converter=_column_names)
    #: k-core: keep users with at least this many distinct items ...
    min_user_interactions: int = 1
    #: ... and items with at least this many distinct users, iterated until stable.
    min_item_interactions: int = 1


@attrs.frozen
class LoadReport:
    """What ``load_events`` read, what each cleaning rule dropped, and what is left."""

    path: str
    rows_read: int
    #: Rule -> rows it dropped, in the order applied; every enabled rule is present.
    dropped: dict[str, int] = attrs.field(hash=False)
    rows_kept: int
    n_users: int
    n_items: int
    #: sha256 (first 16 hex digits) of the kept events' codes, id maps, weights and times.
    fingerprint: str
    #: The weight and time columns used (named, or the defaults found in the file).
    weight_column: str | None = None
    time_column: str | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain values for JSON output (``dropped`` keeps the order the rules ran in)."""
        return {**attrs.asdict(self), "dropped": dict(self.dropped)}


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _FORMATS or (suffix == ".gz" and not path.name.lower().endswith(".csv.gz")):
        raise DataError(f"{path}: unknown file type; expected .csv, .csv.gz or .parquet")
    return _FORMATS[suffix]


def _check_delimiter(delimiter: str | None) -> str | None:
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
        raise DataError(
            f"{path}: not a readable {kind.upper()} file ({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    """The first line of an error, printable and short (parse errors quote raw bytes)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line if len(line) <= 160 else line[:157] + "..."


def _file_schema(source: Path, delimiter: str | None = None) -> pa.Schema:
    """The schema of an existing, non-empty CSV or Parquet file."""
    if not source.is_file():
        raise DataError(f"{source}: no such file")
    if source.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty")
    return _schema(source, _format(source), delimiter)


def _is_text(kind: pa.DataType) -> bool:
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
    delimiter = _check_delimiter(delimiter)
    schema = _file_schema(source, delimiter)
    kind = _format(source)
    absent = [column for column in dict.fromkeys(columns) if column not in schema.names]
    if absent:
        which = "column" if len(absent) == 1 else "columns"
        raise DataError(
            f"{source}: no {which} {', '.join(map(repr, absent))}; "
            f"the file has {', '.join(map(repr, schema.names))}"
        )
    try:
        if kind == "parquet":
            encode = [c for c in dictionary if c in columns and _is_text(schema.field(c).type)]
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
            f"{source}: not a readable {kind.upper()} file ({_first_line(exc)})"
        ) from None
    # Arrow's allocator keeps what the reader freed (over a GiB after a large CSV) for reuse,
    # but numpy, which the data goes to next, cannot reuse it: hand it back to the system.
    pa.default_memory_pool().release_unused()
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


def _empty_id(path: Path, column: str, row: int) -> DataError:
    return DataError(f"{path}: column {column!r} is empty at {_where(path, row)}")


def _id_codes(
    path: Path, column: str, values: pa.ChunkedArray, *, from_csv: bool = False
) -> tuple[IdMap, np.ndarray]:
    """Sorted distinct ids and each row's code; -1 where the id is missing (null, "" or NaN).

    ``from_csv``: the column is the file's text, which becomes integers only where that cannot
    change an id (see the module docstring).
    """
    kind = values.type
    if pa.types.is_dictionary(kind) and _is_text(kind.value_type):
        return _text_codes(values, integers=from_csv)
    if _is_text(kind):
        return _text_codes(pc.dictionary_encode(values), integers=from_csv)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _number_codes(path, column, values)
    raise DataError(f"{path}: column {column!r} has type {kind}; ids must be text or integers")


#: An integer in canonical form within 19 digits (int64's range is checked apart).
_CANONICAL = r"^(0|-?[1-9][0-9]{0,18})"


def _canonical_ints(texts: pa.Array, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Which ``texts`` are a canonical int64 followed by ``suffix``, and their values (else 0)."""
    escaped = re.escape(suffix)
    ok = pc.match_substring_regex(texts, _CANONICAL + escaped + "$")
    digits = pc.replace_substring_regex(texts, "^-|" + escaped + "$", "")
    negative = pc.starts_with(texts, "-")
    limit = pc.if_else(negative, "9223372036854775808", "9223372036854775807")
    too_big = pc.and_(pc.equal(pc.utf8_length(digits), 19), pc.greater(digits, limit))
    ok = pc.and_(ok, pc.invert(too_big)).fill_null(False)
    number_text = pc.replace_substring_regex(pc.if_else(ok, texts, "0"), escaped + "$", "")
    numbers = pc.cast(number_text, pa.int64()).to_numpy(zero_copy_only=False)
    return ok.to_numpy(zero_copy_only=False), numbers


def _integer_dictionary(texts: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct texts of a CSV id column as integers with a missing mask, if they all are.

    All are when every text but the empty one (missing) is a canonical integer, or every one is
    a canonical integer followed by ``.0`` (a whole float). Else None: text ids.
    """
    missing = pc.equal(texts, "").to_numpy(zero_copy_only=False)
    for suffix in ("", ".0"):
        ok, numbers = _canonical_ints(texts, suffix)
        if np.all(ok | missing):
            return numbers, missing
    return None


def _text_codes(encoded: pa.ChunkedArray, *, integers: bool = False) -> tuple[IdMap, np.ndarray]:
    """Codes of a dictionary-encoded text column: only the distinct values become Python str.

    With ``integers``, a column whose distinct values all are integers (see
    ``_integer_dictionary``) gets integer ids.
    """
    encoded = encoded.unify_dictionaries()
    if encoded.num_chunks == 0:
        return IdMap(np.array([], dtype=str), np.arange(0)), np.empty(0, dtype=np.int64)
    texts = encoded.chunk(0).dictionary.fill_null("")
    as_ints = _integer_dictionary(texts) if integers else None
    if as_ints is None:
        dictionary = np.asarray(texts.to_pylist(), dtype=str)
        present = dictionary != ""
    else:
        dictionary, missing = as_ints
        present = ~missing
    ids = np.sort(dictionary[present])
    # One slot past the end holds -1, so a null index (filled with -1) maps to "missing".
    rank = np.full(dictionary.size + 1, -1, dtype=np.int64)
    rank[:-1][present] = np.searchsorted(ids, dictionary[present])
    codes = np.empty(len(encoded), dtype=np.int64)
    start = 0
    for chunk in encoded.chunks:  # a handful of chunks; each mapped in one vectorised step
        indices = chunk.indices.fill_null(-1).to_numpy()
        codes[start : start + indices.size] = rank[indices]
        start += indices.size
    return IdMap(ids, np.arange(ids.size)), codes


def _number_codes(path: Path, column: str, values: pa.ChunkedArray) -> tuple[IdMap, np.ndarray]:
    """Codes of a numeric id column; float ids must be whole numbers (17850.0 -> 17850)."""
    missing = values.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_floating(values.type):
        raw = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        missing |= np.isnan(raw)
        bad = ~missing & ((raw != np.floor(raw)) | (np.abs(raw) >= 2.0**63))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: column {column!r} has {raw[row]:g} at {_where(path, row)}; "
                "ids must be text or whole numbers"
            )
        ints = np.where(missing, 0.0, raw).astype(np.int64)
        del raw
    else:
        ints = values.fill_null(0).to_numpy().astype(np.int64, copy=False)
    uniques, codes = _factorize_ints(ints, missing)
    return IdMap(uniques, np.arange(uniques.size)), codes


def _factorize_ints(values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and codes (-1 where missing); dense ids skip the sort."""
    valid = values[~missing] if missing.any() else values
    if valid.size == 0:
        return np.empty(0, dtype=np.int64), np.full(values.size, -1, dtype=np.int64)
    low, high = int(valid.min()), int(valid.max())
    if high - low < max(valid.size, 1 << 16):
        # Ids within a range no longer than the column: a presence table, no sort (fast).
        present = np.zeros(high - low + 1, dtype=bool)
        present[valid - low] = True
        del valid
        rank = np.cumsum(present, dtype=np.int64) - 1
        uniques = np.flatnonzero(present) + low
        if not missing.any():
            return uniques, rank[values - low]
        codes = rank[np.where(missing, low, values) - low]
        codes[missing] = -1
        return uniques, codes
    uniques, valid_codes = factorize(valid)
    codes = np.full(values.size, -1, dtype=np.int64)
    codes[~missing] = valid_codes
    return uniques, codes


def _first_unreadable(values: pa.ChunkedArray, kind: pa.DataType) -> int | None:
    """The first row of ``values`` that cannot be cast to ``kind`` (arrow names the last one).

    Casts slices in file order and bisects the first failing slice: only errors pay for it.
    """
    step, start = 1 << 16, 0
    flat = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    while start < len(flat):
        low, high = start, min(start + step, len(flat))
        if _casts(flat.slice(low, high - low), kind):
            start = high
            continue
        while high - low > 1:  # the slice [low, high) holds a failure; find its first row
            middle = (low + high) // 2
            if _casts(flat.slice(low, middle - low), kind):
                low = middle
            else:
                high = middle
        return low
    return None


def _casts(values: pa.Array, kind: pa.DataType) -> bool:
    try:
        pc.cast(values, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _bad_value(
    path: Path, column: str, values: pa.ChunkedArray, kind: pa.DataType, exc: Exception
) -> DataError:
    row = _first_unreadable(values, kind)
    if row is None:
        return DataError(f"{path}: column {column!r}: {_first_line(exc)}")
    value = values[row].as_py()
    return DataError(f"{path}: column {column!r}: cannot read {value!r} at {_where(path, row)}")


def _as_float(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    """A numeric (or numeric text) column as float64; nulls become NaN."""
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        try:
            values = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _bad_value(path, column, values, pa.float64(), exc) from None
    return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _numbers(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    _no_nulls(path, column, values)
    return _as_float(path, column, values)


def _seconds(
    path: Path,
    column: str,
    values: pa.ChunkedArray,
    time_format: str | None = None,
    time_unit: str | None = None,
) -> np.ndarray:
    """Unix seconds from a timestamp, date, text (ISO 8601 or ``time_format``) or epoch column."""
    _no_nulls(path, column, values)
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _epoch_seconds(path, column, values, time_unit)
    if _is_text(kind):
        if time_format is not None:
            values = _strptime(path, column, values, time_format)
        else:
            values = _iso_times(path, column, values)
        kind = values.type
    if pa.types.is_date(kind):
        values = pc.cast(values, pa.timestamp("s"))
        kind = values.type
    if not pa.types.is_timestamp(kind):
        raise DataError(f"{path}: column {column!r} has type {kind}; expected dates or seconds")
    seconds = pc.cast(pc.cast(values, pa.timestamp("s"), safe=False), pa.int64())
    return seconds.to_numpy().astype(np.float64)


def _epoch_seconds(
    path: Path, column: str, values: pa.ChunkedArray, time_unit: str | None
) -> np.ndarray:
    """Seconds from epoch numbers in ``time_unit``, or in the unit their magnitude implies."""
    raw = values.to_numpy().astype(np.float64, copy=False)
    if not np.all(np.isfinite(raw)):
        row = int(np.flatnonzero(~np.isfinite(raw))[0])
        raise DataError(
            f"{path}: column {column!r} has {raw[row]:g} at {_where(path, row)}; "
            "expected a date/time or Unix time"
        )
    unit = time_unit
    if unit is None:
        largest = float(np.max(np.abs(raw))) if raw.size else 0.0
        unit = next((name for limit, name in _UNIT_LIMITS if largest < limit), "ns")
    seconds = raw / TIME_UNITS[unit] if unit != "s" else raw
    late = np.abs(seconds) > _LAST_SECOND
    if late.any():
        row = int(np.flatnonzero(late)[0])
        raise DataError(
            f"{path}: column {column!r} has {raw[row]:g} at {_where(path, row)}, which as "
            f"Unix time in {unit} is after the year 9999; give the unit with --time-unit "
            "s|ms|us|ns"
        )
    return seconds


def _strptime(path: Path, column: str, values: pa.ChunkedArray, time_format: str) -> pa.Array:
    """Text times read with a strptime-style format; the first row it does not fit is named."""
    try:
        parsed = pc.strptime(values, format=time_format, unit="s", error_is_null=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ParameterError(f"time format {time_format!r}: {_first_line(exc)}") from None
    if parsed.null_count:
        row = int(pc.index(pc.is_null(parsed), True).as_py())
        raise DataError(
            f"{path}: column {column!r}: cannot read {values[row].as_py()!r} at "
            f"{_where(path, row)} with the time format {time_format!r}"
        )
    return parsed


#: A time of day followed by a zone (Z, +01, +0100, +01:00): the text has a zone offset.
_ZONE = r"[T ]\d{2}(:\d{2}){0,2}(\.\d+)?\s?(Z|z|[+-]\d{2}(:?\d{2})?)$"
_ISO_HINT = "expected a date/time such as 2025-03-01 14:30:00, or Unix time"


def _iso_times(path: Path, column: str, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO 8601 text times, all without a zone offset (read as UTC) or all with one."""
    for kind in (pa.timestamp("s"), pa.timestamp("s", tz="UTC")):
        try:
            return pc.cast(values, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    # Neither form throughout: name the first row that is unreadable or in the other form.
    zoned = pc.match_substring_regex(values, _ZONE)
    candidates = []
    for has_zone, kind, stand_in in (
        (False, pa.timestamp("s"), "1970-01-01"),
        (True, pa.timestamp("s", tz="UTC"), "1970-01-01T00:00:00Z"),
    ):
        own = zoned if has_zone else pc.invert(zoned)
        row = _first_unreadable(pc.if_else(own, values, stand_in), kind)
        if row is not None:
            candidates.append(row)
    zones = zoned.to_numpy(zero_copy_only=False)
    other = np.flatnonzero(zones != zones[0])
    if candidates and (other.size == 0 or min(candidates) < other[0]):
        row = min(candidates)
        raise DataError(
            f"{path}: column {column!r}: cannot read {values[row].as_py()!r} at "
            f"{_where(path, row)}; {_ISO_HINT}"
        )
    row = int(other[0])
    has, lacks = ("has", "lacks") if zones[row] else ("lacks", "has")
    raise DataError(
        f"{path}: column {column!r}: {values[row].as_py()!r} at {_where(path, row)} {has} a "
        f"zone offset that {values[0].as_py()!r} at {_where(path, 0)} {lacks}; write every "
        "time with an offset or every time without"
    )


def _check_cleaning(cleaning: Cleaning) -> None:
    for name in ("min_user_interactions", "min_item_interactions"):
        value = getattr(cleaning, name)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name}={value!r}: expected a whole number of at least 1")
    weight = cleaning.min_weight
    if weight is not None and (
        not isinstance(weight, numbers.Real) or isinstance(weight, bool) or not np.isfinite(weight)
    ):
        raise ParameterError(f"min_weight={weight!r}: expected a finite number, or None")
    for column in cleaning.require_positive:
        if not isinstance(column, str) or not column:
            raise ParameterError(f"require_positive: {column!r} is not a column name")


# 2**64 / golden ratio (splitmix64's increment): odd multiples of it fold keys into one value.
_GOLDEN = 0x9E3779B97F4A7C15


def _later_duplicates(keys: list[np.ndarray]) -> np.ndarray:
    """True for each row equal in every key (int64 or float64 arrays) to an earlier row.

    The keys are folded into one 64-bit value per row, and one sort of those finds the rows whose
    value is shared: equal rows always share it. Only those few rows are then sorted by every key
    to tell duplicates from coincidences, so the answer is exact and the common case costs one
    sort of one array instead of a multi-key sort of everything.
    """
    n = keys[0].size
    folded = np.zeros(n, dtype=np.uint64)
    scratch = np.empty(n, dtype=np.uint64)  # one buffer reused: no allocation per step
    for number, key in enumerate(keys):
        if key.dtype.kind == "f":
            np.add(key, 0.0, out=scratch.view(np.float64))  # -0.0 == 0.0; make their bits equal
        else:
            scratch[...] = key.view(np.uint64)
        np.multiply(scratch, np.uint64(_GOLDEN * (2 * number + 1) % 2**64), out=scratch)
        folded += scratch
        np.right_shift(folded, np.uint64(29), out=scratch)
        folded ^= scratch
    del scratch
    ordered = np.sort(folded)
    shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    later = np.zeros(n, dtype=bool)
    if shared.size == 0:
        return later
    position = np.minimum(np.searchsorted(shared, folded), shared.size - 1)
    rows = np.flatnonzero(shared[position] == folded)  # ascending: file order
    del folded, position
    sub_keys = [key[rows] for key in keys]
    order = np.lexsort(sub_keys[::-1])  # stable: the earliest of equal rows comes first
    same = np.ones(rows.size - 1, dtype=bool)
    for key in sub_keys:
        sorted_key = key[order]
        same &= sorted_key[1:] == sorted_key[:-1]
    later[rows[order[1:][same]]] = True
    return later


def _k_core(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, min_user: int, min_item: int
) -> np.ndarray:
    """Which events belong to the k-core: users with >= ``min_user`` distinct items and items
    with >= ``min_item`` distinct users, after removing the others until nothing changes."""
    pairs = np.sort(users * n_items + items)
    starts = np.empty(pairs.size, dtype=bool)
    starts[:1] = True
    np.not_equal(pairs[1:], pairs[:-1], out=starts[1:])
    pairs = pairs[starts]
    pair_user, pair_item = pairs // n_items, pairs % n_items
    del pairs, starts
    alive = np.ones(pair_user.size, dtype=bool)
    while True:
        user_count = np.bincount(pair_user[alive], minlength=n_users)
        item_count = np.bincount(pair_item[alive], minlength=n_items)
        user_ok, item_ok = user_count >= min_user, item_count >= min_item
        still = alive & user_ok[pair_user] & item_ok[pair_item]
        if np.count_nonzero(still) == np.count_nonzero(alive):
            break
        alive = still
    # Counts only fall, so a pair removed earlier still has a failing user or item here.
    return user_ok[users] & item_ok[items]


def _compact(codes: np.ndarray, ids: IdMap) -> tuple[np.ndarray, IdMap]:
    """Codes renumbered over the ids that still occur (kept in sorted order)."""
    present = np.bincount(codes, minlength=len(ids)) > 0
    rank = np.cumsum(present, dtype=np.int64) - 1
    kept = ids.ids[present]
    return rank[codes], IdMap(kept, np.arange(kept.size))


def _fingerprint(events: Events) -> str:
    """sha256 of the events' content, independent of the file format and of dropped rows."""
    digest = hashlib.sha256()

    def add(label: str, values: np.ndarray | None, dtype: str) -> None:
        digest.update(f"\0{label}\0".encode())
        if values is None:
            digest.update(b"none")
        else:
            digest.update(np.ascontiguousarray(values, dtype=dtype).data)

    for label, ids in (("users", events.users), ("items", events.items)):
        if ids.kind == "str":
            digest.update(f"\0{label}:str:{len(ids)}\0".encode())
            digest.update("\0".join(ids.ids.tolist()).encode())
        else:
            add(f"{label}:int:{len(ids)}", ids.ids, "<i8")
    add("user_codes", events.user_codes, "<i8")
    add("item_codes", events.item_codes, "<i8")
    add("weights", events.weights, "<f4")
    add("timestamps", events.timestamps, "<f8")
    return digest.hexdigest()[:16]


def _check_time_options(time_format: str | None, time_unit: str | None) -> None:
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ParameterError(f"time_unit={time_unit!r}: expected one of {', '.join(TIME_UNITS)}")
    if time_format is not None and (not isinstance(time_format, str) or "%" not in time_format):
        raise ParameterError(
            f"time_format={time_format!r}: expected a strptime-style format such as "
            "'%d/%m/%Y %H:%M'"
        )


def load_events(
    path: str | os.PathLike[str],
    columns: Columns = Columns(),
    cleaning: Cleaning = Cleaning(),
    *,
    delimiter: str | None = None,
    time_format: str | None = None,
    time_unit: str | None = None,
) -> tuple[Events, LoadReport]:
    """Read a transactions file (CSV or Parquet) into coded events, applying ``cleaning``.

    The id maps hold only ids that still have events, sorted. Weights of kept rows are as given
    (repeated pairs are summed when the matrix is built). Returns the events and a report of
    what each cleaning rule dropped. ``delimiter`` (CSV; None: detect), ``time_format`` (text
    times; None: ISO 8601) and ``time_unit`` (numeric times; None: by magnitude) are described
    in the module docstring.
    """
    source = Path(path)
    _check_cleaning(cleaning)
    _check_time_options(time_format, time_unit)
    delimiter = _check_delimiter(delimiter)
    names = _file_schema(source, delimiter).names
    weight = columns.weight or (DEFAULT_WEIGHT_COLUMN if DEFAULT_WEIGHT_COLUMN in names else None)
    time = columns.time or (DEFAULT_TIME_COLUMN if DEFAULT_TIME_COLUMN in names else None)
    if cleaning.min_weight is not None and weight is None:
        raise ParameterError(
            f"min_weight={cleaning.min_weight:g} needs a weight column: {source} has no "
            f"{DEFAULT_WEIGHT_COLUMN!r} column and none was named"
        )
    positive = list(dict.fromkeys(cleaning.require_positive))
    wanted = list(dict.fromkeys([columns.user, columns.item, *(c for c in (weight, time) if c)]))
    wanted += [c for c in positive if c not in wanted]
    from_csv = _format(source) == "csv"
    # CSV ids are read as text, dictionary-encoded while read (less memory at 20M rows than
    # plain text, see benchmarks/bench_id_memory.py), and become integers only where exact.
    table = read_table(
        source,
        wanted,
        dictionary=[columns.user, columns.item],
        text=[time] if time and time_format else [],
        delimiter=delimiter,
    )
    n = table.num_rows
    # Take the columns out of the table so each one's memory goes once it has been converted.
    raw = {name: table.column(name) for name in table.column_names}
    del table
    uses = Counter(c for c in (columns.user, columns.item, weight, time, *positive) if c)

    def column(name: str) -> pa.ChunkedArray:
        uses[name] -= 1
        return raw.pop(name) if uses[name] == 0 else raw[name]

    # Convert every column first, so that any error names the row in the file.
    users, user_codes = _id_codes(source, columns.user, column(columns.user), from_csv=from_csv)
    items, item_codes = _id_codes(source, columns.item, column(columns.item), from_csv=from_csv)
    weights = _numbers(source, weight, column(weight)) if weight else None
    if weights is not None and not np.all(np.isfinite(weights)):
        row = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise DataError(
            f"{source}: column {weight!r} has {weights[row]:g} at {_where(source, row)}; "
            "weights must be finite"
        )
    timestamps = _seconds(source, time, column(time), time_format, time_unit) if time else None
    extra = {name: _as_float(source, name, column(name)) for name in positive}
    raw.clear()
    pa.default_memory_pool().release_unused()  # the arrow columns just freed

    dropped: dict[str, int] = {}
    keep = np.ones(n, dtype=bool)

    def drop(rule: str, failing: np.ndarray) -> None:
        newly = failing & keep
        dropped[rule] = int(np.count_nonzero(newly))
        keep[newly] = False

    missing_user, missing_item = user_codes < 0, item_codes < 0
    if cleaning.drop_missing:
        drop("missing user or item", missing_user | missing_item)
    else:
        for name, missing in ((columns.user, missing_user), (columns.item, missing_item)):
            if missing.any():
                raise _empty_id(source, name, int(np.flatnonzero(missing)[0]))
    del missing_user, missing_item
    if weights is not None:
        if cleaning.drop_nonpositive:
            drop("non-positive weight", weights <= 0)
        elif np.any(weights < 0):
            row = int(np.flatnonzero(weights < 0)[0])
            raise DataError(
                f"{source}: column {weight!r} has {weights[row]:g} at {_where(source, row)}; "
                "weights must be finite and not negative"
            )
    for name, values in extra.items():
        drop(f"non-positive {name}", ~(values > 0))  # NaN (empty) is not positive
    if cleaning.drop_duplicates:
        rows = np.flatnonzero(keep) if not keep.all() else None
        keys = [user_codes * len(items) + item_codes]
        keys += [v for v in (weights, timestamps) if v is not None]
        keys += [extra[c] for c in extra if c not in (weight, time)]
        if rows is None:
            drop("duplicate rows", _later_duplicates(keys))
        else:
            later = np.zeros(n, dtype=bool)
            later[rows[_later_duplicates([key[rows] for key in keys])]] = True
            drop("duplicate rows", later)
        del keys
    del extra
    if cleaning.min_weight is not None:
        drop(f"below min weight {cleaning.min_weight:g}", weights < cleaning.min_weight)
    min_user, min_item = cleaning.min_user_interactions, cleaning.min_item_interactions
    if min_user > 1 or min_item > 1:
        rows = np.flatnonzero(keep)
        in_core = _k_core(
            user_codes[rows], item_codes[rows], len(users), len(items), min_user, min_item
        )
        drop(f"k-core (users >= {min_user}, items >= {min_item})", ~_scatter(rows, in_core, n))

    rows_kept = int(np.count_nonzero(keep))
    if rows_kept == 0:
        counts = ", ".join(f"{rule}: {count:,}" for rule, count in dropped.items() if count)
        raise DataError(f"{source}: no rows left after cleaning ({counts})")
    if rows_kept < n:
        user_codes, item_codes = user_codes[keep], item_codes[keep]
        weights = None if weights is None else weights[keep]
        timestamps = None if timestamps is None else timestamps[keep]
    user_codes, users = _compact(user_codes, users)
    item_codes, items = _compact(item_codes, items)
    events = Events(
        user_codes,
        item_codes,
        users,
        items,
        None if weights is None else weights.astype(np.float32),
        timestamps,
    )
    report = LoadReport(
        path=str(source),
        rows_read=n,
        dropped=dropped,
        rows_kept=rows_kept,
        n_users=len(users),
        n_items=len(items),
        fingerprint=_fingerprint(events),
        weight_column=weight,
        time_column=time,
    )
    return events, report


def _scatter(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """A length-``n`` boolean array that is ``values`` at ``rows`` and True elsewhere."""
    out = np.ones(n, dtype=bool)
    out[rows] = values
    return out


def read_interactions(
    path: str | os.PathLike[str],
    columns: Columns = Columns(),
    cleaning: Cleaning = Cleaning(),
    **dialect: str | None,
) -> Interactions:
    """The interaction matrix of a transactions file (CSV or Parquet), after ``cleaning``.

    ``dialect``: the ``delimiter``, ``time_format`` and ``time_unit`` of ``load_events``.
    """
    return interactions_from_events(load_events(path, columns, cleaning, **dialect)[0])


def read_catalog(
    path: str | os.PathLike[str], item_column: str = "item_id", *, delimiter: str | None = None
) -> pa.Table:
    """An item catalogue: one row per item id, any other columns (category, price, ...).

    From a CSV the item ids are text exactly as written (``catalog_attributes`` matches them).
    """
    source = Path(path)
    delimiter = _check_delimiter(delimiter)
    names = _file_schema(source, delimiter).names
    return read_table(
        source,
        [item_column, *(n for n in names if n != item_column)],
        text=[item_column],
        delimiter=delimiter,
    )


def _catalog_positions(values: pa.ChunkedArray, items: IdMap) -> np.ndarray:
    """Each catalogue row's index in ``items``; -1 where the id is missing or not an item."""
    if _is_text(values.type):
        encoded = pc.dictionary_encode(values).unify_dictionaries()
        if encoded.num_chunks == 0:
            return np.empty(0, dtype=np.int64)
        texts = encoded.chunk(0).dictionary.fill_null("")
        if items.kind == "str":
            found = items.index(np.asarray(texts.to_pylist(), dtype=str))
        else:  # only an id's canonical text names it: "007" is not item 7
            ok, numbers = _canonical_ints(texts)
            found = np.where(ok, items.index(numbers), -1)
        position = np.append(found, -1)
        indices = [c.indices.fill_null(-1).to_numpy() for c in encoded.chunks]
        return position[np.concatenate(indices)]
    if pa.types.is_floating(values.type) and items.kind == "int":
        raw = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        whole = np.isfinite(raw) & (raw == np.floor(raw)) & (np.abs(raw) < 2.0**63)
        position = items.index(np.where(whole, raw, 0).astype(np.int64))
        return np.where(whole, position, -1)
    if pa.types.is_integer(values.type) and values.null_count:
        position = items.index(values.fill_null(0).to_numpy())
        return np.where(values.is_null().to_numpy(zero_copy_only=False), -1, position)
    return items.index(values.to_numpy(zero_copy_only=False))


def catalog_attributes(
    catalog: pa.Table, items: IdMap, item_column: str = "item_id"
) -> dict[str, np.ndarray]:
    """Each catalogue column as strings aligned with ``items`` ("" where an item is not listed).

    An item listed several times takes, in each column, its first non-empty value.
    """
    position = _catalog_positions(catalog[item_column], items)
    out: dict[str, np.ndarray] = {}
    for name in catalog.column_names:
        if name == item_column:
            continue
        text = catalog[name].cast(pa.string()).fill_null("")
        usable = np.flatnonzero(
            (position >= 0) & pc.not_equal(text, "").to_numpy(zero_copy_only=False)
        )
        # The first usable row of each item: a stable sort by item keeps file order within one.
        order = np.argsort(position[usable], kind="stable")
        ordered = position[usable][order]
        first = np.ones(ordered.size, dtype=bool)
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        chosen = usable[order][first]
        values = np.asarray(text.take(pa.array(chosen)).to_pylist(), dtype=str)
        column = np.full(len(items), "", dtype=values.dtype if values.size else "<U1")
        column[ordered[first]] = values
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
