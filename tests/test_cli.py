"""The ``growthrec`` command run in-process: content, ``--json`` values, errors, no leftovers."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, run, run_json

import growthrec.cli.output
from growthrec.cli.main import main
from growthrec.cli.output import human_bytes
from growthrec.core.metrics import METRIC_NAMES
from growthrec.store.modelfile import load_model

# A small shop: 200 customers, 40 products, 800 transaction rows.
USERS, ITEMS, DENSITY = 200, 40, 0.1
SVD_PARAMS = {"factors": 8, "normalize": False, "n_iter": 5}


pytestmark = pytest.mark.usefixtures("plain_console")


def _quiet_main(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` with its output captured, for module-scoped fixtures (no capsys there)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def read_transactions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def purchases_by_user(path: Path) -> dict[str, set[str]]:
    bought: dict[str, set[str]] = defaultdict(set)
    for row in read_transactions(path):
        bought[row["user_id"]].add(row["item_id"])
    return bought


def categories(path: Path) -> dict[str, str]:
    return {row["item_id"]: row["category"] for row in read_transactions(path)}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """A generated shop: data/transactions.csv and data/items.csv."""
    folder = tmp_path_factory.mktemp("shop")
    code, _, err = _quiet_main(
        [
            "generate",
            "--users",
            str(USERS),
            "--items",
            str(ITEMS),
            "--density",
            str(DENSITY),
            "--seed",
            "3",
            "--output",
            str(folder / "data" / "transactions.csv"),
        ]
    )
    assert code == 0, err
    return folder / "data" / "transactions.csv"


@pytest.fixture(scope="module")
def svd_model(shop, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "svd.npz"
    code, _, err = _quiet_main(
        ["train", "--data", str(shop), "--factors", "8", "--output", str(path)]
    )
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def bought(shop) -> dict[str, set[str]]:
    return purchases_by_user(shop)


# generate


def test_generate_writes_transactions_and_catalogue(tmp_path, capsys):
    target = tmp_path / "out" / "tx.csv"
    summary = run_json(
        capsys, "generate", "--users", 200, "--items", 40, "--density", 0.1, "--output", target
    )
    assert set(summary) == {
        "transactions",
        "catalog",
        "customers",
        "n_users",
        "n_items",
        "density",
        "seed",
        "seconds",
    }
    assert summary["transactions"]["path"] == str(target)
    assert summary["catalog"]["path"] == str(tmp_path / "out" / "items.csv")
    assert summary["transactions"]["rows"] == round(0.1 * 200 * 40) == 800
    assert (summary["n_users"], summary["n_items"], summary["seed"]) == (200, 40, 0)
    assert summary["seconds"] >= 0

    rows = read_transactions(target)
    assert len(rows) == 800
    assert list(rows[0]) == ["user_id", "item_id", "quantity", "timestamp"]
    assert {int(r["user_id"]) for r in rows} == set(range(1, 201))  # everyone bought once
    catalogue = read_transactions(tmp_path / "out" / "items.csv")
    assert list(catalogue[0]) == ["item_id", "category", "price", "brand", "line"]
    assert len(catalogue) == 40
    assert {r["item_id"] for r in rows} <= {r["item_id"] for r in catalogue}
    customers = read_transactions(tmp_path / "out" / "customers.csv")
    assert list(customers[0]) == ["user_id", "segment", "region"]
    assert [int(r["user_id"]) for r in customers] == list(range(1, 201))
    assert summary["customers"]["rows"] == 200
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "customers.csv",
        "items.csv",
        "tx.csv",
    ]


def test_generate_same_seed_same_bytes(tmp_path, capsys):
    def generate(folder: str, seed: int) -> tuple[bytes, bytes]:
        out = tmp_path / folder / "t.csv"
        args = ("generate", "--users", 200, "--items", 40, "--density", 0.1)
        code, _, err = run(capsys, *args, "--seed", seed, "--output", out)
        assert code == 0, err
        return out.read_bytes(), (out.parent / "items.csv").read_bytes()

    first = generate("a", 5)
    assert generate("b", 5) == first
    other = generate("c", 6)
    assert other[0] != first[0]


def test_generate_table_output(tmp_path, capsys):
    args = ("--users", 200, "--items", 40, "--density", 0.1, "--output", tmp_path / "t.csv")
    code, out, err = run(capsys, "generate", *args)
    assert code == 0
    assert err == ""
    assert "Synthetic shop written" in out
    assert re.search(r"rows\s+800\b", out)
    assert re.search(r"users\s+200\b", out)


def test_generate_parquet_and_custom_catalogue(tmp_path, capsys):
    summary = run_json(
        capsys,
        "generate",
        "--users",
        200,
        "--items",
        40,
        "--density",
        0.1,
        "--output",
        tmp_path / "t.parquet",
    )
    assert summary["catalog"]["path"] == str(tmp_path / "items.parquet")
    assert (tmp_path / "items.parquet").is_file()
    summary = run_json(
        capsys,
        "generate",
        "--users",
        200,
        "--items",
        40,
        "--density",
        0.1,
        "--output",
        tmp_path / "t.csv.gz",
        "--catalog-output",
        tmp_path / "cat" / "products.csv",
    )
    assert summary["catalog"]["path"] == str(tmp_path / "cat" / "products.csv")
    assert (tmp_path / "t.csv.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert len(read_transactions(tmp_path / "cat" / "products.csv")) == 40


# The prototype's three commands, exactly as written


def test_prototype_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    generate = "generate --users 1000 --items 100 --density 0.05 --seed 0"
    code, out, err = run(capsys, *generate.split(), "--output", "data/transactions.csv")
    assert code == 0, err
    assert Path("data/transactions.csv").is_file()
    assert Path("data/items.csv").is_file()
    rows = read_transactions(Path("data/transactions.csv"))
    assert len(rows) == 5000
    pairs = {(r["user_id"], r["item_id"]) for r in rows}

    train = "train --data data/transactions.csv --model svd --factors 50 --output models/"
    code, out, err = run(capsys, *train.split())
    assert code == 0, err
    model_file = Path("models/svd.npz")
    assert model_file.is_file()
    assert [p.name for p in Path("models").iterdir()] == ["svd.npz"]
    assert "Model trained" in out
    assert re.search(r"users\s+1,000\b", out)
    assert re.search(r"items\s+100\b", out)
    assert re.search(rf"interactions \(distinct pairs\)\s+{len(pairs):,}\b", out)
    assert f"{len(pairs) / 100_000:.4%}" in out  # density
    assert re.search(r"fit time\s+\d+\.\d{3} s", out)
    assert f"models/svd.npz ({human_bytes(model_file.stat().st_size)})" in out
    assert "factors=50" in out
    assert "data/items.csv" in out

    recommend = "recommend --model models/svd.npz --user-id 42 --n 5"
    code, out, err = run(capsys, *recommend.split())
    assert code == 0, err
    assert "Recommendations for user 42" in out
    assert re.search(r"rank\s+item\s+score\s+category\s+price\s+brand\s+line", out)
    table = re.findall(
        r"^\s*(\d+)\s+(SKU\d+)\s+(-?\d+\.\d{4})\s+(\w+)\s+(\d+\.?\d*)\s+[\w-]+\s+L\d+\s*$",
        out,
        re.M,
    )
    assert [int(rank) for rank, *_ in table] == [1, 2, 3, 4, 5]
    items = [item for _, item, *_ in table]
    assert len(set(items)) == 5
    scores = [float(score) for _, _, score, *_ in table]
    assert scores == sorted(scores, reverse=True)
    category = categories(Path("data/items.csv"))
    assert [c for *_, c, _ in table] == [category[i] for i in items]
    already = {item for user, item in pairs if user == "42"}
    assert already  # user 42 bought something, so the check below can fail
    assert not already & set(items)

    code, same, err = run(capsys, *recommend.replace("--user-id", "--user_id").split())
    assert code == 0, err
    assert same == out


# train


def test_train_json_and_params_pass_through(shop, tmp_path, capsys):
    summary = run_json(
        capsys,
        "train",
        "--data",
        shop,
        "--factors",
        "6",
        "--param",
        "normalize=true",
        "--param",
        "n_iter=3",
        "--output",
        tmp_path,
    )
    model_json, data = summary["model"], summary["data"]
    assert model_json["path"] == str(tmp_path / "svd.npz")
    assert model_json["backend"] == "svd"
    assert model_json["params"] == {"factors": 6, "normalize": True, "n_iter": 3}
    assert model_json["weighting"] == "binary"
    assert model_json["seed"] == 0
    pairs = {(r["user_id"], r["item_id"]) for r in read_transactions(shop)}
    assert data["n_users"] == USERS
    assert data["n_interactions"] == len(pairs)
    assert data["n_items"] == len({item for _, item in pairs})
    assert data["density"] == pytest.approx(len(pairs) / (USERS * data["n_items"]))
    assert summary["catalog"]["path"] == str(shop.parent / "items.csv")
    assert model_json["bytes"] == (tmp_path / "svd.npz").stat().st_size
    model = load_model(tmp_path / "svd.npz")
    assert dict(model.params) == {"factors": 6, "normalize": True, "n_iter": 3}
    assert model.arrays["item_factors"].shape == (data["n_items"], 6)
    assert set(model.item_attributes) == {"category", "price", "brand", "line"}


def test_train_param_factors_equals_factors_flag(shop, tmp_path, capsys):
    a = run_json(
        capsys, "train", "--data", shop, "--param", "factors=7", "--output", tmp_path / "a"
    )
    b = run_json(capsys, "train", "--data", shop, "--factors", "7", "--output", tmp_path / "b")
    assert a["model"]["params"] == b["model"]["params"] == {**SVD_PARAMS, "factors": 7}
    fa = load_model(a["model"]["path"]).arrays["item_factors"]
    np.testing.assert_array_equal(fa, load_model(b["model"]["path"]).arrays["item_factors"])


def test_train_output_npz_path(shop, tmp_path, capsys):
    target = tmp_path / "deep" / "my-model.npz"
    summary = run_json(capsys, "train", "--data", shop, "--factors", "4", "--output", target)
    assert summary["model"]["path"] == str(target)
    assert [p.name for p in target.parent.iterdir()] == ["my-model.npz"]
    assert load_model(target).backend == "svd"


def test_train_popularity_and_weighting(shop, tmp_path, capsys):
    summary = run_json(
        capsys,
        "train",
        "--data",
        shop,
        "--model",
        "popularity",
        "--weighting",
        "count",
        "--output",
        tmp_path,
    )
    assert summary["model"]["path"] == str(tmp_path / "popularity.npz")
    assert summary["model"]["params"] == {}
    model = load_model(tmp_path / "popularity.npz")
    assert model.weighting == "count"
    units = Counter()
    for row in read_transactions(shop):
        units[row["item_id"]] += int(row["quantity"])
    expected = [units[i] for i in model.train.items.ids.tolist()]
    np.testing.assert_array_equal(model.arrays["item_popularity"], expected)


def test_train_unknown_param_names_valid_ones(shop, tmp_path, capsys):
    message = assert_error(
        capsys, 2, "train", "--data", shop, "--param", "depth=3", "--output", tmp_path
    )
    assert "'depth'" in message
    assert "valid parameters: factors, normalize, n_iter" in message
    assert list(tmp_path.iterdir()) == []


def test_train_bad_param_value(shop, tmp_path, capsys):
    message = assert_error(
        capsys, 2, "train", "--data", shop, "--param", "normalize=maybe", "--output", tmp_path
    )
    assert "normalize" in message and "'maybe'" in message


def test_train_without_catalogue(tmp_path, capsys):
    data = tmp_path / "tx.csv"
    data.write_text("user_id,item_id\n1,A\n1,B\n2,A\n3,C\n3,B\n")
    summary = run_json(
        capsys, "train", "--data", data, "--model", "popularity", "--output", tmp_path
    )
    assert summary["catalog"] is None
    data = summary["data"]
    assert (data["n_users"], data["n_items"], data["n_interactions"]) == (3, 3, 5)
    assert dict(load_model(tmp_path / "popularity.npz").item_attributes) == {}


# recommend


def _check_result(result, bought_items: set[str], n: int, category: dict[str, str]) -> list[str]:
    items = result["items"]
    assert [row["rank"] for row in items] == list(range(1, n + 1))
    for row in items:
        assert set(row) == {"rank", "item", "score", "attributes"}
        assert set(row["attributes"]) == {"category", "price", "brand", "line"}
        assert row["attributes"]["category"] == category[row["item"]]
    scores = [row["score"] for row in items]
    assert scores == sorted(scores, reverse=True)
    ids = [row["item"] for row in items]
    assert len(set(ids)) == n
    assert not set(ids) & bought_items
    return ids


def test_recommend_several_users_json(shop, svd_model, bought, capsys):
    payload = run_json(capsys, "recommend", "--model", svd_model, "--user-id", "1", "2", "3")
    assert set(payload) == {"model", "list_spec", "n_short_lists", "results"}
    assert payload["n_short_lists"] == 0
    assert payload["model"]["path"] == str(svd_model)
    assert payload["model"]["backend"] == "svd"
    assert [r["user"] for r in payload["results"]] == ["1", "2", "3"]
    category = categories(shop.parent / "items.csv")
    for result in payload["results"]:
        assert set(result) == {"user", "source", "items"}
        assert result["source"] == "model"
        _check_result(result, bought[result["user"]], 10, category)
    # Repeated flags (and both spellings) are the same request.
    repeated = run_json(
        capsys,
        "recommend",
        "--model",
        svd_model,
        "--user-id",
        "1",
        "--user_id",
        "2",
        "--user-id",
        "3",
    )
    assert repeated == payload


def test_recommend_text_shows_one_table_per_user(svd_model, capsys):
    code, out, err = run(capsys, "recommend", "--model", svd_model, "--user-id", "5", "7", "--n", 3)
    assert code == 0, err
    assert "Recommendations for user 5" in out
    assert "Recommendations for user 7" in out
    assert len(re.findall(r"^\s+[123]\s+SKU\d+", out, re.M)) == 6


def test_recommend_for_a_new_basket(shop, svd_model, capsys):
    basket = ["SKU00001", "SKU00002", "SKU00003"]
    payload = run_json(
        capsys, "recommend", "--model", svd_model, "--items", ",".join(basket), "--n", 5
    )
    [result] = payload["results"]
    assert result["source"] == "fold-in"
    assert result["basket"] == basket
    ids = _check_result(result, set(basket), 5, categories(shop.parent / "items.csv"))
    assert not set(ids) & set(basket)


def test_recommend_basket_with_unknown_item_under_strict(svd_model, capsys):
    # Without --strict the unknown item is ignored with a warning (tests/test_baskets.py).
    message = assert_error(
        capsys, 1, "recommend", "--model", svd_model, "--items", "SKU00001,NOPE", "--strict"
    )
    assert "NOPE" in message


def test_recommend_unknown_user_mentions_fallback(svd_model, capsys):
    message = assert_error(capsys, 1, "recommend", "--model", svd_model, "--user-id", "99999")
    assert "user 99999" in message
    assert "--fallback popular" in message


def test_recommend_fallback_popular(shop, svd_model, bought, capsys):
    payload = run_json(
        capsys,
        "recommend",
        "--model",
        svd_model,
        "--user-id",
        "1",
        "99999",
        "--fallback",
        "popular",
        "--n",
        5,
    )
    known, unknown = payload["results"]
    assert (known["user"], known["source"]) == ("1", "model")
    assert (unknown["user"], unknown["source"]) == ("99999", "fallback:popular")
    buyers = Counter(item for items in bought.values() for item in items)
    popular = unknown["items"]
    assert len(popular) == 5
    assert [row["buyers"] for row in popular] == [buyers[row["item"]] for row in popular]
    # The score reads like a model's: the share of training customers who bought the item.
    assert [row["score"] for row in popular] == [
        pytest.approx(buyers[row["item"]] / len(bought), abs=1e-6) for row in popular
    ]
    fifth = popular[-1]["buyers"]
    others = set(buyers) - {row["item"] for row in popular}
    assert all(buyers[item] <= fifth for item in others)  # these are the top five sellers
    assert popular[0]["buyers"] == max(buyers.values())


def test_recommend_exclude(svd_model, bought, capsys):
    base = run_json(capsys, "recommend", "--model", svd_model, "--user-id", "1", "--n", 5)
    top = [row["item"] for row in base["results"][0]["items"][:3]]
    payload = run_json(
        capsys,
        "recommend",
        "--model",
        svd_model,
        "--user-id",
        "1",
        "--n",
        5,
        "--exclude",
        ",".join(top),
    )
    ids = [row["item"] for row in payload["results"][0]["items"]]
    assert len(ids) == 5
    assert not set(ids) & set(top)
    assert not set(ids) & bought["1"]
    assert ids[:2] == [row["item"] for row in base["results"][0]["items"][3:5]]


def test_recommend_include_purchased(svd_model, bought, capsys):
    heavy = max(bought, key=lambda user: len(bought[user]))
    n = 5
    assert len(bought[heavy]) >= n
    args = ("recommend", "--model", svd_model, "--user-id", heavy, "--n", n)
    default = run_json(capsys, *args)
    included = run_json(capsys, *args, "--include-purchased")
    default_ids = {row["item"] for row in default["results"][0]["items"]}
    included_ids = {row["item"] for row in included["results"][0]["items"]}
    assert not default_ids & bought[heavy]
    # svd reconstructs a heavy buyer's own row: their purchases come back once allowed.
    assert included_ids & bought[heavy]


def test_recommend_without_users_or_items(svd_model, capsys):
    message = assert_error(capsys, 1, "recommend", "--model", svd_model)
    assert "--user-id" in message and "--items" in message


# evaluate


def _check_evaluation(payload, ks: list[int], backends: list[str]) -> None:
    assert payload["ks"] == ks
    assert [r["backend"] for r in payload["results"]] == backends
    for result in payload["results"]:
        assert result["n_users"] == payload["split"]["n_test_users"]
        assert result["protocol"] == payload["split"]["protocol"]
        assert set(result["metrics"]) == {str(k) for k in ks}
        for k in ks:
            metrics = result["metrics"][str(k)]
            assert list(metrics) == [
                *METRIC_NAMES,
                "novelty",
                "diversity",
                "gini",
                "long_tail",
                "miscalibration",
            ]
            assert all(0.0 <= metrics[name] <= 1.0 for name in METRIC_NAMES), metrics
            assert metrics["novelty"] > 0.0
            assert 0.0 <= metrics["diversity"] <= 1.0  # the shop's catalogue has categories
            assert metrics["ndcg"] <= metrics["hit_rate"] + 1e-12
        hits = [result["metrics"][str(k)]["hit_rate"] for k in ks]
        assert hits == sorted(hits)


def test_evaluate_leave_one_out_json(shop, bought, capsys):
    payload = run_json(capsys, "evaluate", "--data", shop, "--factors", 8)
    assert payload["data"]["path"] == str(shop)
    assert payload["data"]["rows_kept"] == payload["data"]["rows_read"]
    assert len(payload["data"]["fingerprint"]) == 16
    assert payload["diversity_basis"] == "category"
    assert all(r["ranking"] == "full" for r in payload["results"])
    assert payload["split"]["protocol"] == "leave-one-out (latest)"  # the file has timestamps
    eligible = sum(len(items) >= 2 for items in bought.values())
    assert payload["split"]["n_test_users"] == eligible
    assert payload["split"]["n_train_only_users"] == USERS - eligible
    _check_evaluation(payload, [5, 10], ["svd", "popularity"])
    svd, pop = payload["results"]
    assert svd["params"] == SVD_PARAMS
    assert pop["params"] == {}
    for result in payload["results"]:
        for k in ("5", "10"):
            m = result["metrics"][k]
            # One held-out item per user: recall is the hit rate, precision a k-th of it.
            assert m["recall"] == pytest.approx(m["hit_rate"])
            assert m["precision"] == pytest.approx(m["hit_rate"] / int(k))
            assert m["map"] == pytest.approx(m["mrr"])
    assert pop["metrics"]["5"]["hit_rate"] > 0  # best sellers find something


def test_evaluate_ratio_protocol(shop, capsys):
    payload = run_json(capsys, "evaluate", "--data", shop, "--factors", 8, "--protocol", "ratio")
    assert payload["split"]["protocol"] == "ratio holdout (0.2)"
    _check_evaluation(payload, [5, 10], ["svd", "popularity"])
    payload = run_json(
        capsys,
        "evaluate",
        "--data",
        shop,
        "--factors",
        8,
        "--protocol",
        "ratio",
        "--test-ratio",
        0.5,
    )
    assert payload["split"]["protocol"] == "ratio holdout (0.5)"


def test_evaluate_by_random(shop, capsys):
    payload = run_json(capsys, "evaluate", "--data", shop, "--factors", 8, "--by", "random")
    assert payload["split"]["protocol"] == "leave-one-out (random)"
    _check_evaluation(payload, [5, 10], ["svd", "popularity"])


def test_evaluate_no_baseline_and_ks(shop, capsys):
    payload = run_json(
        capsys, "evaluate", "--data", shop, "--factors", 8, "--no-baseline", "--k", 1, 3, 20
    )
    _check_evaluation(payload, [1, 3, 20], ["svd"])


def test_evaluate_popularity_is_not_doubled(shop, capsys):
    payload = run_json(capsys, "evaluate", "--data", shop, "--model", "popularity")
    _check_evaluation(payload, [5, 10], ["popularity"])


def test_evaluate_same_seed_same_numbers(shop, capsys):
    args = ("evaluate", "--data", shop, "--factors", 8, "--by", "random", "--seed", 4)
    first = run_json(capsys, *args)
    second = run_json(capsys, *args)
    assert [r["metrics"] for r in first["results"]] == [r["metrics"] for r in second["results"]]


def test_evaluate_threads_do_not_change_numbers(shop, capsys):
    args = ("evaluate", "--data", shop, "--factors", 8, "--seed", 1)
    one = run_json(capsys, *args, "--threads", 1)
    two = run_json(capsys, *args, "--threads", 2)
    assert [r["metrics"] for r in one["results"]] == [r["metrics"] for r in two["results"]]
    assert_error(capsys, 2, *args, "--threads", 0)


def test_evaluate_table(shop, capsys):
    code, out, err = run(capsys, "evaluate", "--data", shop, "--factors", 8, "--k", 5)
    assert code == 0, err
    assert re.search(r"metric\s+svd @5\s+popularity @5", out)
    for name in METRIC_NAMES:
        assert re.search(rf"^\s+{name}\s+\d\.\d{{4}}\s+\d\.\d{{4}}\s*$", out, re.M), name
    assert "customers evaluated" in out


# backends


def test_backends_json(capsys):
    payload = run_json(capsys, "backends")
    by_name = {entry["name"]: entry for entry in payload}
    assert {"svd", "popularity"} <= set(by_name)
    assert [e["name"] for e in payload] == sorted(by_name)
    svd = by_name["svd"]
    assert svd["plugin"] == "growthrec.backends.svd"
    assert svd["distribution"].startswith("growthrec ")
    assert svd["description"]
    params = {p["name"]: p for p in svd["params"]}
    assert list(params) == ["factors", "normalize", "n_iter"]
    assert (params["factors"]["type"], params["factors"]["default"]) == ("int", 50)
    assert (params["normalize"]["type"], params["normalize"]["default"]) == ("bool", False)
    assert (params["n_iter"]["type"], params["n_iter"]["default"]) == ("int", 5)
    assert all(p["help"] for p in svd["params"])
    popularity = by_name["popularity"]
    assert popularity["plugin"] == "growthrec.backends.popularity"
    assert popularity["params"] == []


def test_backends_table(capsys):
    code, out, err = run(capsys, "backends")
    assert code == 0, err
    assert re.search(r"backend\s+description\s+plugin\s+parameters", out)
    assert "growthrec.backends.svd" in out
    assert "growthrec.backends.popularity" in out
    for text in ("factors=50", "normalize=False", "n_iter=5"):
        assert text in out


# demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    code, out, err = _quiet_main(["demo", "--json", "--workdir", str(workdir)])
    return code, out, err, workdir


def test_demo_json(demo):
    code, out, err, workdir = demo
    assert code == 0, err
    assert err == ""
    payload = json.loads(out)
    assert set(payload) == {
        "data",
        "evaluation",
        "model",
        "sample_user",
        "new_product",
        "new_customer",
        "seconds",
    }
    assert payload["data"]["n_users"] == 1000
    assert payload["data"]["n_items"] == 100
    assert payload["data"]["rows_read"] == 5000
    evaluation = payload["evaluation"]
    assert evaluation["split"]["protocol"] == "leave-one-out (latest)"
    assert [r["backend"] for r in evaluation["results"]] == ["svd", "popularity"]
    for result in evaluation["results"]:
        assert 0.0 <= result["metrics"]["5"]["hit_rate"] <= 1.0
    assert evaluation["results"][0]["params"]["factors"] == 50

    assert payload["model"]["bytes"] == (workdir / "models" / "svd.npz").stat().st_size
    sample = payload["sample_user"]
    assert sample["user"] == "42"
    bought = purchases_by_user(workdir / "data" / "transactions.csv")["42"]
    purchased = [p["item"] for p in sample["purchased"]]
    assert sorted(purchased) == sorted(bought)
    units = Counter()
    for row in read_transactions(workdir / "data" / "transactions.csv"):
        if row["user_id"] == "42":
            units[row["item_id"]] += int(row["quantity"])
    assert {p["item"]: p["quantity"] for p in sample["purchased"]} == dict(units)
    recommended = [r["item"] for r in sample["recommended"]]
    assert len(recommended) == 5
    assert [r["rank"] for r in sample["recommended"]] == [1, 2, 3, 4, 5]
    assert not set(recommended) & set(purchased)
    category = categories(workdir / "data" / "items.csv")
    assert all(r["attributes"]["category"] == category[r["item"]] for r in sample["recommended"])


def test_demo_new_product_reaches_the_customers_it_suits(demo):
    """The product added from its features alone reaches every customer who bought from its
    line, and those it reaches bought its line and brand far more often than customers do."""
    code, out, _, workdir = demo
    assert code == 0
    payload = json.loads(out)
    reach = payload["new_product"]
    assert reach["item"] == "SKU00101"
    assert (workdir / "data" / "new_items.csv").is_file()
    assert reach["n_reached_bought_line"] == reach["n_bought_line"] > 0
    n_users, reached = reach["n_users"], reach["n_reached"]
    assert reach["n_reached_bought_line"] / reached > 2 * reach["n_bought_line"] / n_users
    assert reach["n_reached_bought_brand"] / reached > 2 * reach["n_bought_brand"] / n_users
    bought = purchases_by_user(workdir / "data" / "transactions.csv")
    for customer in reach["customers"]:
        assert 1 <= customer["rank"] <= reach["top_n"]
        assert set(customer["bought_from_line"]) <= set(bought[customer["user"]])
    new_customer = payload["new_customer"]
    assert new_customer["customer_features"] == {"segment": reach["top_segment"]}
    assert len(new_customer["recommended"]) == 5
    assert new_customer["new_product_rank"] > 0


def test_demo_reproduces_prototype_headline(demo):
    """The prototype's result: svd finds the held-out purchase in its top 5 for 60-65% of
    customers on the default synthetic shop, and the best sellers do worse."""
    code, out, _, _ = demo
    assert code == 0
    svd, popularity = json.loads(out)["evaluation"]["results"]
    svd_hit = svd["metrics"]["5"]["hit_rate"]
    popularity_hit = popularity["metrics"]["5"]["hit_rate"]
    assert 0.60 <= svd_hit <= 0.65, f"svd hit_rate@5 = {svd_hit:.4f}"
    assert popularity_hit < svd_hit, f"popularity {popularity_hit:.4f} vs svd {svd_hit:.4f}"


def test_demo_text(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "--workdir", tmp_path, "--user-id", "7")
    assert code == 0, err
    assert "Synthetic shop" in out
    assert "svd finds the held-out purchase in its top 5" in out
    assert "Customer 7 bought" in out
    assert "svd recommends" in out
    assert "New product SKU00101" in out and "added from its" in out
    assert "New customer, segment=" in out
    assert (tmp_path / "models" / "svd.npz").is_file()


def test_demo_unknown_user(tmp_path, capsys):
    message = assert_error(capsys, 1, "demo", "--workdir", tmp_path, "--user-id", "nobody")
    assert "nobody" in message


# Errors: exit code, one line on stderr starting with "error:", no traceback


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "empty.csv").write_bytes(b"")
    (folder / "header.csv").write_text("user_id,item_id\n")
    (folder / "nocol.csv").write_text("customer,item_id\n1,A\n")
    (folder / "badvalue.csv").write_text("user_id,item_id,quantity\n1,A,1\n2,B,two\n")
    (folder / "baddate.csv").write_text("user_id,item_id,timestamp\n1,A,yesterday\n")
    (folder / "garbage.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00")
    (folder / "notes.npz").write_text("not a model\n")
    np.savez(folder / "other.npz", weights=np.ones(3))
    (folder / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    return folder


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["train", "--data", "{bad}/missing.csv"], 1, "missing.csv: no such file"),
        (["train", "--data", "{bad}/empty.csv"], 1, "empty.csv"),
        (
            ["train", "--data", "{bad}/header.csv"],
            1,
            "header.csv: the file has a header but no rows",
        ),
        (["train", "--data", "{bad}/nocol.csv"], 1, "nocol.csv: no column 'user_id'; the file has"),
        (
            ["train", "--data", "{bad}/badvalue.csv"],
            1,
            "badvalue.csv: column 'quantity': cannot read 'two' at row 2 (line 3)",
        ),
        (
            ["evaluate", "--data", "{bad}/baddate.csv"],
            1,
            "baddate.csv: column 'timestamp': cannot read 'yesterday'",
        ),
        (["train", "--data", "{bad}/garbage.csv"], 1, "garbage.csv: not a readable CSV file"),
        (["train", "--data", "{bad}/sheet.xlsx"], 1, "sheet.xlsx: unknown file type"),
        (["train", "--data", "{shop}", "--model", "nosuch"], 2, "unknown backend 'nosuch'"),
        (["evaluate", "--data", "{shop}", "--model", "nosuch"], 2, "available: "),
        (["recommend", "--model", "{model}", "--user-id", "1", "--n", "0"], 2, "--n"),
        (["train", "--data", "{shop}", "--factors", "500"], 2, "factors=500"),
        (["train", "--data", "{shop}", "--factors", "0"], 2, "--factors"),
        (
            ["recommend", "--model", "{bad}/notes.npz", "--user-id", "1"],
            1,
            "notes.npz: not a readable",
        ),
        (
            ["recommend", "--model", "{bad}/other.npz", "--user-id", "1"],
            1,
            "other.npz: not a growthrec",
        ),
        (["recommend", "--model", "{shop}", "--user-id", "1"], 1, "growthrec model file"),
        (
            ["recommend", "--model", "{bad}/none.npz", "--user-id", "1"],
            1,
            "none.npz: no such model file",
        ),
        (["recommend", "--model", "{model}", "--user-id", "99999"], 1, "--fallback"),
        (["train", "--data", "{shop}", "--param", "factors"], 2, "expected NAME=VALUE"),
        (["train", "--data", "{shop}", "--param", "=3"], 2, "expected NAME=VALUE"),
        (["train", "--data", "{shop}", "--frobnicate"], 2, "unrecognized arguments"),
        (["recommend", "--user-id", "1"], 2, "--model"),
        (["generate", "--density", "0.001"], 2, "density"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors(capsys, tmp_path, monkeypatch, shop, svd_model, bad_files, argv, code, expected):
    monkeypatch.chdir(tmp_path)  # so that nothing lands in the repository
    filled = [a.format(bad=bad_files, shop=shop, model=svd_model) for a in argv]
    message = assert_error(capsys, code, *filled)
    assert expected in message
    assert list(tmp_path.iterdir()) == []  # no model file, no data, no temp file


def test_failed_train_leaves_no_files(shop, tmp_path, capsys):
    out = tmp_path / "models"
    out.mkdir()
    assert_error(capsys, 2, "train", "--data", shop, "--factors", 500, "--output", out)
    assert list(out.iterdir()) == []


def test_failed_train_keeps_the_previous_model(shop, tmp_path, capsys):
    run_json(capsys, "train", "--data", shop, "--factors", 4, "--output", tmp_path)
    before = (tmp_path / "svd.npz").read_bytes()
    assert_error(capsys, 2, "train", "--data", shop, "--factors", 500, "--output", tmp_path)
    assert (tmp_path / "svd.npz").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["svd.npz"]


def test_write_failing_midway_leaves_no_model_and_no_temp(shop, tmp_path, monkeypatch):
    def savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a model")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", savez)
    try:
        code = main(["train", "--data", str(shop), "--factors", "4", "--output", str(tmp_path)])
    except OSError:
        code = None
    assert code != 0
    assert list(tmp_path.iterdir()) == []


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 2
    assert "generate" in out and "recommend" in out


# Progress bars: only on a terminal, never with --json


@pytest.fixture
def progress_bars(monkeypatch) -> list[object]:
    """Record every progress display the CLI creates."""
    created: list[object] = []
    original = growthrec.cli.output.Progress

    def recording(*args, **kwargs):
        bar = original(*args, **kwargs)
        created.append(bar)
        return bar

    monkeypatch.setattr(growthrec.cli.output, "Progress", recording)
    return created


def _generate_args(tmp_path: Path) -> list[object]:
    return [
        "generate",
        "--users",
        200,
        "--items",
        40,
        "--density",
        0.1,
        "--output",
        tmp_path / "t.csv",
    ]


def test_progress_shown_on_a_terminal(tmp_path, monkeypatch, capsys, progress_bars):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    code, _, err = run(capsys, *_generate_args(tmp_path))
    assert code == 0, err
    assert len(progress_bars) == 1  # the control: a terminal does get a progress bar


def test_no_progress_when_not_a_terminal(tmp_path, capsys, progress_bars):
    code, _, err = run(capsys, *_generate_args(tmp_path))
    assert code == 0, err
    assert progress_bars == []


def test_json_stdout_is_pure_json_even_on_a_terminal(
    shop, svd_model, tmp_path, monkeypatch, capsys, progress_bars
):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    commands = [
        _generate_args(tmp_path),
        ["train", "--data", shop, "--factors", 4, "--output", tmp_path / "m.npz"],
        ["evaluate", "--data", shop, "--factors", 4, "--k", 5],
        ["recommend", "--model", svd_model, "--user-id", "1"],
        ["backends"],
    ]
    for argv in commands:
        code, out, err = run(capsys, *argv, "--json")
        assert code == 0, err
        assert "\x1b" not in out
        json.loads(out)  # the whole of stdout, nothing before or after
    assert progress_bars == []
