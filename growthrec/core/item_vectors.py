"""Item vectors from purchases alone: one ruler for intra-list diversity and for re-ranking.

A truncated SVD of the binary train matrix, item side. Intra-list diversity on data without
categories is measured on these vectors, and ``--similarity purchases`` re-ranks by their
cosine, so a re-ranker can diversify by the very ruler its lists are judged with.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.core.interactions import Interactions
from growthrec.core.seeds import Seed, resolve_rng
from growthrec.errors import ParameterError

__all__ = ["PURCHASE_DIMS", "item_vectors_for_diversity", "purchase_seed"]

#: Dimensions of the purchase vectors, for the diversity metric and the re-rankers alike.
PURCHASE_DIMS = 32


def purchase_seed(model_seed: int | None) -> int:
    """The SVD seed for a model fitted with ``model_seed``: the run's seed, as evaluation uses
    for its diversity vectors (0 when the model was fitted unseeded)."""
    return 0 if model_seed is None else int(model_seed)


def item_vectors_for_diversity(
    train: Interactions, dims: int = PURCHASE_DIMS, seed: Seed = 0
) -> np.ndarray:
    """Item vectors (n_items x dims, float32) for intra-list diversity when there are no categories.

    A truncated SVD of the binary train matrix, item side: ``components_.T`` scaled by the
    singular values. They come from the data, not from the model under test, so every backend's
    lists are measured with the same ruler: a model's own factors would flatter lists that are
    spread out in its own space. ``dims`` is clamped below min(n_users, n_items).
    """
    from sklearn.decomposition import TruncatedSVD  # slow import: only when asked for

    if int(dims) != dims or dims < 1:
        raise ParameterError(f"dims={dims} must be a whole number of at least 1")
    n_users, n_items = train.matrix.shape
    largest = min(n_users, n_items) - 1
    if largest < 1:
        raise ParameterError(
            f"item vectors need at least 2 customers and 2 items; the data has {n_users} x "
            f"{n_items}"
        )
    m = train.matrix
    binary = sp.csr_matrix(((m.data != 0).astype(np.float32), m.indices, m.indptr), shape=m.shape)
    svd = TruncatedSVD(
        n_components=min(int(dims), largest),
        algorithm="randomized",
        random_state=int(resolve_rng(seed).integers(2**31 - 1)),
    )
    with threadpool_limits(1, "blas"):  # thin SVDs run faster on one BLAS thread here
        svd.fit(binary)
    vectors = svd.components_.T * svd.singular_values_[None, :]
    return np.ascontiguousarray(vectors, dtype=np.float32)
