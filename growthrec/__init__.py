"""growthrec: product recommendations for shops from purchase history alone.

The public Python API. Everything a notebook needs is importable from here; the rooms behind it
(``core``, ``backends``, ``data``, ``store``, ``pipeline``, ``evaluation``, ``spark``, ``cli``)
hold the implementation, lower rooms never importing higher ones.
"""

from __future__ import annotations

from growthrec._version import __version__
from growthrec.backends.contract import Backend, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.backends.registry import available_backends, get_backend
from growthrec.core.coldstart import ColdStart
from growthrec.core.interactions import (
    Events,
    IdMap,
    Interactions,
    build_interactions,
    interactions_from_matrix,
)
from growthrec.core.model import Model
from growthrec.core.reranking import RerankSpec
from growthrec.core.split import Split, split_from_parts, split_leave_one_out, split_ratio
from growthrec.data.cleaning import Cleaning
from growthrec.data.frames import events_from_table, interactions_from_table
from growthrec.data.loading import Columns, LoadReport, load_events, read_interactions
from growthrec.data.synthetic import generate_shop
from growthrec.errors import (
    DataError,
    GrowthrecError,
    ModelFileError,
    ParameterError,
    PluginError,
    UnknownBackendError,
    UnknownIdError,
)
from growthrec.evaluation.protocols import Protocol, make_split
from growthrec.evaluation.runs import Evaluation, evaluate_backend, evaluate_model
from growthrec.pipeline.catalog import add_items
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import (
    popular_items,
    recommend,
    recommend_baskets,
    recommend_new_customers,
    similar_items,
    user_indices,
)
from growthrec.pipeline.prepared import prepare
from growthrec.pipeline.rules import ListSpec, parse_filter
from growthrec.pipeline.scores import basket_scores, scores
from growthrec.store.modelfile import load_model, save_model

__all__ = [
    "Backend",
    "Cleaning",
    "ColdStart",
    "Columns",
    "DataError",
    "Evaluation",
    "Events",
    "GrowthrecError",
    "IdMap",
    "Interactions",
    "ListSpec",
    "LoadReport",
    "Model",
    "ModelFileError",
    "Param",
    "ParameterError",
    "PluginError",
    "Protocol",
    "RerankSpec",
    "Split",
    "UnknownBackendError",
    "UnknownIdError",
    "__version__",
    "add_items",
    "available_backends",
    "basket_scores",
    "build_interactions",
    "evaluate_backend",
    "evaluate_model",
    "events_from_table",
    "fit_model",
    "generate_shop",
    "get_backend",
    "hookimpl",
    "interactions_from_matrix",
    "interactions_from_table",
    "load_events",
    "load_model",
    "make_split",
    "parse_filter",
    "popular_items",
    "prepare",
    "read_interactions",
    "recommend",
    "recommend_baskets",
    "recommend_new_customers",
    "save_model",
    "scores",
    "similar_items",
    "split_from_parts",
    "split_leave_one_out",
    "split_ratio",
    "user_indices",
]
