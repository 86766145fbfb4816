"""Shared fixtures: a small synthetic shop, and the real datasets when ../shared/data exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from growthrec.core.interactions import Interactions, build_interactions
from growthrec.synthetic import generate_shop

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's real datasets; tests using them skip where the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available ({SHARED_DATA} is absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_shop() -> Interactions:
    """A small synthetic shop (200 customers x 40 products) with timestamps."""
    shop = generate_shop(200, 40, 0.1, seed=1)
    return build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
