"""Benchmark data: synthetic shops at the prototype's scale and at MovieLens-1M's shape."""

from __future__ import annotations

import numpy as np
import pytest

from growthrec.core.interactions import Interactions, build_interactions
from growthrec.core.split import Split, split_leave_one_out
from growthrec.synthetic import generate_shop

#: name -> (users, items, density): the prototype's default, and MovieLens-1M's shape (1M rows).
SCALES = {
    "prototype-1k": (1_000, 100, 0.05),
    "ml1m-shape": (6_040, 3_706, 1_000_000 / (6_040 * 3_706)),
}


@pytest.fixture(scope="session", params=list(SCALES), ids=list(SCALES))
def scale(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def interactions_cache() -> dict[str, Interactions]:
    return {}


@pytest.fixture
def interactions(scale, interactions_cache) -> Interactions:
    if scale not in interactions_cache:
        shop = generate_shop(*SCALES[scale], seed=0)
        interactions_cache[scale] = build_interactions(
            shop.user_id, shop.item_id, shop.quantity, shop.timestamp
        )
    return interactions_cache[scale]


@pytest.fixture
def split(interactions) -> Split:
    return split_leave_one_out(interactions, by="latest", seed=0)


@pytest.fixture
def all_users(interactions) -> np.ndarray:
    return np.arange(interactions.n_users)
