"""Every item's score for some customers: the numbers ``recommend`` ranks, as one array.

For analyses that need more than a top-k list (a score threshold, blending two models, a
calibration plot): the model's weighting is applied to each customer's purchases and the
backend's ``score`` is called batch by batch, exactly as ranking does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from growthrec.backends.registry import get_backend
from growthrec.core.interactions import rows_from_baskets
from growthrec.core.model import Model
from growthrec.core.ranking import batch_rows
from growthrec.core.weighting import apply_weighting
from growthrec.errors import ParameterError, PluginError
from growthrec.pipeline.lists import row_scores, training_rows

__all__ = ["basket_scores", "scores"]


def scores(
    model: Model, users: Sequence[int] | np.ndarray, *, exclude_seen: bool = False
) -> np.ndarray:
    """Scores of every item for training customers ``users`` (row indices, as ``recommend``).

    Returns a writable float32 array of shape ``(len(users), n_items)``, higher is better;
    column ``j`` is item ``model.train.items.ids[j]``. Get row indices from external ids with
    ``user_indices(model, ids)``. With ``exclude_seen``, what a customer bought in training
    scores ``-inf``.
    """
    index = np.asarray(users)
    n_users = model.train.n_users
    if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
        raise ParameterError(
            f"users: expected a 1-D sequence of training row indices (integers), got "
            f"shape {index.shape} of {index.dtype}; user_indices(model, ids) gives them"
        )
    index = index.astype(np.int64)
    outside = (index < 0) | (index >= n_users)
    if outside.any():
        raise ParameterError(
            f"users: row index {int(index[outside][0])} is outside 0..{n_users - 1} (the "
            "model's training customers); user_indices(model, ids) gives row indices of ids"
        )
    weighted, scoring_users = training_rows(model, index)
    return _scored(model, model.train.matrix[index], weighted, scoring_users, exclude_seen)


def basket_scores(
    model: Model, baskets: Sequence[Sequence[object]], *, exclude_seen: bool = False
) -> np.ndarray:
    """Scores of every item for customers not in training, each given as a basket of item ids.

    The backend folds each basket in (no refit), as ``recommend_baskets`` does; an item id
    not in the catalogue is an error naming it. Returns a writable float32 array of shape
    ``(len(baskets), n_items)``; with ``exclude_seen`` a basket's own items score ``-inf``.
    """
    if isinstance(baskets, (str, bytes)):
        raise ParameterError("baskets: expected a list of baskets (lists of item ids), not text")
    rows = rows_from_baskets(model.train.items, baskets)
    unknown = np.full(rows.shape[0], -1, dtype=np.int64)
    return _scored(model, rows, apply_weighting(rows, model.weighting), unknown, exclude_seen)


def _scored(
    model: Model,
    rows: sp.csr_matrix,
    weighted: sp.csr_matrix,
    users: np.ndarray,
    exclude_seen: bool,
) -> np.ndarray:
    """The backend's scores of ``weighted`` (``rows``, the raw purchases, as the backend
    scores them) into one new array; ``rows`` is what ``exclude_seen`` excludes."""
    impl = get_backend(model.backend)
    n_items = model.train.n_items
    out = np.empty((users.size, n_items), dtype=np.float32)
    step = batch_rows(n_items)
    for start in range(0, users.size, step):
        stop = min(start + step, users.size)
        batch = np.asarray(row_scores(model, impl, weighted[start:stop], users[start:stop]))
        if batch.shape != (stop - start, n_items):
            raise PluginError(
                f"backend {impl.name!r}: score returned shape {batch.shape} for "
                f"{stop - start} customer(s); expected {(stop - start, n_items)}"
            )
        out[start:stop] = batch  # a copy: the result never shares memory with the backend's
    if exclude_seen:
        bought = rows.tocsr()
        owner = np.repeat(np.arange(bought.shape[0]), np.diff(bought.indptr))
        out[owner, bought.indices] = -np.inf
    return out
