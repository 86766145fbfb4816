"""Offline evaluation: protocols (how data is held out), evaluation runs, tuning."""

from __future__ import annotations

from growthrec.evaluation.protocols import (
    COLD_PROTOCOLS,
    PROTOCOLS,
    Protocol,
    check_features,
    make_split,
    make_validation_split,
)
from growthrec.evaluation.runs import (
    Evaluation,
    ListsEvaluation,
    TaskResult,
    categories_from,
    clamp_ks,
    evaluate_backend,
    evaluate_lists,
    evaluate_model,
    evaluate_tasks,
    item_vectors_for_diversity,
    plain_ranking,
    ranking_label,
)
from growthrec.evaluation.tuning import (
    Search,
    SearchSpace,
    Trial,
    candidates,
    default_search_space,
    parse_space,
    run_trials,
)

__all__ = [
    "COLD_PROTOCOLS",
    "PROTOCOLS",
    "Evaluation",
    "ListsEvaluation",
    "Protocol",
    "Search",
    "SearchSpace",
    "TaskResult",
    "Trial",
    "candidates",
    "categories_from",
    "check_features",
    "clamp_ks",
    "default_search_space",
    "evaluate_backend",
    "evaluate_lists",
    "evaluate_model",
    "evaluate_tasks",
    "item_vectors_for_diversity",
    "make_split",
    "make_validation_split",
    "parse_space",
    "plain_ranking",
    "ranking_label",
    "run_trials",
]
