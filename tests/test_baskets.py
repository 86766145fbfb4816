"""The baskets and customer lists a shop actually has: unknown items and users, odd ids."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from cli_helpers import assert_error, run, run_json

from growthrec.core.interactions import build_interactions
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import known_items, recommend_baskets
from growthrec.store.modelfile import load_model, save_model

pytestmark = pytest.mark.usefixtures("plain_console")

# Six customers, six products. Two ids need care: "mug, red" holds a comma and " tea" starts
# with a space. Buyers per product: pen 5, cup 4, ink 3, "mug, red" 2, pad 2, " tea" 1, so
# the three best sellers are pen, cup, ink (5/6, 4/6 and 3/6 of the customers).
PURCHASES = {
    "u1": ["pen", "cup", "ink", "mug, red"],
    "u2": ["pen", "cup", "ink"],
    "u3": ["pen", "cup", "mug, red"],
    "u4": ["pen", "cup", "pad"],
    "u5": ["pen", "ink", " tea"],
    "u6": ["pad"],
}
BEST_SELLERS = ["pen", "cup", "ink"]
WARNING = "warning: basket items not in the model's catalogue, ignored: {}\n"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    users = [u for u, items in PURCHASES.items() for _ in items]
    items = [i for bought in PURCHASES.values() for i in bought]
    model = fit_model(build_interactions(users, items), "svd", {"factors": 2}, seed=0)
    return save_model(model, tmp_path_factory.mktemp("models") / "shop.npz")


@pytest.fixture(scope="module")
def model(model_file):
    return load_model(model_file)


def _basket_json(capsys, model_file, *argv):
    """Run ``recommend --json`` for a basket; (the one result, stderr)."""
    code, out, err = run(capsys, "recommend", "--model", model_file, *argv, "--json")
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    return result, err


def _ids(result) -> list[str]:
    return [row["item"] for row in result["items"]]


def _fold_in(model, basket, n=3) -> list[str]:
    items, _ = recommend_baskets(model, [basket], n)
    return model.train.items.external(items[0][items[0] >= 0]).tolist()


# --- some items unknown: scored on the known ones, the others named -------------------------


def test_unknown_basket_items_are_ignored_and_named(capsys, model_file, model):
    result, err = _basket_json(capsys, model_file, "--items", "pen,zzz,cup,yyy", "--n", 3)
    assert err == WARNING.format("zzz, yyy")
    assert result["basket"] == ["pen", "zzz", "cup", "yyy"]
    assert result["ignored_items"] == ["zzz", "yyy"]
    assert result["source"] == "fold-in"
    # Exactly the list of the known items alone, which excludes them.
    assert _ids(result) == _fold_in(model, ["pen", "cup"]) != []
    assert not {"pen", "cup"} & set(_ids(result))


def test_a_basket_of_known_items_ignores_nothing_and_warns_nothing(capsys, model_file):
    result = run_json(capsys, "recommend", "--model", model_file, "--items", "pen", "--n", 2)
    (result,) = result["results"]
    assert result["ignored_items"] == []
    assert len(result["items"]) == 2


def test_strict_refuses_unknown_items(capsys, model_file):
    message = assert_error(
        capsys, 1, "recommend", "--model", model_file, "--items", "pen,zzz,yyy", "--strict"
    )
    assert message == (
        "error: basket: zzz, yyy not in the model's catalogue (--strict refuses them)"
    )


def test_strict_accepts_a_known_basket(capsys, model_file, model):
    payload = run_json(
        capsys, "recommend", "--model", model_file, "--items", "pen,cup", "--strict", "--n", 3
    )
    assert _ids(payload["results"][0]) == _fold_in(model, ["pen", "cup"])


def test_only_unknown_items_is_an_error_naming_them(capsys, model_file):
    message = assert_error(capsys, 1, "recommend", "--model", model_file, "--items", "zzz,yyy")
    assert message == (
        "error: basket: none of its items is in the model's catalogue (zzz, yyy); "
        "use --fallback popular for best sellers"
    )


def test_only_unknown_items_with_fallback_gives_labelled_best_sellers(capsys, model_file):
    result, err = _basket_json(
        capsys, model_file, "--items", "zzz,yyy", "--fallback", "popular", "--n", 3
    )
    assert err == WARNING.format("zzz, yyy")
    assert result["source"] == "fallback:popular"
    assert result["ignored_items"] == ["zzz", "yyy"]
    assert _ids(result) == BEST_SELLERS
    assert [row["buyers"] for row in result["items"]] == [5, 4, 3]


def test_fallback_basket_table_says_best_sellers(capsys, model_file):
    code, out, err = run(
        capsys, "recommend", "--model", model_file, "--items", "zzz", "--fallback", "popular"
    )
    assert code == 0
    assert err == WARNING.format("zzz")
    words = " ".join(out.replace("━", " ").split())  # the title wraps at the table's width
    assert words == (
        "New customer: no basket item is in the training data, so the best sellers "
        "rank item buyers 1 pen 5 2 cup 4 3 ink 3 4 mug, red 2 5 pad 2 6 tea 1 "
        "note: 1 of 1 list is shorter than 10 items: the catalogue, the rules and what the "
        "customer bought leave no more (nothing is made up to fill it)"
    )


def test_many_unknown_items_are_named_ten_and_counted(capsys, model_file):
    unknown = [f"x{n}" for n in range(13)]
    _, err = _basket_json(capsys, model_file, "--items", ",".join(["pen", *unknown]))
    assert err == WARNING.format(", ".join(unknown[:10]) + " and 3 more")


# --- --items "" and ids with commas ----------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", ",", " , ,"])
def test_an_empty_items_list_is_a_usage_error(capsys, model_file, text):
    message = assert_error(capsys, 2, "recommend", "--model", model_file, "--items", text)
    assert message == (
        f"error: growthrec recommend: argument --items: {text!r} names no item; give "
        "comma-separated item ids, e.g. --items A,B,C (see 'growthrec recommend --help')"
    )


def test_repeatable_item_takes_ids_with_commas_exactly(capsys, model_file, model):
    result, err = _basket_json(
        capsys, model_file, "--item", "mug, red", "--item", " tea", "--item", "tea", "--n", 3
    )
    assert err == WARNING.format("tea")  # " tea" is known, "tea" is not: no stripping
    assert result["basket"] == ["mug, red", " tea", "tea"]
    assert result["ignored_items"] == ["tea"]
    assert _ids(result) == _fold_in(model, ["mug, red", " tea"])
    assert not {"mug, red", " tea"} & set(_ids(result))


def test_items_file_one_id_per_line_exactly(capsys, model_file, model, tmp_path):
    basket = tmp_path / "basket.txt"
    # CRLF and LF line ends, a blank line, and no newline at the end.
    basket.write_bytes(b"mug, red\r\n tea\n\ntea \npen")
    before = basket.read_bytes()
    result, err = _basket_json(capsys, model_file, "--items-file", basket, "--n", 3)
    assert result["basket"] == ["mug, red", " tea", "tea ", "pen"]
    assert result["ignored_items"] == ["tea "]
    assert err == WARNING.format("tea ")
    assert _ids(result) == _fold_in(model, ["mug, red", " tea", "pen"])
    assert basket.read_bytes() == before


def test_items_item_and_items_file_make_one_basket(capsys, model_file, model, tmp_path):
    basket = tmp_path / "basket.txt"
    basket.write_text("ink\n")
    result = run_json(
        capsys,
        "recommend",
        "--model",
        model_file,
        "--items",
        "pen",
        "--item",
        "mug, red",
        "--items-file",
        basket,
    )["results"][0]
    assert result["basket"] == ["pen", "mug, red", "ink"]
    assert _ids(result) == _fold_in(model, ["pen", "mug, red", "ink"], n=10)


def test_items_file_errors(capsys, model_file, tmp_path):
    missing = tmp_path / "nope.txt"
    message = assert_error(capsys, 1, "recommend", "--model", model_file, "--items-file", missing)
    assert message == f"error: {missing}: no such items file"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    message = assert_error(capsys, 1, "recommend", "--model", model_file, "--items-file", empty)
    assert message == f"error: {empty}: the items file lists no item ids"
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00pen")
    message = assert_error(capsys, 1, "recommend", "--model", model_file, "--items-file", binary)
    assert message == f"error: {binary}: not a UTF-8 text file of item ids"
    message = assert_error(capsys, 1, "recommend", "--model", model_file, "--items-file", tmp_path)
    assert message == f"error: {tmp_path}: is a folder, not an items file"


def test_known_items_splits_in_order(model):
    assert known_items(model, ["zzz", "pen", "mug, red", "mug"]) == (
        ["pen", "mug, red"],
        ["zzz", "mug"],
    )
    assert known_items(model, []) == ([], [])


# --- export of customers the model does not know ----------------------------------------------


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_export_unknown_users_is_an_error_without_fallback(capsys, model_file, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("u1\nghost\nu2\nspook\n")
    output = tmp_path / "recs.csv"
    message = assert_error(
        capsys, 1, "export", "--model", model_file, "--users-file", users, "--output", output
    )
    assert message == (
        "error: users ghost, spook are not in the model's training data (2 of 4 asked for); "
        "use --fallback popular to export the best sellers for them"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.txt"]


def test_export_fallback_popular_writes_labelled_best_sellers(capsys, model_file, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("u1\nghost\nu2\n")
    output = tmp_path / "recs.csv"
    summary = run_json(
        capsys,
        "export",
        "--model",
        model_file,
        "--users-file",
        users,
        "--output",
        output,
        "--n",
        3,
        "--fallback",
        "popular",
    )
    assert (summary["n_users"], summary["n_fallback_users"]) == (3, 1)
    rows = _read_csv(output)
    assert list(rows[0]) == ["user_id", "rank", "item_id", "score", "source"]
    ghost = [r for r in rows if r["user_id"] == "ghost"]
    assert [(r["rank"], r["item_id"], r["source"]) for r in ghost] == [
        ("1", "pen", "fallback:popular"),
        ("2", "cup", "fallback:popular"),
        ("3", "ink", "fallback:popular"),
    ]
    # score: the share of the six training customers who bought the item
    np.testing.assert_allclose([float(r["score"]) for r in ghost], [5 / 6, 4 / 6, 3 / 6], 1e-6)
    known = [r for r in rows if r["user_id"] != "ghost"]
    assert {r["user_id"] for r in known} == {"u1", "u2"}
    assert {r["source"] for r in known} == {"model"}
    assert rows[-3:] == ghost  # the customers the model does not know come last
    assert summary["output"]["rows"] == len(rows)


def test_export_fallback_with_only_known_users_adds_the_source_column(capsys, model_file, tmp_path):
    output = tmp_path / "recs.csv"
    run_json(
        capsys,
        "export",
        "--model",
        model_file,
        "--user-id",
        "u6",
        "--output",
        output,
        "--n",
        2,
        "--fallback",
        "popular",
    )
    rows = _read_csv(output)
    assert [(r["user_id"], r["rank"], r["source"]) for r in rows] == [
        ("u6", "1", "model"),
        ("u6", "2", "model"),
    ]


def test_export_without_fallback_keeps_four_columns(capsys, model_file, tmp_path):
    output = tmp_path / "recs.csv"
    run_json(capsys, "export", "--model", model_file, "--output", output, "--n", 1)
    rows = _read_csv(output)
    assert list(rows[0]) == ["user_id", "rank", "item_id", "score"]
    assert sorted(r["user_id"] for r in rows) == sorted(PURCHASES)


@pytest.fixture(scope="module")
def int_model_file(tmp_path_factory):
    """Customers 1..4 with whole-number ids: the export's user_id column is an integer."""
    users = [1, 1, 2, 2, 3, 4]
    items = ["pen", "cup", "pen", "ink", "pen", "cup"]
    model = fit_model(build_interactions(users, items), "popularity")
    return save_model(model, tmp_path_factory.mktemp("models") / "int.npz")


def test_export_fallback_with_whole_number_ids(capsys, int_model_file, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("2\n99\n")
    output = tmp_path / "recs.csv"
    argv = ["export", "--model", int_model_file, "--users-file", users, "--output", output]
    run_json(capsys, *argv, "--n", 1, "--fallback", "popular")
    rows = _read_csv(output)
    assert [(r["user_id"], r["item_id"], r["source"]) for r in rows] == [
        ("2", "cup", "model"),
        ("99", "pen", "fallback:popular"),
    ]
    # "007" is not customer 7, and the integer column cannot keep its text: refused.
    users.write_text("2\n007\n")
    message = assert_error(capsys, 1, *argv, "--fallback", "popular")
    assert message == (
        "error: user 007: not in the model's training data, and its best sellers cannot be "
        "written: the user_id column holds whole numbers and would not keep this id as given"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recs.csv", "users.txt"]
    assert [r["user_id"] for r in _read_csv(output)] == ["2", "99"]  # the old file untouched
