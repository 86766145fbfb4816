"""Re-ranking a user's candidates: diversity (MMR, DPP), calibration, novelty, coverage, rules."""

from __future__ import annotations

from growthrec.core.reranking.calibration import (
    CALIBRATION_ALPHA,
    kl_smoothed,
    user_category_distribution,
    user_category_shares,
)
from growthrec.core.reranking.coverage import COVERAGE_STEP, coverage_boosts
from growthrec.core.reranking.rerank import Reranked, rerank
from growthrec.core.reranking.rules import Cap, mask_candidates
from growthrec.core.reranking.similarity import (
    CategoryTable,
    SimilarityTable,
    category_table,
    similarity_block,
    similarity_from_categories,
    similarity_from_vectors,
)
from growthrec.core.reranking.spec import MMR_AGGREGATES, RERANKERS, SIMILARITIES, RerankSpec

__all__ = [
    "CALIBRATION_ALPHA",
    "COVERAGE_STEP",
    "MMR_AGGREGATES",
    "RERANKERS",
    "SIMILARITIES",
    "Cap",
    "CategoryTable",
    "RerankSpec",
    "Reranked",
    "SimilarityTable",
    "category_table",
    "coverage_boosts",
    "kl_smoothed",
    "mask_candidates",
    "rerank",
    "similarity_block",
    "similarity_from_categories",
    "similarity_from_vectors",
    "user_category_distribution",
    "user_category_shares",
]
