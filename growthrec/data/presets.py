"""Named column options for well-known datasets, and reading their item catalogues.

A preset is only a set of column options (and where the catalogue is): the data still goes
through ``growthrec.data.loading.load_events`` and its cleaning rules.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import numpy as np

from growthrec.core.interactions import IdMap
from growthrec.data.catalog import catalog_attributes, read_catalog
from growthrec.data.cleaning import Cleaning
from growthrec.data.files import read_table
from growthrec.data.loading import Columns
from growthrec.errors import ParameterError

__all__ = [
    "PRESETS",
    "Preset",
    "catalog_for",
    "cleaning_for",
    "default_catalog_path",
    "get_preset",
    "preset_file",
]


@attrs.frozen
class Preset:
    """Column options for a known dataset, and where its item catalogue is."""

    name: str
    description: str
    columns: Columns
    #: Numeric columns whose rows must be > 0 (merged into ``Cleaning.require_positive``).
    require_positive: tuple[str, ...] = ()
    #: Catalogue file relative to the data file's folder; None = no catalogue; "" or the data
    #: file's own name = the data file itself.
    catalog_file: str | None = None
    catalog_item_column: str = "item_id"
    #: Which catalogue columns to keep (None = all but the item column).
    catalog_columns: tuple[str, ...] | None = None
    #: New names of catalogue columns, e.g. ``{"genres": "category"}`` for display.
    catalog_renames: dict[str, str] = attrs.field(factory=dict, hash=False)
    #: Item features for cold start (``--item-features``), from the catalogue's own columns.
    item_features: str | None = None
    #: Customer features (``--user-features``) and the file holding them ("" = the data file).
    user_features: str | None = None
    customer_file: str | None = None
    customer_column: str = "user_id"


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="movielens",
            description="MovieLens ratings.csv (userId, movieId, rating as weight, Unix-second "
            "timestamp); titles and genres (as category) from movies.csv beside it. Add a "
            "minimum weight of 4 to read only ratings of 4 and 5 stars as positives. Features: "
            "genres and title words.",
            columns=Columns(user="userId", item="movieId", weight="rating", time="timestamp"),
            catalog_file="movies.csv",
            catalog_item_column="movieId",
            catalog_columns=("title", "genres"),
            catalog_renames={"genres": "category"},
            item_features="genres:multi,title:text",
        ),
        Preset(
            name="online-retail",
            description="UCI Online Retail invoice lines (CustomerID, StockCode, Quantity as "
            "weight, InvoiceDate); rows with a non-positive UnitPrice are dropped; the item "
            "text is each StockCode's first Description in the same file; features: the "
            "Description (text) and UnitPrice of items, the Country of customers.",
            columns=Columns(
                user="CustomerID", item="StockCode", weight="Quantity", time="InvoiceDate"
            ),
            require_positive=("UnitPrice",),
            catalog_file="",
            catalog_item_column="StockCode",
            catalog_columns=("Description",),
            item_features="Description:text,UnitPrice:numeric",
            user_features="Country",
            customer_file="",
            customer_column="CustomerID",
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is a ``ParameterError`` listing them all."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ParameterError(
            f"unknown preset {name!r}; the presets are: {', '.join(sorted(PRESETS))}"
        ) from None


def cleaning_for(preset: Preset | None, cleaning: Cleaning | None = None) -> Cleaning:
    """``cleaning`` (default: ``Cleaning()``) with the preset's ``require_positive`` columns."""
    cleaning = Cleaning() if cleaning is None else cleaning
    if preset is None or not preset.require_positive:
        return cleaning
    merged = tuple(dict.fromkeys((*cleaning.require_positive, *preset.require_positive)))
    return attrs.evolve(cleaning, require_positive=merged)


def preset_file(preset: Preset, data_path: str | os.PathLike[str], name: str | None) -> Path | None:
    """A file a preset names beside the data (``""``: the data file itself), if it exists."""
    if name is None:
        return None
    data = Path(data_path)
    path = data if name in ("", data.name) else data.parent / name
    return path if path.is_file() else None


def default_catalog_path(data_path: str | os.PathLike[str]) -> Path:
    """Where a transactions file's catalogue is by default: ``items.<csv|parquet>`` beside it."""
    data = Path(data_path)
    suffix = ".parquet" if data.suffix.lower() in (".parquet", ".pq") else ".csv"
    return data.with_name("items" + suffix)


def catalog_for(
    preset: Preset | None,
    data_path: str | os.PathLike[str],
    items: IdMap,
    catalog_path: str | os.PathLike[str] | None = None,
    item_column: str | None = None,
) -> tuple[dict[str, np.ndarray], Path | None]:
    """Catalogue columns as strings aligned with ``items``, and the catalogue file read.

    Which file: an explicit ``catalog_path`` (a missing file is a ``DataError``); else the
    preset's catalogue; else, with no preset, ``default_catalog_path(data_path)``. A preset or
    default catalogue that does not exist gives ``({}, None)``, as does a preset without one.
    ``item_column`` defaults to the preset's catalogue item column, else ``item_id``. A preset's
    own catalogue keeps only its ``catalog_columns``; other files keep every column; the
    preset's renames apply to both. An item listed several times takes its first non-empty
    value in each column.
    """
    column = item_column or (preset.catalog_item_column if preset else "item_id")
    renames = preset.catalog_renames if preset else {}
    if catalog_path is not None or preset is None:
        path = default_catalog_path(data_path) if catalog_path is None else Path(catalog_path)
        if catalog_path is None and not path.is_file():
            return {}, None
        attributes = catalog_attributes(read_catalog(path, column), items, column)
        return {renames.get(name, name): v for name, v in attributes.items()}, path
    if preset.catalog_file is None:
        return {}, None
    data = Path(data_path)
    same_file = preset.catalog_file in ("", data.name)
    path = data if same_file else data.parent / preset.catalog_file
    if not path.is_file():
        return {}, None
    if preset.catalog_columns is None:
        table = read_catalog(path, column)
    else:
        table = read_table(path, [column, *(c for c in preset.catalog_columns if c != column)])
    attributes = catalog_attributes(table, items, column)
    return {renames.get(name, name): v for name, v in attributes.items()}, path
