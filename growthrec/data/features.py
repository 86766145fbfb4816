"""Item and customer features from a catalogue or customer file, aligned with a model's ids.

Products listed in the catalogue that nobody has bought yet join the model's items as "cold"
items (empty columns of the training matrix): their features alone make them recommendable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from growthrec.core.features import Features, fit_features
from growthrec.core.interactions import Events, IdMap, Interactions
from growthrec.data.catalog import catalog_attributes, read_catalog
from growthrec.data.files import is_text
from growthrec.data.parsing import canonical_ints
from growthrec.errors import DataError

__all__ = [
    "FeatureSources",
    "cold_item_ids",
    "events_with_items",
    "load_features",
    "read_customers",
    "table_features",
    "with_cold_items",
]


def read_customers(
    path: str | os.PathLike[str], user_column: str = "user_id", *, delimiter: str | None = None
) -> pa.Table:
    """A customer file: one row per customer id, any other columns (segment, country, ...)."""
    return read_catalog(path, user_column, delimiter=delimiter)


def table_features(
    table: pa.Table,
    ids: IdMap,
    id_column: str,
    kinds: Sequence[tuple[str, str]],
    *,
    where: str = "catalogue",
    required: np.ndarray | None = None,
) -> Features:
    """The columns ``kinds`` of ``table`` learned and encoded for each of ``ids``.

    ``required`` marks the rows that must have at least one feature (cold items, which have
    nothing else to be scored by): one without is an error naming it.
    """
    missing = [name for name, _ in kinds if name not in table.column_names]
    if missing:
        others = ", ".join(repr(c) for c in table.column_names if c != id_column)
        raise DataError(
            f"{where}: no column {missing[0]!r} for features; the file has {others or 'no other'}"
        )
    if id_column not in table.column_names:
        raise DataError(f"{where}: no id column {id_column!r}")
    wanted = table.select([id_column, *dict.fromkeys(name for name, _ in kinds)])
    columns = catalog_attributes(wanted, ids, id_column)
    features = fit_features(kinds, columns, len(ids))
    if required is not None:
        empty = required & (np.diff(features.matrix.indptr) == 0)
        if empty.any():
            first = ids.ids[int(np.flatnonzero(empty)[0])]
            names = ", ".join(name for name, _ in kinds)
            raise DataError(
                f"{where}: {int(empty.sum())} product(s) nobody has bought have no value in "
                f"{names} (first: {first!s}); without features they cannot be recommended: "
                "fill them in or leave them out of the file"
            )
    return features


def cold_item_ids(catalog: pa.Table, items: IdMap, item_column: str) -> np.ndarray:
    """Ids of catalogue rows that are not among ``items``, in file order, each once.

    They are typed as ``items`` are: text, or integers when the model's ids are integers (then
    a catalogue id must be an integer in canonical form, ``42`` not ``042``).
    """
    values = catalog[item_column]
    if is_text(values.type):
        texts = pc.unique(values.combine_chunks().fill_null(""))
        texts = texts.filter(pc.not_equal(texts, ""))
        if items.kind == "int":
            ok, numbers = canonical_ints(texts)
            if not ok.all():
                bad = texts[int(np.flatnonzero(~ok)[0])].as_py()
                raise DataError(
                    f"catalogue: item {bad!r} is not an integer, but the transactions' item ids "
                    "are: one id column cannot mix the two"
                )
            candidates = numbers
        else:
            candidates = np.asarray(texts.to_pylist(), dtype=str)
    else:
        raw = values.drop_null().to_numpy(zero_copy_only=False)
        if raw.dtype.kind == "f":
            raw = raw[np.isfinite(raw)]
            if np.any(raw != np.round(raw)):
                raise DataError(f"catalogue: item id {raw[raw != np.round(raw)][0]!r} is not whole")
            raw = raw.astype(np.int64)
        if items.kind == "str":
            raise DataError(
                "catalogue: its item ids are numbers, but the transactions' are text: "
                "one id column cannot mix the two"
            )
        _, first = np.unique(raw, return_index=True)
        candidates = raw[np.sort(first)]
    return candidates[items.index(candidates) < 0] if len(candidates) else candidates


def with_cold_items(data: Interactions, new_ids: np.ndarray) -> Interactions:
    """``data`` with ``new_ids`` appended to its items as empty columns (products not yet sold)."""
    if len(new_ids) == 0:
        return data
    if data.items.kind == "str":  # numpy widens the text width to the longest id
        ids = np.concatenate([data.items.ids, np.asarray(new_ids, dtype=str)])
    else:
        ids = np.concatenate([data.items.ids, np.asarray(new_ids, dtype=np.int64)])
    matrix = data.matrix.copy()
    matrix.resize((data.n_users, len(ids)))
    return Interactions(matrix, data.users, IdMap.from_ids(ids), data.timestamps)


def events_with_items(events: Events, new_ids: np.ndarray) -> Events:
    """``events`` whose item map also holds ``new_ids`` (products nobody bought), appended."""
    if len(new_ids) == 0:
        return events
    if events.items.kind == "str":
        ids = np.concatenate([events.items.ids, np.asarray(new_ids, dtype=str)])
    else:
        ids = np.concatenate([events.items.ids, np.asarray(new_ids, dtype=np.int64)])
    return attrs.evolve(events, items=IdMap.from_ids(ids))


@attrs.frozen
class FeatureSources:
    """Where features come from: the catalogue and its columns, the customer file and its.

    ``item_kinds``/``user_kinds`` are ``(column, kind)`` pairs (``parse_feature_list``).
    ``cold_items``: catalogue products nobody bought join the items (a separate catalogue
    file, not the transactions file itself, whose missing products were cleaned away).
    """

    item_kinds: tuple[tuple[str, str], ...] = ()
    catalog: Path | None = None
    catalog_column: str = "item_id"
    user_kinds: tuple[tuple[str, str], ...] = ()
    customers: Path | None = None
    customer_column: str = "user_id"
    cold_items: bool = True


def load_features(
    sources: FeatureSources, events: Events
) -> tuple[Events, Features | None, Features | None]:
    """The events (with cold catalogue items added) and their item and customer features."""
    item_features = user_features = None
    if sources.item_kinds:
        if sources.catalog is None:
            raise DataError(
                "item features need a catalogue: give --catalog FILE (or put items.csv beside "
                "the data)"
            )
        catalog = read_catalog(sources.catalog, sources.catalog_column)
        cold = np.zeros(len(events.items), dtype=bool)
        if sources.cold_items:
            new_ids = cold_item_ids(catalog, events.items, sources.catalog_column)
            events = events_with_items(events, new_ids)
            cold = np.zeros(len(events.items), dtype=bool)
            cold[len(cold) - len(new_ids) :] = True
        item_features = table_features(
            catalog,
            events.items,
            sources.catalog_column,
            sources.item_kinds,
            where=str(sources.catalog),
            required=cold,
        )
    if sources.user_kinds:
        if sources.customers is None:
            raise DataError("customer features need a customer file: give --customers FILE")
        customers = read_customers(sources.customers, sources.customer_column)
        user_features = table_features(
            customers,
            events.users,
            sources.customer_column,
            sources.user_kinds,
            where=str(sources.customers),
        )
    return events, item_features, user_features
