"""Checks on the team's real datasets (skipped where ../shared/data is absent); each is short."""

from __future__ import annotations

import pytest

from growthrec.core.split import split_ratio
from growthrec.evaluation import evaluate_backend
from growthrec.tables import Columns, read_interactions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def movielens_split(shared_data):
    data = read_interactions(
        shared_data / "ml-latest-small" / "ratings.csv",
        Columns(user="userId", item="movieId", weight="rating", time="timestamp"),
    )
    assert (data.n_users, data.n_items, data.nnz) == (610, 9724, 100836)
    return split_ratio(data, seed=0)


def test_plain_svd_projection_beats_normalised_factors_on_ndcg(movielens_split) -> None:
    """Why ``normalize=False`` is the default; normalising buys catalogue coverage instead."""
    plain = evaluate_backend(movielens_split, "svd", {"factors": 50}, ks=[10]).metrics[10]
    normal = evaluate_backend(
        movielens_split, "svd", {"factors": 50, "normalize": True}, ks=[10]
    ).metrics[10]
    assert plain["ndcg"] > 1.5 * normal["ndcg"]
    assert normal["coverage"] > plain["coverage"]


def test_svd_beats_popularity(movielens_split) -> None:
    svd = evaluate_backend(movielens_split, "svd", {"factors": 50}, ks=[10]).metrics[10]
    popularity = evaluate_backend(movielens_split, "popularity", ks=[10]).metrics[10]
    assert svd["ndcg"] > 1.3 * popularity["ndcg"]
    assert svd["recall"] > popularity["recall"]
