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
empty weight or time) are errors naming the column and the row, wherever they are.
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
    "Cleaning",
    "Columns",
    "LoadReport",
    "catalog_attributes",
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


def _schema(path: Path, kind: str) -> pa.Schema:
    """The file's schema (for CSV: as inferred from its first block)."""
    try:
        if kind == "parquet":
            schema = pq.read_schema(path)
        else:
            with pa_csv.open_csv(path) as reader:
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


def _file_schema(source: Path) -> pa.Schema:
    """The schema of an existing, non-empty CSV or Parquet file."""
    if not source.is_file():
        raise DataError(f"{source}: no such file")
    if source.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty")
    return _schema(source, _format(source))


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def read_table(
    path: str | os.PathLike[str], columns: list[str], *, dictionary: Sequence[str] = ()
) -> pa.Table:
    """The named columns of a CSV or Parquet file; a missing file or column is a ``DataError``.

    Text columns named in ``dictionary`` are read dictionary-encoded (ids: far less memory).
    """
    source = Path(path)
    schema = _file_schema(source)
    kind = _format(source)
    absent = [column for column in dict.fromkeys(columns) if column not in schema.names]
    if absent:
        which = "column" if len(absent) == 1 else "columns"
        raise DataError(
            f"{source}: no {which} {', '.join(map(repr, absent))}; "
            f"the file has {', '.join(map(repr, schema.names))}"
        )
    encode = [c for c in dictionary if c in columns and _is_text(schema.field(c).type)]
    try:
        if kind == "parquet":
            table = pq.read_table(source, columns=columns, read_dictionary=encode or None)
        else:
            types = {c: pa.dictionary(pa.int32(), pa.string()) for c in encode}
            table = pa_csv.read_csv(
                source,
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


def _id_codes(path: Path, column: str, values: pa.ChunkedArray) -> tuple[IdMap, np.ndarray]:
    """Sorted distinct ids and each row's code; -1 where the id is missing (null, "" or NaN)."""
    kind = values.type
    if pa.types.is_dictionary(kind) and _is_text(kind.value_type):
        return _text_codes(values)
    if _is_text(kind):
        return _text_codes(pc.dictionary_encode(values))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _number_codes(path, column, values)
    raise DataError(f"{path}: column {column!r} has type {kind}; ids must be text or integers")


def _text_codes(encoded: pa.ChunkedArray) -> tuple[IdMap, np.ndarray]:
    """Codes of a dictionary-encoded text column: only the distinct values become Python str."""
    encoded = encoded.unify_dictionaries()
    if encoded.num_chunks == 0:
        return IdMap(np.array([], dtype=str), np.arange(0)), np.empty(0, dtype=np.int64)
    dictionary = np.asarray(encoded.chunk(0).dictionary.fill_null("").to_pylist(), dtype=str)
    present = dictionary != ""
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


def _bad_value(path: Path, column: str, values: pa.ChunkedArray, exc: Exception) -> DataError:
    match = re.search(r"[Ff]ailed to parse string: '([^']*)'", str(exc))
    if match:
        row = int(pc.index(values, match.group(1)).as_py())
        return DataError(
            f"{path}: column {column!r}: cannot read {match.group(1)!r} at {_where(path, row)}"
        )
    return DataError(f"{path}: column {column!r}: {_first_line(exc)}")


def _as_float(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    """A numeric (or numeric text) column as float64; nulls become NaN."""
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        try:
            values = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _bad_value(path, column, values, exc) from None
    return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _numbers(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    _no_nulls(path, column, values)
    return _as_float(path, column, values)


def _seconds(path: Path, column: str, values: pa.ChunkedArray) -> np.ndarray:
    """Unix seconds from a timestamp, date, ISO 8601 text or numeric (seconds) column."""
    _no_nulls(path, column, values)
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        seconds = values.to_numpy().astype(np.float64, copy=False)
        if not np.all(np.isfinite(seconds)):
            row = int(np.flatnonzero(~np.isfinite(seconds))[0])
            raise DataError(
                f"{path}: column {column!r} has {seconds[row]:g} at {_where(path, row)}; "
                "expected a date/time or Unix seconds"
            )
        return seconds
    if _is_text(kind):
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


def load_events(
    path: str | os.PathLike[str],
    columns: Columns = Columns(),
    cleaning: Cleaning = Cleaning(),
) -> tuple[Events, LoadReport]:
    """Read a transactions file (CSV or Parquet) into coded events, applying ``cleaning``.

    The id maps hold only ids that still have events, sorted. Weights of kept rows are as given
    (repeated pairs are summed when the matrix is built). Returns the events and a report of
    what each cleaning rule dropped.
    """
    source = Path(path)
    _check_cleaning(cleaning)
    names = _file_schema(source).names
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
    table = read_table(source, wanted, dictionary=[columns.user, columns.item])
    n = table.num_rows
    # Take the columns out of the table so each one's memory goes once it has been converted.
    raw = {name: table.column(name) for name in table.column_names}
    del table
    uses = Counter(c for c in (columns.user, columns.item, weight, time, *positive) if c)

    def column(name: str) -> pa.ChunkedArray:
        uses[name] -= 1
        return raw.pop(name) if uses[name] == 0 else raw[name]

    # Convert every column first, so that any error names the row in the file.
    users, user_codes = _id_codes(source, columns.user, column(columns.user))
    items, item_codes = _id_codes(source, columns.item, column(columns.item))
    weights = _numbers(source, weight, column(weight)) if weight else None
    if weights is not None and not np.all(np.isfinite(weights)):
        row = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise DataError(
            f"{source}: column {weight!r} has {weights[row]:g} at {_where(source, row)}; "
            "weights must be finite"
        )
    timestamps = _seconds(source, time, column(time)) if time else None
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
) -> Interactions:
    """The interaction matrix of a transactions file (CSV or Parquet), after ``cleaning``."""
    return interactions_from_events(load_events(path, columns, cleaning)[0])


def read_catalog(path: str | os.PathLike[str], item_column: str = "item_id") -> pa.Table:
    """An item catalogue: one row per item id, any other columns (category, price, ...)."""
    source = Path(path)
    names = _file_schema(source).names
    return read_table(source, [item_column, *(n for n in names if n != item_column)])


def _catalog_positions(values: pa.ChunkedArray, items: IdMap) -> np.ndarray:
    """Each catalogue row's index in ``items``; -1 where the id is missing or not an item."""
    if _is_text(values.type) and items.kind == "str":
        encoded = pc.dictionary_encode(values).unify_dictionaries()
        if encoded.num_chunks == 0:
            return np.empty(0, dtype=np.int64)
        dictionary = encoded.chunk(0).dictionary.fill_null("").to_numpy(zero_copy_only=False)
        position = np.append(items.index(dictionary.astype(str)), -1)
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
