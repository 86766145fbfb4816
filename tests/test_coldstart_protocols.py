"""Cold-start protocols: which items and customers are held out, the tasks' relevant sets, the
validation split drawn like the test one, and the CLI's evaluate/compare/tune on them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, run_json
from hypothesis import given, settings
from hypothesis import strategies as st
from test_json_contract import check

from growthrec.core.features import fit_features
from growthrec.core.interactions import Events, IdMap, interactions_from_events
from growthrec.core.split import split_cold_items, split_cold_users
from growthrec.errors import DataError, ParameterError
from growthrec.evaluation.protocols import Protocol, make_split, make_validation_split
from growthrec.evaluation.runs import evaluate_backend

pytestmark = pytest.mark.usefixtures("plain_console")


def events_of(rows: list[tuple[int, str, float]], *, times: bool = True) -> Events:
    """Events from (customer, item, time) rows; ids in first-seen order."""
    users = IdMap.from_ids(np.array(list(dict.fromkeys(r[0] for r in rows)), dtype=np.int64))
    items = IdMap.from_ids(np.array(list(dict.fromkeys(r[1] for r in rows))))
    return Events(
        users.index([r[0] for r in rows]),
        items.index([r[1] for r in rows]),
        users,
        items,
        None,
        np.array([r[2] for r in rows], dtype=np.float64) if times else None,
    )


def pairs(matrix, events: Events) -> set[tuple[int, str]]:
    """The stored (customer id, item id) pairs of a customers x items matrix."""
    m = matrix.tocoo()
    return {
        (int(events.users.ids[u]), str(events.items.ids[i]))
        for u, i in zip(m.row, m.col, strict=True)
    }


# Items by first purchase: a@1, b@2, c@3, d@10, e@21: the 2 newest of 5 are d and e.
# Customer 4 bought only d: nothing left in train, so left out. Customer 2 bought no cold item.
SHOP = [
    (1, "a", 1),
    (1, "b", 2),
    (1, "c", 6),
    (1, "d", 10),
    (2, "a", 1),
    (2, "b", 4),
    (3, "c", 3),
    (3, "a", 5),
    (3, "d", 11),
    (3, "e", 21),
    (4, "d", 12),
]


def test_cold_items_are_the_newest_by_first_purchase():
    events = events_of(SHOP)
    split = split_cold_items(events, fraction=0.4, seed=0)
    assert events.items.ids[split.cold_items].tolist() == ["d", "e"]
    assert split.train.matrix[:, split.cold_items].nnz == 0
    # every purchase of a cold item by a customer with something left in train is a test pair
    cold_test = {p for p in pairs(split.test, events) if p[1] in "de"}
    assert cold_test == {(1, "d"), (3, "d"), (3, "e")}
    # the warm holdout: one of each customer's warm items (ratio 0.2 of 2-3 items rounds to 1)
    warm_test = pairs(split.test, events) - cold_test
    assert sorted(u for u, _ in warm_test) == [1, 2, 3]
    assert not warm_test & pairs(split.train.matrix, events)
    assert split.counts == {
        "cold_items": 2,
        "cold_item_pairs": 3,
        "warm_item_pairs": 3,
        "customers_only_cold_items": 1,
    }
    assert split.protocol == "cold items (2 newest by first purchase; warm: ratio holdout 0.2)"


def test_cold_items_without_times_are_a_seeded_draw():
    rows = [(u, f"i{i}", 0.0) for u in range(1, 7) for i in range(10) if (u + i) % 3]
    events = events_of(rows, times=False)
    draws = [
        tuple(np.flatnonzero(split_cold_items(events, fraction=0.3, seed=s).cold_items))
        for s in range(8)
    ]
    assert all(len(d) == 3 for d in draws)  # 30% of 10 items
    assert draws[0] == tuple(
        np.flatnonzero(split_cold_items(events, fraction=0.3, seed=0).cold_items)
    )
    assert len(set(draws)) > 1
    assert split_cold_items(events, fraction=0.3, seed=0).protocol.startswith(
        "cold items (3 random"
    )


def test_only_items_with_features_are_held_out():
    events = events_of(SHOP)
    eligible = np.array([True, True, True, True, False])  # e has no features
    split = split_cold_items(events, fraction=0.4, seed=0, eligible=eligible)
    assert events.items.ids[split.cold_items].tolist() == ["c", "d"]


def test_cold_customers_are_the_newest_and_their_first_basket_is_kept_apart():
    rows = [
        (1, "a", 1),
        (1, "b", 3),
        (2, "b", 2),
        (2, "c", 4),
        (3, "c", 3),
        (3, "d", 5),
        (4, "a", 10),
        (4, "b", 10),
        (4, "c", 15),
        (5, "d", 20),
        (5, "d", 25),  # a repeat of the first purchase: nothing new after it
    ]
    events = events_of(rows)
    plain = split_cold_users(events, fraction=0.4, seed=0)
    assert events.users.ids[plain.cold_users].tolist() == [4, 5]
    assert plain.train.matrix[plain.cold_users].nnz == 0
    assert pairs(plain.test, events) == {(4, "a"), (4, "b"), (4, "c"), (5, "d")}
    assert plain.first_purchases is None
    first = split_cold_users(events, fraction=0.4, seed=0, first_purchase=True)
    assert pairs(first.first_purchases, events) == {(4, "a"), (4, "b"), (5, "d")}
    assert pairs(first.test, events) == {(4, "c")}
    assert first.counts == {
        "cold_customers": 2,
        "cold_customers_with_one_purchase": 1,
        "test_pairs_with_items_not_in_train": 0,
    }


def test_first_purchase_without_times_is_one_random_item():
    rows = [(u, f"i{i}", 0.0) for u in range(1, 11) for i in range(6) if (u * i) % 4 != 1]
    events = events_of(rows, times=False)
    split = split_cold_users(events, fraction=0.5, seed=3, first_purchase=True)
    cold = np.flatnonzero(split.cold_users)
    assert cold.size == 5
    assert np.diff(split.first_purchases.indptr)[cold].tolist() == [1] * 5
    whole = interactions_from_events(events).matrix
    assert split.test.nnz + split.first_purchases.nnz == whole[cold].nnz


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_a_fraction_outside_zero_one_is_refused(fraction):
    events = events_of(SHOP)
    with pytest.raises(ParameterError, match="between 0 and 1"):
        split_cold_items(events, fraction=fraction)
    with pytest.raises(ParameterError, match="between 0 and 1"):
        split_cold_users(events, fraction=fraction)
    with pytest.raises(ParameterError, match=r"--test-fraction .*share of items"):
        Protocol("cold-items", test_fraction=fraction)


def test_one_item_cannot_be_split():
    events = events_of([(1, "a", 1), (2, "a", 2)])
    with pytest.raises(DataError, match=r"cold items: 1 items with purchases; .* at least 2"):
        split_cold_items(events)


# properties


@st.composite
def random_events(draw):
    n_users = draw(st.integers(2, 8))
    n_items = draw(st.integers(2, 8))
    cells = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1), st.integers(0, 5)),
            min_size=2,
            max_size=40,
        )
    )
    times = draw(st.booleans())
    return events_of([(u + 1, f"i{i}", float(t)) for u, i, t in cells], times=times)


@settings(max_examples=60, deadline=None)
@given(random_events(), st.floats(0.05, 0.95), st.integers(0, 3))
def test_no_cold_item_or_customer_is_in_train(events, fraction, seed):
    whole = pairs(interactions_from_events(events).matrix, events)
    try:
        split = split_cold_items(events, fraction=fraction, seed=seed)
    except DataError:
        pass  # too little data to hold anything out: one line, checked above
    else:
        cold = set(events.items.ids[split.cold_items].tolist())
        train, test = pairs(split.train.matrix, events), pairs(split.test, events)
        assert not {i for _, i in train} & cold
        assert not train & test
        assert train | test <= whole
        trained = {u for u, _ in train}
        # every pair is in train or test, but for customers left with nothing in train
        assert {p for p in whole if p[0] in trained} == train | test
    try:
        split = split_cold_users(events, fraction=fraction, seed=seed)
    except DataError:
        return
    cold_users = set(events.users.ids[split.cold_users].tolist())
    train, test = pairs(split.train.matrix, events), pairs(split.test, events)
    assert not {u for u, _ in train} & cold_users
    assert test == {p for p in whole if p[0] in cold_users}
    assert train | test == whole


# tasks and the validation split


def item_features(events: Events, category: dict[str, str]):
    values = np.array([category[i] for i in events.items.ids.tolist()], dtype=object)
    return fit_features([("category", "category")], {"category": values}, len(events.items))


def test_the_three_tasks_and_their_relevant_customers():
    events = events_of(SHOP)
    features = item_features(events, dict(zip("abcde", "XXYXY", strict=True)))
    split = make_split(
        events, Protocol("cold-items", test_fraction=0.4), seed=0, item_features=features
    )
    result = evaluate_backend(split, "popularity", ks=(2,), item_features=features)
    tasks = result.tasks
    assert list(tasks) == ["cold", "overall", "warm"]
    assert {name: t.n_users for name, t in tasks.items()} == {"cold": 2, "overall": 3, "warm": 3}
    assert tasks["cold"].ranked_among == "the 2 held-out items"
    assert tasks["overall"].ranked_among == "all 5 items"
    # popularity scores every cold item 0: only ranking among the cold items finds them all
    assert tasks["cold"].metrics[2]["recall"] == 1.0
    assert result.metrics == tasks["cold"].metrics
    assert result.n_users == 2
    assert result.as_dict()["tasks"]["warm"]["n_users"] == 3


def test_validation_cold_items_are_the_newest_of_train():
    rows = [(u, f"i{i:02d}", float(10 * i + u)) for u in range(1, 9) for i in range(20)]
    events = events_of(rows)
    features = item_features(events, {f"i{i:02d}": "XY"[i % 2] for i in range(20)})
    protocol = Protocol("cold-items", test_fraction=0.2)
    test = make_split(events, protocol, seed=1, item_features=features)
    validation = make_validation_split(events, protocol, seed=1, item_features=features)
    ids = events.items.ids
    assert ids[test.cold_items].tolist() == ["i16", "i17", "i18", "i19"]
    assert ids[validation.cold_items].tolist() == ["i12", "i13", "i14", "i15"]
    assert validation.train.matrix[:, test.cold_items].nnz == 0
    assert validation.test[:, test.cold_items].nnz == 0


def test_validation_cold_customers_are_the_newest_of_train():
    rows = [(u, f"i{i}", float(100 * u + i)) for u in range(1, 11) for i in range(4)]
    events = events_of(rows)
    segments = np.array(["s"] * 10, dtype=object)
    users = fit_features([("segment", "category")], {"segment": segments}, 10)
    protocol = Protocol("cold-users", test_fraction=0.2)
    test = make_split(events, protocol, seed=0, user_features=users)
    validation = make_validation_split(events, protocol, seed=0, user_features=users)
    assert events.users.ids[test.cold_users].tolist() == [9, 10]
    assert events.users.ids[validation.cold_users].tolist() == [7, 8]


def test_cold_users_tasks_rank_from_features_and_first_purchase():
    rows = [(u, f"i{(u + j) % 6}", float(10 * u + j)) for u in range(1, 13) for j in range(3)]
    events = events_of(rows)
    segment = np.array(["even" if u % 2 == 0 else "odd" for u in events.users.ids], dtype=object)
    users = fit_features([("segment", "category")], {"segment": segment}, len(events.users))
    protocol = Protocol("cold-users", test_fraction=0.25, first_purchase=True)
    split = make_split(events, protocol, seed=0, user_features=users)
    result = evaluate_backend(split, "popularity", ks=(3,), user_features=users)
    assert list(result.tasks) == ["both", "features", "first-purchase"]
    # 3 cold customers, one item each time: two items left after the first purchase
    assert {t.n_users for t in result.tasks.values()} == {3}
    assert split.test.nnz == 6


def test_cold_protocols_need_features():
    events = events_of(SHOP)
    with pytest.raises(ParameterError, match="cold-items needs item features"):
        make_split(events, Protocol("cold-items"))
    with pytest.raises(ParameterError, match="cold-users needs customer features"):
        make_split(events, Protocol("cold-users"))


# the command line, on a generated shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """transactions.csv (120 customers x 30 products, with times), items.csv, customers.csv."""
    from growthrec.cli.main import main

    path = tmp_path_factory.mktemp("coldshop") / "transactions.csv"
    argv = ["generate", "--users", "120", "--items", "30", "--density", "0.15", "--seed", "4"]
    assert main([*argv, "--output", str(path)]) == 0
    return path


ITEM_FEATURES = "category,brand,line,price:numeric"


def test_generated_shop_has_the_feature_columns(shop):
    with (shop.parent / "items.csv").open(newline="") as handle:
        assert next(csv.reader(handle)) == ["item_id", "category", "price", "brand", "line"]
    with (shop.parent / "customers.csv").open(newline="") as handle:
        assert next(csv.reader(handle)) == ["user_id", "segment", "region"]


def test_cli_cold_items(shop, capsys):
    payload = run_json(
        capsys,
        "evaluate",
        "--data",
        shop,
        "--factors",
        4,
        "--k",
        5,
        10,
        "--protocol",
        "cold-items",
        "--item-features",
        ITEM_FEATURES,
    )
    check("evaluate", payload)
    split = payload["split"]
    assert set(split["counts"]) == {
        "cold_items",
        "cold_item_pairs",
        "warm_item_pairs",
        "customers_only_cold_items",
    }
    assert split["counts"]["cold_items"] == 6  # 20% of 30 products
    assert split["protocol"] == "cold items (6 newest by first purchase; warm: ratio holdout 0.2)"
    assert [r["backend"] for r in payload["results"]] == ["svd", "popularity"]
    for result in payload["results"]:
        tasks = result["tasks"]
        assert list(tasks) == ["cold", "overall", "warm"]
        assert tasks["cold"]["ranked_among"] == "the 6 held-out items"
        assert tasks["overall"]["ranked_among"] == "all 30 items"
        assert tasks["warm"]["ranked_among"] == "the 24 items bought in train"
        assert result["metrics"] == tasks["cold"]["metrics"]
        assert result["n_users"] == tasks["cold"]["n_users"]
        assert all(set(t["metrics"]) == {"5", "10"} for t in tasks.values())
        assert tasks["overall"]["n_users"] == split["n_test_users"]
        # the cold task ranks 6 items: a list of 10 holds them all
        assert tasks["cold"]["metrics"]["10"]["recall"] == 1.0


def test_cli_cold_users_with_first_purchase(shop, capsys):
    payload = run_json(
        capsys,
        "compare",
        "--data",
        shop,
        "--models",
        "itemknn,popularity",
        "--k",
        10,
        "--protocol",
        "cold-users",
        "--first-purchase",
        "--test-fraction",
        "0.25",
        "--user-features",
        "segment,region",
    )
    check("compare", payload)
    counts = payload["split"]["counts"]
    assert counts["cold_customers"] == 30  # 25% of 120
    assert set(counts) == {
        "cold_customers",
        "cold_customers_with_one_purchase",
        "test_pairs_with_items_not_in_train",
    }
    assert payload["split"]["n_test_users"] == 30 - counts["cold_customers_with_one_purchase"]
    for result in payload["results"]:
        assert list(result["tasks"]) == ["both", "features", "first-purchase"]
        assert {t["n_users"] for t in result["tasks"].values()} == {
            payload["split"]["n_test_users"]
        }
    popularity = payload["results"][1]["tasks"]
    # popularity ignores features: with or without them, the best sellers not in the basket
    assert popularity["both"]["metrics"] == popularity["first-purchase"]["metrics"]
    assert popularity["features"]["metrics"] != popularity["both"]["metrics"]


def test_cli_tune_validates_on_cold_items_drawn_like_the_test_ones(shop, tmp_path, capsys):
    payload = run_json(
        capsys,
        "tune",
        "--data",
        shop,
        "--grid",
        "factors=2,4",
        "--protocol",
        "cold-items",
        "--item-features",
        ITEM_FEATURES,
        "--output",
        tmp_path,
    )
    check("tune", payload)
    assert payload["split"]["counts"]["cold_items"] == 6  # as many as the test part holds
    assert payload["split"]["protocol"].startswith("validation of cold items (6 newest")
    assert all(list(t["tasks"]) == ["cold", "overall", "warm"] for t in payload["trials"])
    assert (
        payload["best"]["value"] == payload["trials"][0]["tasks"]["cold"]["metrics"]["10"]["ndcg"]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--protocol", "cold-items"],
            "--protocol cold-items needs item features: add --item-features",
        ),
        (
            ["--protocol", "cold-users"],
            "--protocol cold-users needs customer features: add --user-features",
        ),
        (
            ["--protocol", "cold-items", "--item-features", "brand", "--test-fraction", "1.5"],
            "--test-fraction 1.5: the share of items held out must be between 0 and 1",
        ),
        (
            ["--protocol", "cold-users", "--user-features", "segment", "--test-fraction", "0"],
            "--test-fraction 0: the share of customers held out must be between 0 and 1",
        ),
        (["--first-purchase"], "--first-purchase goes with --protocol cold-users"),
        (
            ["--protocol", "cold-items", "--item-features", "brand", "--sampled", "20"],
            "sampled ranking is for leave-one-out, ratio and temporal splits",
        ),
    ],
)
def test_cli_bad_inputs_are_one_line(shop, capsys, extra, message):
    err = assert_error(capsys, 2, "evaluate", "--data", shop, *extra)
    assert message in err
