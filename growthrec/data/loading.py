"""Loading transactions: one file into coded ``Events``, cleaned by rule, each rule counted.

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

import hashlib
import os
from collections import Counter
from pathlib import Path

import attrs
import numpy as np
import pyarrow as pa

from growthrec.core.interactions import (
    Events,
    Interactions,
    interactions_from_events,
)
from growthrec.data.cleaning import (
    Cleaning,
    check_cleaning,
    compact_codes,
    k_core,
    later_duplicates,
)
from growthrec.data.files import check_delimiter, file_format, file_schema, read_table
from growthrec.data.parsing import (
    TIME_UNITS,
    as_float,
    empty_id,
    id_codes,
    parse_numbers,
    parse_seconds,
    row_where,
)
from growthrec.errors import DataError, ParameterError

__all__ = [
    "DEFAULT_TIME_COLUMN",
    "DEFAULT_WEIGHT_COLUMN",
    "Columns",
    "LoadReport",
    "load_events",
    "read_interactions",
]


#: Used as weight / time columns when present and no other column is named.
DEFAULT_WEIGHT_COLUMN = "quantity"
DEFAULT_TIME_COLUMN = "timestamp"


@attrs.frozen
class Columns:
    """Which columns of a transactions file hold the user, the item, the weight and the time.

    ``weight``/``time`` of ``None`` mean: use ``quantity``/``timestamp`` if the file has them.
    """

    user: str = "user_id"
    item: str = "item_id"
    weight: str | None = None
    time: str | None = None


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
    check_cleaning(cleaning)
    _check_time_options(time_format, time_unit)
    delimiter = check_delimiter(delimiter)
    names = file_schema(source, delimiter).names
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
    from_csv = file_format(source) == "csv"
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
    users, user_codes = id_codes(source, columns.user, column(columns.user), from_csv=from_csv)
    items, item_codes = id_codes(source, columns.item, column(columns.item), from_csv=from_csv)
    weights = parse_numbers(source, weight, column(weight)) if weight else None
    if weights is not None and not np.all(np.isfinite(weights)):
        row = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise DataError(
            f"{source}: column {weight!r} has {weights[row]:g} at {row_where(source, row)}; "
            "weights must be finite"
        )
    timestamps = parse_seconds(source, time, column(time), time_format, time_unit) if time else None
    extra = {name: as_float(source, name, column(name)) for name in positive}
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
                raise empty_id(source, name, int(np.flatnonzero(missing)[0]))
    del missing_user, missing_item
    if weights is not None:
        if cleaning.drop_nonpositive:
            drop("non-positive weight", weights <= 0)
        elif np.any(weights < 0):
            row = int(np.flatnonzero(weights < 0)[0])
            raise DataError(
                f"{source}: column {weight!r} has {weights[row]:g} at {row_where(source, row)}; "
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
            drop("duplicate rows", later_duplicates(keys))
        else:
            later = np.zeros(n, dtype=bool)
            later[rows[later_duplicates([key[rows] for key in keys])]] = True
            drop("duplicate rows", later)
        del keys
    del extra
    if cleaning.min_weight is not None:
        drop(f"below min weight {cleaning.min_weight:g}", weights < cleaning.min_weight)
    min_user, min_item = cleaning.min_user_interactions, cleaning.min_item_interactions
    if min_user > 1 or min_item > 1:
        rows = np.flatnonzero(keep)
        in_core = k_core(
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
    user_codes, users = compact_codes(user_codes, users)
    item_codes, items = compact_codes(item_codes, items)
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
