"""Protocols (with their validation split) and parameter search."""

from __future__ import annotations

import numpy as np
import pytest

from growthrec.backends.registry import get_backend
from growthrec.core.interactions import Events, IdMap
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ParameterError
from growthrec.evaluation.protocols import Protocol, make_split, make_validation_split
from growthrec.evaluation.tuning import SearchSpace, candidates, parse_space, run_trials


@pytest.fixture(scope="module")
def events() -> Events:
    shop = generate_shop(300, 40, 0.1, seed=2)
    users = np.unique(shop.user_id)
    items = np.unique(shop.item_id)
    return Events(
        np.searchsorted(users, shop.user_id),
        np.searchsorted(items, shop.item_id),
        IdMap(users, np.arange(users.size)),
        IdMap(items, np.arange(items.size)),
        shop.quantity.astype(np.float32),
        shop.timestamp.astype(np.float64),
    )


@pytest.mark.parametrize(
    "protocol",
    [Protocol(), Protocol("leave-one-out", by="random"), Protocol("ratio"), Protocol("temporal")],
)
def test_validation_split_never_sees_the_test_part(events, protocol) -> None:
    outer = make_split(events, protocol, seed=0)
    inner = make_validation_split(events, protocol, seed=0)
    # Everything the validation split uses (its train and its held-out part) lies in outer train.
    used = (inner.train.matrix + inner.test) > 0
    assert used.multiply(outer.test).nnz == 0
    assert inner.test.nnz > 0
    assert inner.train.matrix.multiply(inner.test).nnz == 0
    if protocol.name != "temporal":
        # validation train + validation test = outer train
        assert (used != (outer.train.matrix > 0)).nnz == 0


def test_temporal_validation_cutoff_is_before_the_test_cutoff(events) -> None:
    outer = make_split(events, Protocol("temporal"), seed=0)
    inner = make_validation_split(events, Protocol("temporal"), seed=0)
    assert inner.counts["cutoff"] < outer.counts["cutoff"]


def test_unknown_protocol_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match="unknown protocol 'kfold'"):
        Protocol("kfold")


def test_parse_space_checks_names_and_types() -> None:
    svd = get_backend("svd")
    space = parse_space(["factors=8,16,8", "normalize=false,true", "n_iter=2..6"], svd)
    assert space.choices == {"factors": (8, 16), "normalize": (False, True)}
    assert space.ranges == {"n_iter": (2, 6)}
    with pytest.raises(ParameterError, match="unknown parameter 'rank'"):
        parse_space(["rank=3"], svd)
    with pytest.raises(ParameterError, match="not a valid int"):
        parse_space(["factors=eight"], svd)
    with pytest.raises(ParameterError, match="LOW < HIGH"):
        parse_space(["factors=9..3"], svd)
    with pytest.raises(ParameterError, match="NAME=V1,V2"):
        parse_space(["factors"], svd)


def test_grid_and_random_candidates() -> None:
    svd = get_backend("svd")
    space = SearchSpace({"factors": (4, 8, 16), "normalize": (False, True)})
    grid = candidates(space, svd)
    assert len(grid) == 6
    assert grid[0] == {"factors": 4, "normalize": False, "n_iter": 5}
    picked = candidates(space, svd, trials=4, seed=1)
    assert len(picked) == 4
    assert len({tuple(sorted(p.items())) for p in picked}) == 4  # without replacement
    assert all(p in grid for p in picked)
    assert picked == candidates(space, svd, trials=4, seed=1)
    ranged = candidates(SearchSpace({}, {"factors": (2, 30)}), svd, trials=20, seed=0)
    assert all(2 <= p["factors"] <= 30 for p in ranged)
    assert len({p["factors"] for p in ranged}) > 5
    with pytest.raises(ParameterError, match="needs random search"):
        candidates(SearchSpace({}, {"factors": (2, 30)}), svd)


def test_trials_are_ranked_by_the_chosen_metric(events) -> None:
    split = make_validation_split(events, Protocol(), seed=0)
    settings = candidates(SearchSpace({"factors": (2, 8, 20)}), get_backend("svd"))
    seen = []
    trials = run_trials(
        split, "svd", settings, metric="ndcg", k=10, on_trial=lambda n, p: seen.append(n)
    )
    assert seen == [0, 1, 2]
    scores = [t.score("ndcg", 10) for t in trials]
    assert scores == sorted(scores, reverse=True)
    assert {t.params["factors"] for t in trials} == {2, 8, 20}
    with pytest.raises(ParameterError, match="unknown metric 'auc'"):
        run_trials(split, "svd", settings[:1], metric="auc")
