"""Reading and cleaning shop data: transactions, catalogues, presets and the synthetic shop."""

from __future__ import annotations

from growthrec.data.catalog import catalog_attributes, read_catalog
from growthrec.data.cleaning import Cleaning
from growthrec.data.features import cold_item_ids, read_customers, table_features, with_cold_items
from growthrec.data.files import DELIMITERS, detect_delimiter, read_table, write_table
from growthrec.data.frames import arrow_table, events_from_table, interactions_from_table
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
    "arrow_table",
    "catalog_attributes",
    "catalog_for",
    "cleaning_for",
    "cold_item_ids",
    "default_catalog_path",
    "detect_delimiter",
    "events_from_table",
    "generate_shop",
    "get_preset",
    "interactions_from_table",
    "load_events",
    "read_catalog",
    "read_customers",
    "read_interactions",
    "read_table",
    "table_features",
    "with_cold_items",
    "write_table",
]
