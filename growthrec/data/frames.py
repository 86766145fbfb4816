"""Tables a notebook holds (pandas, polars, pyarrow) as events and interaction matrices.

Columns are read by name with the rules of the file loader (``growthrec.data.loading``), as a
Parquet file's typed columns are: integer ids are integers, text ids are text exactly as
written (``"007"`` stays ``"007"``), float ids that are whole numbers (``17850.0``) are
integers; weights are numbers; times are datetimes, dates, ISO 8601 text or Unix time.

A table is taken as it is: no cleaning rule runs (filter it first), duplicate pairs are summed
when the matrix is built, and a missing id, a missing or negative weight, or a time that cannot
be read is an error naming the column and the row (counted from 1, as for files).

pandas and polars are not dependencies: a polars frame is read through its ``to_arrow()``,
anything else (pandas, a dict of columns, an object with ``__arrow_c_stream__``) through
``pyarrow.table``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from growthrec.core.interactions import Events, IdMap, Interactions, interactions_from_events
from growthrec.data.files import first_line, is_text
from growthrec.data.loading import DEFAULT_TIME_COLUMN, DEFAULT_WEIGHT_COLUMN, Columns
from growthrec.data.parsing import TIME_UNITS, empty_id, id_codes, parse_numbers, parse_seconds
from growthrec.errors import DataError, ParameterError

__all__ = ["arrow_table", "events_from_table", "interactions_from_table"]

#: How errors name an in-memory table (no suffix: rows are named without file lines).
_SOURCE = Path("table")


def arrow_table(table: object) -> pa.Table:
    """``table`` as a pyarrow Table: a pyarrow table, a polars or pandas DataFrame, a dict of
    columns, or any object pyarrow can read."""
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pa.RecordBatch):
        return pa.Table.from_batches([table])
    to_arrow = getattr(table, "to_arrow", None)
    try:
        if callable(to_arrow):  # polars
            converted = to_arrow()
            return converted if isinstance(converted, pa.Table) else pa.table(converted)
        return pa.table(table)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise DataError(
            f"table: cannot read a {type(table).__name__} as a table ({first_line(exc)}); pass "
            "a pandas, polars or pyarrow table with one column per field"
        ) from None


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """Column ``name``, with dictionary-of-numbers and string-view columns made plain."""
    if name not in table.column_names:
        shown = ", ".join(repr(c) for c in table.column_names[:12])
        more = ", ..." if table.num_columns > 12 else ""
        raise DataError(
            f"table has no column {name!r} (its columns: {shown}{more}); name the columns "
            "with Columns(user=..., item=..., weight=..., time=...)"
        )
    values = table.column(name)
    kind = values.type
    if pa.types.is_dictionary(kind) and not is_text(kind.value_type):
        values = values.cast(kind.value_type)  # a pandas categorical of numbers, say
        kind = values.type
    if pa.types.is_string_view(kind):  # polars' text columns
        values = values.cast(pa.large_string())
    return values


def events_from_table(
    table: object,
    columns: Columns = Columns(),
    *,
    time_format: str | None = None,
    time_unit: str | None = None,
) -> Events:
    """Purchase events from a pandas/polars/pyarrow table, one per row, columns by name.

    ``columns`` names the user, item, weight and time columns; without a weight or time
    column named, ``quantity`` and ``timestamp`` are used when the table has them.
    ``time_format`` (strptime-style, for text times) and ``time_unit`` (``s``, ``ms``, ``us``
    or ``ns``, for numeric times; default: by magnitude) are as for files.
    """
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ParameterError(f"time_unit={time_unit!r}: expected one of {', '.join(TIME_UNITS)}")
    data = arrow_table(table)
    if data.num_rows == 0:
        raise DataError("table: no rows")
    names = data.column_names
    weight = columns.weight or (DEFAULT_WEIGHT_COLUMN if DEFAULT_WEIGHT_COLUMN in names else None)
    time = columns.time or (DEFAULT_TIME_COLUMN if DEFAULT_TIME_COLUMN in names else None)
    users, user_codes = _codes(data, columns.user)
    items, item_codes = _codes(data, columns.item)
    weights = None
    if weight is not None:
        values = _column(data, weight)
        kind = values.type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if not (numeric or pa.types.is_decimal(kind) or is_text(kind)):
            raise DataError(f"table: column {weight!r} has type {kind}; weights must be numbers")
        weights = parse_numbers(_SOURCE, weight, values)
        bad = ~np.isfinite(weights) | (weights < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"table: column {weight!r} has {weights[row]:g} at row {row + 1}; weights must "
                "be finite and not negative (filter returns out first)"
            )
    timestamps = None
    if time is not None:
        values = _column(data, time)
        timestamps = parse_seconds(_SOURCE, time, values, time_format, time_unit)
    return Events(
        user_codes,
        item_codes,
        users,
        items,
        None if weights is None else weights.astype(np.float32),
        timestamps,
    )


def _codes(data: pa.Table, name: str) -> tuple[IdMap, np.ndarray]:
    """The id map of column ``name`` and each row's code; a missing id is an error."""
    ids, codes = id_codes(_SOURCE, name, _column(data, name))
    missing = codes < 0
    if missing.any():
        raise empty_id(_SOURCE, name, int(np.flatnonzero(missing)[0]))
    return ids, codes


def interactions_from_table(
    table: object,
    columns: Columns = Columns(),
    *,
    time_format: str | None = None,
    time_unit: str | None = None,
) -> Interactions:
    """The interaction matrix of a pandas/polars/pyarrow table (see ``events_from_table``).

    Repeated (user, item) rows are summed; with a time column each pair keeps its latest time.
    """
    events = events_from_table(table, columns, time_format=time_format, time_unit=time_unit)
    return interactions_from_events(events)
