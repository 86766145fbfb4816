"""Reading and cleaning shop data: transactions, catalogues, presets and the synthetic shop."""

from __future__ import annotations

from growthrec.data.catalog import catalog_attributes, read_catalog
from growthrec.data.cleaning import Cleaning
from growthrec.data.files import DELIMITERS, detect_delimiter, read_table, write_table
from growthrec.data.loading import (
    DEFAULT_TIME_COLUMN,
    DEFAULT_WEIGHT_COLUMN,
    Columns,
    LoadReport,
    load_events,
    read_interactions,
)
from growthrec.data.parsing import TIME_UNITS
from growthrec.data.presets import (
    PRESETS,
    Preset,
    catalog_for,
    cleaning_for,
    default_catalog_path,
    get_preset,
)
from growthrec.data.synthetic import CATEGORIES, SyntheticShop, generate_shop

__all__ = [
    "CATEGORIES",
    "DEFAULT_TIME_COLUMN",
    "DEFAULT_WEIGHT_COLUMN",
    "DELIMITERS",
    "PRESETS",
    "TIME_UNITS",
    "Cleaning",
    "Columns",
    "LoadReport",
    "Preset",
    "SyntheticShop",
    "catalog_attributes",
    "catalog_for",
    "cleaning_for",
    "default_catalog_path",
    "detect_delimiter",
    "generate_shop",
    "get_preset",
    "load_events",
    "read_catalog",
    "read_interactions",
    "read_table",
    "write_table",
]
