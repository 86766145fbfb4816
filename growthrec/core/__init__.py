"""Pure functions over numpy/scipy: interactions, weighting, splits, ranking and metrics."""

from __future__ import annotations

from growthrec.core.features import Features, FeatureSpec, fit_features, parse_feature_list
from growthrec.core.interactions import (
    Events,
    IdMap,
    Interactions,
    build_interactions,
    factorize,
    interactions_from_codes,
    interactions_from_events,
    interactions_from_matrix,
    rows_from_baskets,
)
from growthrec.core.metrics import (
    BEYOND_ACCURACY,
    METRIC_NAMES,
    catalog_coverage_at_k,
    hit_matrix,
    hit_rate_at_k,
    intra_list_diversity_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    novelty_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from growthrec.core.model import Model
from growthrec.core.ranking import top_k, top_k_batched
from growthrec.core.sampling import rank_candidates, sample_candidates
from growthrec.core.seeds import Seed, resolve_rng
from growthrec.core.split import Split, split_from_parts, split_leave_one_out, split_ratio
from growthrec.core.weighting import WEIGHTINGS, apply_weighting

__all__ = [
    "BEYOND_ACCURACY",
    "METRIC_NAMES",
    "WEIGHTINGS",
    "Events",
    "FeatureSpec",
    "Features",
    "IdMap",
    "Interactions",
    "Model",
    "Seed",
    "Split",
    "apply_weighting",
    "build_interactions",
    "catalog_coverage_at_k",
    "factorize",
    "fit_features",
    "hit_matrix",
    "hit_rate_at_k",
    "interactions_from_codes",
    "interactions_from_events",
    "interactions_from_matrix",
    "intra_list_diversity_at_k",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty_at_k",
    "parse_feature_list",
    "precision_at_k",
    "rank_candidates",
    "ranking_metrics",
    "recall_at_k",
    "resolve_rng",
    "rows_from_baskets",
    "sample_candidates",
    "split_from_parts",
    "split_leave_one_out",
    "split_ratio",
    "top_k",
    "top_k_batched",
]
