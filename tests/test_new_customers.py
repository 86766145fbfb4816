"""recommend --customer-feature: a new customer from their features alone, or with a basket."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, run, run_json
from test_json_contract import check

from growthrec.pipeline.lists import recommend_new_customers
from growthrec.store.modelfile import load_model

pytestmark = pytest.mark.usefixtures("plain_console")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from growthrec.cli.main import main

    root = tmp_path_factory.mktemp("new-customers")
    data = root / "data" / "transactions.csv"
    assert (
        main(["generate", "--users", "600", "--items", "60", "--seed", "5", "--output", str(data)])
        == 0
    )
    out = {"data": data, "customers": data.parent / "customers.csv"}
    features = ["--item-features", "brand,line,category", "--user-features", "segment,region"]
    for name, backend in (("svd", "svd"), ("itemknn", "itemknn")):
        out[name] = root / f"{name}.npz"
        argv = ["train", "--data", str(data), *features, "--model", backend]
        assert main([*argv, "--output", str(out[name])]) == 0
    out["plain"] = root / "plain.npz"
    assert main(["train", "--data", str(data), "--output", str(out["plain"])]) == 0
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_features_alone(files, capsys):
    payload = run_json(
        capsys, "recommend", "--model", files["svd"], "--customer-feature", "segment=families",
        "--n", 5,
    )  # fmt: skip
    check("recommend", payload)
    [result] = payload["results"]
    assert result["customer_features"] == {"segment": "families"}
    assert result["source"] == "features"
    assert "basket" not in result
    model = load_model(files["svd"])
    items, scores = recommend_new_customers(
        model, [[]], {"segment": ["families"], "region": [""]}, 5
    )
    assert [r["item"] for r in result["items"]] == [
        str(i) for i in model.train.items.external(items[0])
    ]
    assert [r["score"] for r in result["items"]] == [round(float(s), 6) for s in scores[0]]


@pytest.mark.parametrize("backend", ["svd", "itemknn"])
def test_a_segments_list_is_its_customers_best_sellers(files, capsys, backend):
    """From features alone, a segment's list holds mostly what that segment's customers buy."""
    segment_of = {r["user_id"]: r["segment"] for r in _rows(files["customers"])}
    bought = {(r["user_id"], r["item_id"]) for r in _rows(files["data"])}
    by_segment: dict[str, Counter] = {}
    for user, item in bought:
        by_segment.setdefault(segment_of[user], Counter())[item] += 1
    overlaps = {}
    for segment, counts in by_segment.items():
        payload = run_json(
            capsys, "recommend", "--model", files[backend], "--customer-feature",
            f"segment={segment}", "--n", 10,
        )  # fmt: skip
        listed = {r["item"] for r in payload["results"][0]["items"]}
        overlaps[segment] = len(listed & {i for i, _ in counts.most_common(10)})
    # better than the best sellers overall would do for the segments on average
    overall = Counter(item for _, item in bought)
    top = {i for i, _ in overall.most_common(10)}
    baseline = np.mean([len(top & {i for i, _ in c.most_common(10)}) for c in by_segment.values()])
    assert np.mean(list(overlaps.values())) > baseline + 1, (overlaps, baseline)


def test_features_and_basket(files, capsys):
    argv = ("recommend", "--model", files["svd"], "--customer-feature", "segment=gardeners")
    code, out, err = run(
        capsys, *argv, "--customer-feature", "region=north", "--items", "SKU00001,NOPE",
        "--n", 4, "--json",
    )  # fmt: skip
    assert code == 0, err
    assert err == "warning: basket items not in the model's catalogue, ignored: NOPE\n"
    payload = json.loads(out)
    check("recommend", payload)
    [result] = payload["results"]
    assert result["source"] == "features+basket"
    assert result["basket"] == ["SKU00001", "NOPE"] and result["ignored_items"] == ["NOPE"]
    assert "SKU00001" not in {r["item"] for r in result["items"]}
    model = load_model(files["svd"])
    items, _ = recommend_new_customers(
        model, [["SKU00001"]], {"segment": ["gardeners"], "region": ["north"]}, 4
    )
    assert [r["item"] for r in result["items"]] == [
        str(i) for i in model.train.items.external(items[0])
    ]
    # a basket of only unknown items still has the features
    code, out, _ = run(capsys, *argv, "--items", "NOPE", "--json")
    assert code == 0 and json.loads(out)["results"][0]["source"] == "features"


def test_human_output_titles(files, capsys):
    code, out, err = run(
        capsys,
        "recommend",
        "--model",
        files["svd"],
        "--customer-feature",
        "segment=cooks",
        "--n",
        3,
    )
    assert code == 0, err
    assert "New customer (segment=cooks), from their features alone" in out


def test_a_value_the_model_did_not_learn_is_named(files, capsys):
    code, out, err = run(
        capsys, "recommend", "--model", files["svd"], "--customer-feature", "segment=cooks",
        "--customer-feature", "region=mars", "--json",
    )  # fmt: skip
    assert code == 0
    assert err == "warning: customer feature values the model did not learn, ignored: region=mars\n"
    assert json.loads(out)["results"][0]["source"] == "features"


@pytest.mark.parametrize(
    ("model", "argv", "code", "message"),
    [
        (
            "svd",
            ["--customer-feature", "colour=red"],
            2,
            "--customer-feature colour=...: the model knows no customer feature 'colour'; its "
            "customer features are segment, region",
        ),
        (
            "plain",
            ["--customer-feature", "segment=cooks"],
            2,
            "plain.npz was trained without customer features; train it with --customers FILE "
            "--user-features COLUMNS",
        ),
        (
            "svd",
            ["--customer-feature", "segment=aliens"],
            1,
            "new customer: no feature value the model knows (segment=aliens) and no basket item "
            "it knows; give a value it learned, or use --fallback popular",
        ),
        (
            "svd",
            ["--customer-feature", "segment=aliens", "--items", "NOPE"],
            1,
            "no feature value the model knows (segment=aliens) and no basket item it knows (NOPE)",
        ),
        ("svd", ["--customer-feature", "segment"], 2, "'segment' is not COLUMN=VALUE"),
        (
            "svd",
            ["--customer-feature", "segment=cooks", "--customer-feature", "segment=gamers"],
            2,
            "--customer-feature: column 'segment' is given twice",
        ),
        (
            "svd",
            ["--customer-feature", "segment=cooks", "--items", "NOPE", "--strict"],
            1,
            "basket: NOPE not in the model's catalogue (--strict refuses them)",
        ),
    ],
)
def test_bad_inputs_are_one_line(files, capsys, model, argv, code, message):
    error = assert_error(capsys, code, "recommend", "--model", files[model], *argv)
    assert message in error


def test_nothing_known_falls_back_when_asked(files, capsys):
    payload = run_json(
        capsys, "recommend", "--model", files["svd"], "--customer-feature", "segment=aliens",
        "--fallback", "popular", "--n", 3,
    )  # fmt: skip
    check("recommend", payload)
    [result] = payload["results"]
    assert result["source"] == "fallback:popular"
    assert all("buyers" in r for r in result["items"])


def test_known_customer_and_new_one_together(files, capsys):
    payload = run_json(
        capsys, "recommend", "--model", files["svd"], "--user-id", "1", "--customer-feature",
        "segment=cooks", "--n", 2,
    )  # fmt: skip
    check("recommend", payload)
    assert [r["source"] for r in payload["results"]] == ["model", "features"]


def test_no_customer_at_all_names_every_way(files, capsys):
    error = assert_error(capsys, 1, "recommend", "--model", files["svd"])
    assert "--user-id USER, --items A,B,C or --customer-feature COLUMN=VALUE" in error
