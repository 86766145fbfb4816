"""From data to lists: fitting a backend into a ``Model``, then ranking for customers."""

from __future__ import annotations

from growthrec.pipeline.fitting import LARGE_WEIGHT, fit_model
from growthrec.pipeline.lists import (
    EXPORT_BATCH_USERS,
    known_items,
    popular_items,
    recommend,
    recommend_baskets,
    recommend_in_batches,
    similar_items,
    user_indices,
)
from growthrec.pipeline.scores import basket_scores, scores

__all__ = [
    "EXPORT_BATCH_USERS",
    "LARGE_WEIGHT",
    "basket_scores",
    "fit_model",
    "known_items",
    "popular_items",
    "recommend",
    "recommend_baskets",
    "recommend_in_batches",
    "scores",
    "similar_items",
    "user_indices",
]
