"""Column values as growthrec needs them: ids as codes, numbers, times in seconds.

Every value that cannot be read is an error naming the column and the first such row.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from growthrec.core.interactions import (
    IdMap,
    factorize,
)
from growthrec.data.files import file_format, first_line, is_text
from growthrec.errors import DataError, ParameterError

__all__ = ["TIME_UNITS"]


#: Units of numeric (epoch) times and their number per second.
TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
#: Below these largest absolute values a numeric time column is read in this unit.
_UNIT_LIMITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))
#: 9999-12-31 23:59:59 UTC: a time after it is a unit mistake, not a purchase.
_LAST_SECOND = 253_402_300_799


def row_where(path: Path, row: int) -> str:
    """Where row ``row`` (from 0) is: ``row 5``, and ``(line 6)`` in a CSV file.

    ``path`` may be a label without a suffix (``table``, for an in-memory table): rows only.
    """
    line = f" (line {row + 2})" if path.suffix and file_format(path) == "csv" else ""
    return f"row {row + 1}{line}"


def _no_nulls(path: Path, column: str, values: pa.ChunkedArray) -> None:
    if values.null_count:
        row = int(pc.index(pc.is_null(values), True).as_py())
        raise DataError(f"{path}: column {column!r} is empty at {row_where(path, row)}")


def empty_id(path: Path, column: str, row: int) -> DataError:
    return DataError(f"{path}: column {column!r} is empty at {row_where(path, row)}")


def id_codes(
    path: Path, column: str, values: pa.ChunkedArray, *, from_csv: bool = False
) -> tuple[IdMap, np.ndarray]:
    """Sorted distinct ids and each row's code; -1 where the id is missing (null, "" or NaN).

    ``from_csv``: the column is the file's text, which becomes integers only where that cannot
    change an id (see the module docstring).
    """
    kind = values.type
    if pa.types.is_dictionary(kind) and is_text(kind.value_type):
        return _text_codes(values, integers=from_csv)
    if is_text(kind):
        return _text_codes(pc.dictionary_encode(values), integers=from_csv)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _number_codes(path, column, values)
    raise DataError(f"{path}: column {column!r} has type {kind}; ids must be text or integers")


#: An integer in canonical form within 19 digits (int64's range is checked apart).
_CANONICAL = r"^(0|-?[1-9][0-9]{0,18})"


def canonical_ints(texts: pa.Array, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
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
        ok, numbers = canonical_ints(texts, suffix)
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
                f"{path}: column {column!r} has {raw[row]:g} at {row_where(path, row)}; "
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
        return DataError(f"{path}: column {column!r}: {first_line(exc)}")
    value = values[row].as_py()
    return DataError(f"{path}: column {column!r}: cannot read {value!r} at {row_where(path, row)}")


def as_float(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    """A numeric (or numeric text) column as float64; nulls become NaN."""
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        try:
            values = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _bad_value(path, column, values, pa.float64(), exc) from None
    return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def parse_numbers(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    _no_nulls(path, column, values)
    return as_float(path, column, values)


def parse_seconds(
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
    if is_text(kind):
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
            f"{path}: column {column!r} has {raw[row]:g} at {row_where(path, row)}; "
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
            f"{path}: column {column!r} has {raw[row]:g} at {row_where(path, row)}, which as "
            f"Unix time in {unit} is after the year 9999; give the unit with --time-unit "
            "s|ms|us|ns"
        )
    return seconds


def _strptime(path: Path, column: str, values: pa.ChunkedArray, time_format: str) -> pa.Array:
    """Text times read with a strptime-style format; the first row it does not fit is named."""
    try:
        parsed = pc.strptime(values, format=time_format, unit="s", error_is_null=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ParameterError(f"time format {time_format!r}: {first_line(exc)}") from None
    if parsed.null_count:
        row = int(pc.index(pc.is_null(parsed), True).as_py())
        raise DataError(
            f"{path}: column {column!r}: cannot read {values[row].as_py()!r} at "
            f"{row_where(path, row)} with the time format {time_format!r}"
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
            f"{row_where(path, row)}; {_ISO_HINT}"
        )
    row = int(other[0])
    has, lacks = ("has", "lacks") if zones[row] else ("lacks", "has")
    raise DataError(
        f"{path}: column {column!r}: {values[row].as_py()!r} at {row_where(path, row)} {has} a "
        f"zone offset that {values[0].as_py()!r} at {row_where(path, 0)} {lacks}; write every "
        "time with an offset or every time without"
    )
