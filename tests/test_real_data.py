"""Checks on the team's real datasets (skipped where ../shared/data is absent); each is short."""

from __future__ import annotations

import pytest

from growthrec.core.interactions import interactions_from_events
from growthrec.core.split import split_ratio
from growthrec.data.cleaning import Cleaning
from growthrec.data.loading import load_events
from growthrec.data.presets import get_preset
from growthrec.evaluation.protocols import Protocol, make_split
from growthrec.evaluation.runs import evaluate_backend

pytestmark = pytest.mark.slow

DATASETS = {
    "movielens": "ml-latest-small/ratings.csv",
    "online-retail": "online-retail/online_retail.parquet",
}


@pytest.fixture(scope="module", params=list(DATASETS))
def dataset(request, shared_data):
    preset = get_preset(request.param)
    events, report = load_events(
        shared_data / DATASETS[request.param],
        preset.columns,
        Cleaning(require_positive=preset.require_positive),
    )
    return request.param, events, report


def test_documented_sizes_after_cleaning(dataset) -> None:
    name, events, report = dataset
    data = interactions_from_events(events)
    expected = {"movielens": (610, 9724, 100836), "online-retail": (4338, 3665, 266792)}
    assert (data.n_users, data.n_items, data.nnz) == expected[name]
    if name == "online-retail":
        assert report.dropped["missing user or item"] == 135080
        assert report.rows_kept == 392650


@pytest.mark.parametrize("protocol", [Protocol("leave-one-out"), Protocol("temporal")])
def test_svd_clearly_beats_popularity_on_ndcg(dataset, protocol) -> None:
    _, events, _ = dataset
    split = make_split(events, protocol, seed=0)
    svd = evaluate_backend(split, "svd", {"factors": 50}, ks=[10]).metrics[10]["ndcg"]
    popularity = evaluate_backend(split, "popularity", ks=[10]).metrics[10]["ndcg"]
    assert svd > 1.25 * popularity, (svd, popularity)


def test_plain_svd_projection_beats_normalised_factors_on_ndcg(dataset) -> None:
    """Why ``normalize=False`` is the default; normalising buys catalogue coverage instead."""
    _, events, _ = dataset
    split = split_ratio(interactions_from_events(events), seed=0)
    plain = evaluate_backend(split, "svd", {"factors": 50}, ks=[10]).metrics[10]
    normal = evaluate_backend(split, "svd", {"factors": 50, "normalize": True}, ks=[10]).metrics[10]
    assert plain["ndcg"] > 1.2 * normal["ndcg"]
    assert normal["coverage"] > plain["coverage"]
