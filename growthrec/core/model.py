"""The fitted model as a value: backend name, parameters, learned arrays and the training data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.interactions import Interactions

__all__ = ["Model"]


@attrs.frozen
class Model:
    """Everything needed to recommend, and nothing that needs pickle to be saved.

    ``train`` keeps the raw (unweighted) training matrix and both id maps: the matrix excludes
    what a customer already bought and scores known customers; ``weighting`` is re-applied to
    it and to new baskets. ``item_attributes`` holds optional per-item strings (a category, say)
    aligned with the item index, for display.

    Cold start: ``item_features`` (rows aligned with the items, cold ones included) and
    ``user_features`` (rows aligned with the training customers) hold the feature columns the
    model learned from; ``coldstart`` holds what was fitted from them (see
    ``growthrec.pipeline.coldstart``): ``item_map``/``user_map`` from features to factors and
    ``item_factors``, the learned factors blended with the mapped ones.

    ``recency``: a half-life in purchase times (0: off). When ranking a training customer,
    their purchases are weighted ``0.5 ** (k / recency)``, ``k`` counting their later purchase
    times (``growthrec.core.weighting.recency_decay``), and every backend scores from those
    rows (factor models fold the customer in from them). The fit itself sees every purchase.
    """

    backend: str
    params: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray] = attrs.field(eq=False)
    train: Interactions
    weighting: str = "binary"
    seed: int | None = None
    item_attributes: Mapping[str, np.ndarray] = attrs.field(factory=dict, eq=False)
    item_features: Features | None = attrs.field(default=None, eq=False)
    user_features: Features | None = attrs.field(default=None, eq=False)
    coldstart: Mapping[str, np.ndarray] = attrs.field(factory=dict, eq=False)
    coldstart_options: ColdStart = attrs.field(factory=ColdStart)
    recency: float = 0.0
