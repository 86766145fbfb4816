"""The synthetic shop: valid, seeded, shaped like real purchase data, and calibrated."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core import build_interactions, ranking_metrics, split_leave_one_out
from growthrec.data.synthetic import CATEGORIES, SyntheticShop, generate_shop
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend

YEAR_START = 1_735_689_600  # 2025-01-01T00:00:00Z
YEAR_END = 1_767_225_599  # 2025-12-31T23:59:59Z


@pytest.fixture(scope="module")
def shop() -> SyntheticShop:
    return generate_shop()


def _check_valid(shop: SyntheticShop, n_users: int, n_items: int, density: float) -> None:
    n_rows = round(density * n_users * n_items)
    for column in (shop.user_id, shop.item_id, shop.quantity, shop.timestamp):
        assert column.shape == (n_rows,)
    for column in (shop.catalog_item_id, shop.catalog_category, shop.catalog_price):
        assert column.shape == (n_items,)
    assert shop.user_id.dtype == np.int64
    assert shop.item_id.dtype.kind == "U"
    assert shop.quantity.dtype == np.int32
    assert shop.timestamp.dtype == np.int64
    assert shop.catalog_price.dtype == np.float64
    np.testing.assert_array_equal(np.unique(shop.user_id), np.arange(1, n_users + 1))
    assert np.unique(shop.catalog_item_id).size == n_items
    assert np.isin(shop.item_id, shop.catalog_item_id).all()
    assert set(shop.catalog_category.tolist()) <= set(CATEGORIES)
    assert (shop.quantity >= 1).all()
    assert shop.timestamp.min() >= YEAR_START
    assert shop.timestamp.max() <= YEAR_END
    assert (np.diff(shop.timestamp) >= 0).all()  # rows come in time order
    assert (shop.catalog_price > 0).all()
    cents = shop.catalog_price * 100
    np.testing.assert_allclose(cents, np.round(cents), atol=1e-6)


def test_defaults_give_a_valid_shop(shop: SyntheticShop) -> None:
    _check_valid(shop, 1000, 100, 0.05)
    assert 42 in shop.user_id
    assert all(re.fullmatch(r"SKU\d{5}", sku) for sku in shop.catalog_item_id.tolist())
    assert set(shop.catalog_category.tolist()) == set(CATEGORIES)


@pytest.mark.parametrize(
    ("n_users", "n_items", "density"),
    [(1, 1, 1.0), (7, 3, 0.5), (300, 40, 0.1), (50, 1000, 0.0013), (25, 12, 0.3)],
)
def test_row_count_is_density_times_cells(n_users: int, n_items: int, density: float) -> None:
    shop = generate_shop(n_users, n_items, density, seed=1)
    assert shop.user_id.size == round(density * n_users * n_items)
    _check_valid(shop, n_users, n_items, density)


@st.composite
def shop_sizes(draw: st.DrawFn) -> tuple[int, int, float, int]:
    n_users = draw(st.integers(1, 60))
    n_items = draw(st.integers(1, 40))
    density = draw(st.floats(1.0 / n_items, 1.0))
    return n_users, n_items, density, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(shop_sizes())
def test_any_small_valid_request_gives_a_valid_shop(size: tuple[int, int, float, int]) -> None:
    n_users, n_items, density, seed = size
    _check_valid(generate_shop(n_users, n_items, density, seed=seed), n_users, n_items, density)


def test_same_seed_same_shop_and_other_seed_other_shop() -> None:
    first = generate_shop(200, 60, 0.1, seed=7)
    assert first == generate_shop(200, 60, 0.1, seed=7)
    assert first == generate_shop(200, 60, 0.1, seed=np.random.default_rng(7))
    other = generate_shop(200, 60, 0.1, seed=8)
    assert other != first
    assert not np.array_equal(other.item_id, first.item_id)


def test_popularity_is_long_tailed() -> None:
    shop = generate_shop(2000, 1000, 0.01, seed=0)
    counts = np.sort(np.unique(shop.item_id, return_counts=True)[1])[::-1]
    top_tenth = counts[:100].sum() / shop.item_id.size
    assert top_tenth > 0.25  # 0.10 if every item sold alike


def test_heavy_and_light_buyers(shop: SyntheticShop) -> None:
    rows = np.sort(np.bincount(shop.user_id)[1:])[::-1]
    assert rows[:100].sum() / rows.sum() > 0.25  # the top tenth of customers
    assert rows[0] >= 8 * np.median(rows)
    assert (rows == 1).sum() > 50


def test_favourites_are_bought_again(shop: SyntheticShop) -> None:
    _, per_pair = np.unique(np.char.add(shop.user_id.astype(str), shop.item_id), return_counts=True)
    assert shop.user_id.size / per_pair.size > 1.15
    assert per_pair.max() >= 3


def test_mostly_one_unit_sometimes_more(shop: SyntheticShop) -> None:
    single = np.mean(shop.quantity == 1)
    assert 0.75 < single < 0.97


def test_customers_concentrate_on_few_categories(shop: SyntheticShop) -> None:
    """Segments: a customer's top category holds far more of their purchases than chance."""
    catalogue_row = np.searchsorted(shop.catalog_item_id, shop.item_id)
    _, category = np.unique(shop.catalog_category[catalogue_row], return_inverse=True)

    def mean_top_share(category: np.ndarray) -> float:
        counts = np.zeros((shop.user_id.max() + 1, category.max() + 1))
        np.add.at(counts, (shop.user_id, category), 1)
        rows = counts.sum(axis=1)
        regular = rows >= 6
        return float(np.mean(counts[regular].max(axis=1) / rows[regular]))

    shuffled = np.random.default_rng(0).permutation(category)  # the shop's mix, no segments
    assert mean_top_share(category) > mean_top_share(shuffled) + 0.15


def test_prices_depend_on_category() -> None:
    shop = generate_shop(100, 2000, 0.01, seed=0)
    median = {
        name: np.median(shop.catalog_price[shop.catalog_category == name])
        for name in ("electronics", "grocery")
    }
    assert median["electronics"] > 4 * median["grocery"]
    assert shop.catalog_price.max() > 5 * np.median(shop.catalog_price)  # a long tail


def test_the_weeks_before_christmas_are_busiest() -> None:
    shop = generate_shop(2000, 1000, 0.01, seed=0)
    per_day = np.bincount((shop.timestamp - YEAR_START) // 86_400, minlength=365)
    assert per_day[320:355].mean() > 1.15 * per_day[31:304].mean()  # vs February-October


def _hit_at_5(shop: SyntheticShop, backend: str, params: dict[str, int]) -> float:
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    split = split_leave_one_out(data, by="latest", seed=0)
    users = np.flatnonzero(np.diff(split.test.indptr))
    model = fit_model(split.train, backend, params, weighting="binary", seed=0)
    recs, _ = recommend(model, users, 5)
    return ranking_metrics(recs, split.test[users], [5], data.n_items)[5]["hit_rate"]


def test_default_shop_is_calibrated(shop: SyntheticShop) -> None:
    """The product's promise: PureSVD reaches Hit@5 0.60-0.65 and beats the best sellers."""
    svd = _hit_at_5(shop, "svd", {"factors": 50})
    popularity = _hit_at_5(shop, "popularity", {})
    assert 0.60 <= svd <= 0.65
    assert popularity < 0.5
    assert svd - popularity > 0.3


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n_users": 0}, ["n_users=0", "at least 1"]),
        ({"n_users": 2.5}, ["n_users=2.5", "whole number"]),
        ({"n_users": True}, ["n_users=True"]),
        ({"n_items": -3}, ["n_items=-3", "at least 1"]),
        ({"n_items": "100"}, ["n_items='100'"]),
        ({"density": 0.0}, ["density=0.0", "(0, 1]"]),
        ({"density": 1.5}, ["density=1.5", "(0, 1]"]),
        ({"density": -0.1}, ["density=-0.1"]),
        ({"density": math.nan}, ["density=nan"]),
        ({"density": math.inf}, ["density=inf"]),
        ({"n_items": 10, "density": 0.05}, ["density=0.05", "every user", "1/n_items = 0.1"]),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ParameterError) as caught:
        generate_shop(**kwargs)  # type: ignore[arg-type]
    for word in words:
        assert word in str(caught.value)
