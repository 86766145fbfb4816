"""Offline evaluation: protocols (how data is held out), evaluation runs, tuning."""

from __future__ import annotations

from growthrec.evaluation.protocols import PROTOCOLS, Protocol, make_split, make_validation_split
from growthrec.evaluation.runs import (
    Evaluation,
    categories_from,
    clamp_ks,
    evaluate_backend,
    evaluate_model,
    item_vectors_for_diversity,
    ranking_label,
)
from growthrec.evaluation.tuning import SearchSpace, Trial, candidates, parse_space, run_trials

__all__ = [
    "PROTOCOLS",
    "Evaluation",
    "Protocol",
    "SearchSpace",
    "Trial",
    "candidates",
    "categories_from",
    "clamp_ks",
    "evaluate_backend",
    "evaluate_model",
    "item_vectors_for_diversity",
    "make_split",
    "make_validation_split",
    "parse_space",
    "ranking_label",
    "run_trials",
]
