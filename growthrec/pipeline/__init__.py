"""From data to lists: fitting a backend into a ``Model``, then ranking for customers."""

from __future__ import annotations

from growthrec.pipeline.catalog import AddedItems, add_items, added_items
from growthrec.pipeline.fitting import LARGE_WEIGHT, fit_model
from growthrec.pipeline.lists import (
    EXPORT_BATCH_USERS,
    known_items,
    popular_items,
    recommend,
    recommend_baskets,
    recommend_in_batches,
    recommend_new_customers,
    similar_items,
    user_indices,
)
from growthrec.pipeline.prepared import PreparedModel, prepare
from growthrec.pipeline.rules import Filter, ListSpec, parse_cap, parse_filter
from growthrec.pipeline.scores import basket_scores, scores

__all__ = [
    "EXPORT_BATCH_USERS",
    "LARGE_WEIGHT",
    "AddedItems",
    "Filter",
    "ListSpec",
    "PreparedModel",
    "add_items",
    "added_items",
    "basket_scores",
    "fit_model",
    "known_items",
    "parse_cap",
    "parse_filter",
    "popular_items",
    "prepare",
    "recommend",
    "recommend_baskets",
    "recommend_in_batches",
    "recommend_new_customers",
    "scores",
    "similar_items",
    "user_indices",
]
