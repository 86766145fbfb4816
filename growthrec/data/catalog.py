"""Item catalogues: a table of attributes per product, aligned with a model's items."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from growthrec.core.interactions import (
    IdMap,
)
from growthrec.data.files import check_delimiter, file_schema, is_text, read_table
from growthrec.data.parsing import canonical_ints

__all__ = ["catalog_attributes", "read_catalog"]


def read_catalog(
    path: str | os.PathLike[str], item_column: str = "item_id", *, delimiter: str | None = None
) -> pa.Table:
    """An item catalogue: one row per item id, any other columns (category, price, ...).

    From a CSV the item ids are text exactly as written (``catalog_attributes`` matches them).
    """
    source = Path(path)
    delimiter = check_delimiter(delimiter)
    names = file_schema(source, delimiter).names
    return read_table(
        source,
        [item_column, *(n for n in names if n != item_column)],
        text=[item_column],
        delimiter=delimiter,
    )


def _catalog_positions(values: pa.ChunkedArray, items: IdMap) -> np.ndarray:
    """Each catalogue row's index in ``items``; -1 where the id is missing or not an item."""
    if is_text(values.type):
        encoded = pc.dictionary_encode(values).unify_dictionaries()
        if encoded.num_chunks == 0:
            return np.empty(0, dtype=np.int64)
        texts = encoded.chunk(0).dictionary.fill_null("")
        if items.kind == "str":
            found = items.index(np.asarray(texts.to_pylist(), dtype=str))
        else:  # only an id's canonical text names it: "007" is not item 7
            ok, numbers = canonical_ints(texts)
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
