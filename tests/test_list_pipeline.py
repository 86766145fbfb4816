"""One pipeline for every list: recommend, export and evaluate make the same lists from the
same list options; the rules hold in what the commands print and write; bad options fail in
one line."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, run, run_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growthrec.cli.evaluate import protocol_from
from growthrec.cli.main import build_parser, main
from growthrec.cli.options import list_spec_from, load_data
from growthrec.core.metrics import ranking_metrics
from growthrec.evaluation.protocols import make_split
from growthrec.evaluation.runs import categories_from, evaluate_lists
from growthrec.pipeline.fitting import fit_model
from growthrec.store.modelfile import save_model

pytestmark = pytest.mark.usefixtures("plain_console")

N = 5


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """data/transactions.csv (120 customers x 40 products) beside data/items.csv (category,
    price, brand, line)."""
    path = tmp_path_factory.mktemp("shop") / "data" / "transactions.csv"
    argv = ["generate", "--users", "120", "--items", "40", "--density", "0.15", "--seed", "4"]
    assert main([*argv, "--output", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def catalogue(shop) -> dict[str, dict[str, str]]:
    return {row["item_id"]: row for row in _rows(shop.parent / "items.csv")}


@pytest.fixture(scope="module")
def bought(shop) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for row in _rows(shop):
        out[row["user_id"]].add(row["item_id"])
    return out


@pytest.fixture(scope="module")
def available(shop, catalogue) -> Path:
    """Two thirds of the catalogue in stock, and one id the model never saw."""
    path = shop.parent / "in_stock.txt"
    ids = sorted(catalogue)[: 2 * len(catalogue) // 3]
    path.write_text("\n".join([*ids, "NOT-A-PRODUCT"]) + "\n")
    return path


@pytest.fixture(scope="module")
def model_file(shop, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "svd.npz"
    assert main(["train", "--data", str(shop), "--factors", "6", "--output", str(path)]) == 0
    return path


def _list_options(available: Path) -> list[str]:
    """Every kind of rule and a composed re-ranker, as a shop would set them."""
    return [
        "--filter",
        "price <= 60",
        "--filter",
        "category not in books",
        "--available",
        str(available),
        "--cap",
        "brand=2",
        "--rerank",
        "mmr",
        "--diversity",
        "0.4",
        "--popularity-penalty",
        "0.1",
        "--coverage",
        "0.3",
        "--candidates",
        "30",
    ]


# the same lists from evaluate, recommend and export


def test_recommend_export_and_evaluate_make_identical_lists(shop, available, tmp_path, capsys):
    options = _list_options(available)
    evaluate = ["evaluate", "--data", shop, "--model", "svd", "--factors", 6, "--k", N]
    evaluate += ["--no-baseline", *options]
    code, out, err = run(capsys, *evaluate, "--json")
    assert code == 0, err
    assert err == (
        f"warning: --available {available}: 1 item ids not in the model's catalogue, ignored: "
        "NOT-A-PRODUCT\n"
    )
    payload = json.loads(out)
    evaluated = payload["results"][0]
    assert payload["list_spec"]["rerank"] == {
        "kind": "mmr",
        "strength": 0.4,
        "popularity_penalty": 0.1,
        "similarity": "categories",
        "window": None,
        "aggregate": "max",
        "coverage": 0.3,
    }

    # The model evaluate fitted, rebuilt from the same arguments, saved for recommend/export.
    args = build_parser().parse_args([str(a) for a in evaluate])
    loaded = load_data(args)
    split = make_split(loaded.events, protocol_from(args), args.seed)
    model = fit_model(split.train, "svd", {"factors": 6}, seed=0, item_attributes=loaded.attributes)
    model_path = save_model(model, tmp_path / "split.npz")
    spec = list_spec_from(args, N, split.train.items, loaded.attributes).spec
    capsys.readouterr()  # the --available warning again
    ours = evaluate_lists(
        model,
        split.test,
        [N],
        spec=spec,
        categories=categories_from(loaded.attributes["category"]),
        keep_lists=True,
    )
    assert ours.metrics[N] == pytest.approx(evaluated["metrics"][str(N)], abs=1e-12)
    assert ours.n_short_lists == evaluated["n_short_lists"]
    users = [str(u) for u in model.train.users.external(ours.users)]
    expected = {
        u: [str(i) for i in model.train.items.external(row[row >= 0])]
        for u, row in zip(users, ours.lists, strict=True)
    }
    assert len(users) == payload["split"]["n_test_users"] > 50

    code, out, err = run(
        capsys,
        "recommend",
        "--model",
        model_path,
        "--n",
        N,
        "--user-id",
        *users,
        *options,
        "--json",
    )
    assert code == 0, err
    served = {r["user"]: [i["item"] for i in r["items"]] for r in json.loads(out)["results"]}
    assert served == expected

    target = tmp_path / "lists.csv"
    code, _, err = run(
        capsys,
        "export",
        "--model",
        model_path,
        "--n",
        N,
        "--output",
        target,
        "--user-id",
        *users,
        *options,
    )
    assert code == 0, err
    exported: dict[str, list[str]] = defaultdict(list)
    for row in _rows(target):
        exported[row["user_id"]].append(row["item_id"])
    assert {u: exported.get(u, []) for u in users} == expected

    # And the served lists, scored, are the evaluated numbers.
    index = model.train.items.index
    width = np.full((len(users), N), -1, dtype=np.int64)
    for n, u in enumerate(users):
        width[n, : len(served[u])] = index(served[u])
    scored = ranking_metrics(width, split.test[ours.users], [N], model.train.n_items)[N]
    for name, value in scored.items():
        assert value == pytest.approx(evaluated["metrics"][str(N)][name], abs=1e-12), name
    # The rules really acted: the re-ranked lists differ from the plain ones.
    plain = evaluate_lists(model, split.test, [N], keep_lists=True)
    assert not np.array_equal(plain.lists, ours.lists)


def test_each_k_is_the_list_at_k(shop, tmp_path):
    """Evaluation reads every K off one list made at the deepest K: the list made at K itself."""
    args = build_parser().parse_args(
        [
            "evaluate",
            "--data",
            str(shop),
            "--rerank",
            "dpp",
            "--strength",
            "0.5",
            "--cap",
            "category=2",
            "--similarity",
            "factors",
        ]
    )
    loaded = load_data(args)
    split = make_split(loaded.events, protocol_from(args), 0)
    model = fit_model(split.train, "svd", {"factors": 6}, seed=0, item_attributes=loaded.attributes)
    spec = list_spec_from(args, 10, split.train.items, loaded.attributes).spec
    deep = evaluate_lists(model, split.test, [3, 10], spec=spec, keep_lists=True)
    shallow = evaluate_lists(model, split.test, [3], spec=spec, keep_lists=True)
    assert np.array_equal(deep.lists[:, :3], shallow.lists)
    assert deep.metrics[3] == shallow.metrics[3]


# rules are never broken in what the commands print and write


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    price=st.sampled_from([15, 30, 60, 200]),
    cap=st.integers(1, 3),
    stock=st.integers(8, 40),
    rerank=st.sampled_from(["none", "mmr", "dpp", "calibration"]),
    strength=st.sampled_from([0.0, 0.3, 1.0]),
    penalty=st.sampled_from([0.0, 0.5]),
    n=st.integers(1, 12),
)
def test_rules_hold_in_recommend_and_export(
    model_file,
    catalogue,
    bought,
    tmp_path,
    capsys,
    price,
    cap,
    stock,
    rerank,
    strength,
    penalty,
    n,
):
    in_stock = sorted(catalogue)[:stock]
    stock_file = tmp_path / "stock.txt"
    stock_file.write_text("\n".join(in_stock) + "\n")
    excluded = sorted(catalogue)[0]
    options = [
        "--filter",
        f"price <= {price}",
        "--cap",
        f"brand={cap}",
        "--available",
        stock_file,
        "--exclude",
        excluded,
        "--popularity-penalty",
        penalty,
    ]
    if rerank != "none":
        options += ["--rerank", rerank, "--strength", strength]
    allowed = {i for i in in_stock if float(catalogue[i]["price"]) <= price and i != excluded}
    if not allowed:
        return
    users = ["1", "2", "3", "50", "77"]
    payload = run_json(
        capsys,
        "recommend",
        "--model",
        model_file,
        "--n",
        n,
        "--user-id",
        *users,
        "--user-id",
        "nobody",
        "--fallback",
        "popular",
        *options,
    )
    target = tmp_path / "out.csv"
    code, _, err = run(
        capsys, "export", "--model", model_file, "--n", n, "--output", target, *options
    )
    assert code == 0, err
    exported: dict[str, list[str]] = defaultdict(list)
    for row in _rows(target):
        exported[row["user_id"]].append(row["item_id"])
    lists = {r["user"]: [i["item"] for i in r["items"]] for r in payload["results"]}
    lists.update({f"export {u}": items for u, items in exported.items()})
    n_short = 0
    for who, items in lists.items():
        user = who.removeprefix("export ")
        assert len(items) == len(set(items)) <= n
        assert set(items) <= allowed, who
        assert not set(items) & bought.get(user, set()), who
        brands = Counter(catalogue[i]["brand"] for i in items)
        assert max(brands.values(), default=0) <= cap, who
        # Short only when the rules leave no more: every allowed, unbought item of a brand
        # not yet full would have been taken.
        if len(items) < n:
            left = allowed - set(items) - bought.get(user, set())
            assert all(brands[catalogue[i]["brand"]] >= cap for i in left), who
            n_short += not who.startswith("export ")
    assert payload["n_short_lists"] == n_short
    for user in users:  # recommend and export agree
        assert exported[user] == lists[user]


# hand-checked lists


@pytest.fixture(scope="module")
def hand_shop(tmp_path_factory) -> Path:
    """Seven products, their buyers 7..1; customer c1 bought p1 only; p2 and p3 are one brand.

    item   price  brand  category  buyers
    p1     5      a      x         7
    p2     50     b      x         6
    p3     8      b      y         5
    p4     9      c      y         4
    p5     70     d      x         3
    p6     3      e      z         2
    p7     4      f      z         1
    """
    folder = tmp_path_factory.mktemp("hand")
    buyers = {"p1": 7, "p2": 6, "p3": 5, "p4": 4, "p5": 3, "p6": 2, "p7": 1}
    lines = ["user_id,item_id"]
    for item, count in buyers.items():
        lines += [f"u{n},{item}" for n in range(count)]
    lines.append("c1,p1")
    (folder / "tx.csv").write_text("\n".join(lines) + "\n")
    (folder / "items.csv").write_text(
        "item_id,price,brand,category\n"
        "p1,5,a,x\np2,50,b,x\np3,8,b,y\np4,9,c,y\np5,70,d,x\np6,3,e,z\np7,4,f,z\n"
    )
    model = folder / "pop.npz"
    argv = ["train", "--data", folder / "tx.csv", "--model", "popularity", "--output", model]
    assert main([str(a) for a in argv]) == 0
    return model


def _items(capsys, model: Path, *argv: object) -> list[str]:
    payload = run_json(capsys, "recommend", "--model", model, *argv)
    return [i["item"] for i in payload["results"][0]["items"]]


def test_hand_checked_rules(hand_shop, capsys):
    user = ["--user-id", "c1", "--n", 4]
    assert _items(capsys, hand_shop, *user) == ["p2", "p3", "p4", "p5"]
    assert _items(capsys, hand_shop, *user, "--filter", "price <= 9") == ["p3", "p4", "p6", "p7"]
    assert _items(capsys, hand_shop, *user, "--cap", "brand=1") == ["p2", "p4", "p5", "p6"]
    assert _items(capsys, hand_shop, *user, "--cap", "category=1") == ["p2", "p3", "p6"]
    assert _items(capsys, hand_shop, *user, "--filter", "category in x,z", "--exclude", "p6") == [
        "p2",
        "p5",
        "p7",
    ]
    # An unknown customer's best sellers follow the same rules (p1 is allowed for them).
    assert _items(
        capsys,
        hand_shop,
        "--user-id",
        "new",
        "--fallback",
        "popular",
        "--n",
        3,
        "--cap",
        "brand=1",
        "--filter",
        "price < 60",
    ) == ["p1", "p2", "p4"]


def test_short_list_is_counted_and_noted(hand_shop, capsys):
    argv = ["recommend", "--model", hand_shop, "--user-id", "c1", "--n", 4, "--cap", "category=1"]
    payload = run_json(capsys, *argv)
    assert payload["n_short_lists"] == 1
    assert payload["list_spec"]["caps"] == {"category": 1}
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert "note: 1 of 1 list is shorter than 4 items" in " ".join(out.split())


def test_available_file_is_the_allow_list(hand_shop, tmp_path, capsys):
    stock = tmp_path / "stock.txt"
    stock.write_text("p5\np4\nghost\n")
    code, out, err = run(
        capsys, "recommend", "--model", hand_shop, "--user-id", "c1", "--available", stock, "--json"
    )
    assert code == 0
    assert err == (
        f"warning: --available {stock}: 1 item ids not in the model's catalogue, ignored: ghost\n"
    )
    payload = json.loads(out)
    assert [i["item"] for i in payload["results"][0]["items"]] == ["p4", "p5"]
    assert payload["list_spec"]["available"] == {"path": str(stock), "n_items": 2, "n_unknown": 1}
    assert payload["n_short_lists"] == 1


# evaluation: the beyond-accuracy metrics and short lists


def test_evaluate_reports_beyond_accuracy_and_short_lists(shop, tmp_path, capsys):
    stock = tmp_path / "two.txt"
    stock.write_text("SKU00001\nSKU00002\n")
    base = ["evaluate", "--data", shop, "--k", 5, "--no-baseline", "--factors", 4]
    plain = run_json(capsys, *base)["results"][0]
    metrics = plain["metrics"]["5"]
    assert set(metrics) >= {"gini", "long_tail", "miscalibration", "novelty", "diversity"}
    assert 0 < metrics["gini"] < 1 and 0 <= metrics["long_tail"] <= 1
    assert metrics["miscalibration"] > 0
    assert plain["n_short_lists"] == 0
    payload = run_json(capsys, *base, "--available", stock)
    ruled = payload["results"][0]
    assert ruled["n_short_lists"] == ruled["n_users"] > 0  # two items cannot fill five places
    assert ruled["metrics"]["5"]["coverage"] <= 2 / 40
    assert payload["list_spec"]["available"]["n_items"] == 2
    code, out, _ = run(capsys, *base, "--available", stock)
    assert code == 0
    assert f"svd: note: {ruled['n_users']} of {ruled['n_users']} lists are shorter" in " ".join(
        out.split()
    )


def test_miscalibration_needs_the_category_column(shop, tmp_path, capsys):
    alone = tmp_path / "transactions.csv"  # no items.csv beside it: no catalogue
    alone.write_bytes(shop.read_bytes())
    bare = run_json(capsys, "evaluate", "--data", alone, "--k", 5, "--no-baseline", "--factors", 4)
    assert bare["diversity_basis"] == "item vectors (svd of train)"
    assert list(bare["results"][0]["metrics"]["5"])[-3:] == ["diversity", "gini", "long_tail"]
    base = ["evaluate", "--data", shop, "--k", 5, "--no-baseline", "--factors", 4]
    payload = run_json(capsys, *base, "--category-col", "brand")
    assert payload["diversity_basis"] == "brand"
    assert "miscalibration" in payload["results"][0]["metrics"]["5"]
    error = assert_error(capsys, 2, *base, "--category-col", "colour")
    assert error == (
        "error: --category-col colour: the catalogue has no such column (columns: category, "
        "price, brand, line)"
    )


def test_compare_takes_the_same_options(shop, capsys):
    payload = run_json(
        capsys,
        "compare",
        "--data",
        shop,
        "--models",
        "svd,popularity",
        "--k",
        5,
        "--param",
        "svd.factors=6",
        "--rerank",
        "calibration",
        "--strength",
        "0.5",
        "--coverage",
        "0.2",
    )
    assert payload["list_spec"]["rerank"]["kind"] == "calibration"
    assert payload["list_spec"]["rerank"]["coverage"] == 0.2
    assert [r["backend"] for r in payload["results"]] == ["svd", "popularity"]


# bad input: one line each


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (["--filter", "colour == red"], 2, "the catalogue has no column 'colour'"),
        (["--filter", "price <= 0"], 1, "filter price <= 0: no item of the catalogue is left"),
        (["--filter", "price <= cheap"], 2, "'cheap' is not a number"),
        (["--rerank", "mmr", "--strength", "1.5"], 2, "--strength 1.5: outside [0, 1]"),
        (["--rerank", "dpp", "--diversity", "-0.1"], 2, "--strength -0.1: outside [0, 1]"),
        (["--rerank", "mmr"], 2, "--rerank mmr: give --strength X in [0, 1]"),
        (["--strength", "0.3"], 2, "--strength 0.3 needs a re-ranker"),
        (["--popularity-penalty", "2"], 2, "--popularity-penalty 2: outside [0, 1]"),
        (["--coverage", "-0.5"], 2, "--coverage -0.5: outside [0, 1] (0: off"),
        (
            ["--rerank", "mmr", "--strength", ".3", "--window", "4"],
            2,
            "--window 4: applies to --rerank dpp only",
        ),
        (
            ["--rerank", "dpp", "--strength", ".3", "--window", "1"],
            2,
            "--window 1: must be at least 2",
        ),
        (["--cap", "brand"], 2, "--cap 'brand': expected COLUMN=N"),
        (["--cap", "shade=2"], 2, "cap on 'shade': the catalogue has no such column"),
        (["--cap", "brand=1", "--cap", "brand=2"], 2, "--cap brand=...: given more than once"),
        (["--exclude", "ghost"], 1, "--exclude: item ghost is not in the model's catalogue"),
        (
            ["--rerank", "calibration", "--strength", ".5", "--category-col", "genre"],
            2,
            "--category-col genre: the catalogue has no such column (columns: category, price, "
            "brand, line)",
        ),
        (
            ["--rerank", "mmr", "--strength", ".5", "--similarity", "features"],
            2,
            "--similarity features needs a model trained with --item-features",
        ),
    ],
)
def test_bad_list_options_fail_in_one_line(model_file, tmp_path, capsys, options, code, message):
    never = tmp_path / "never.csv"
    for command in (["recommend", "--user-id", "1"], ["export", "--output", never]):
        error = assert_error(
            capsys, code, command[0], "--model", model_file, *command[1:], *options
        )
        assert message in error, error
    assert list(tmp_path.iterdir()) == []


def test_re_ranker_on_a_model_without_categories(tmp_path, capsys):
    data = tmp_path / "tx.csv"
    data.write_text("user_id,item_id\n" + "".join(f"u{n % 9},i{n % 7}\n" for n in range(40)))
    model = tmp_path / "m.npz"
    assert main(["train", "--data", str(data), "--factors", "2", "--output", str(model)]) == 0
    error = assert_error(
        capsys,
        2,
        "recommend",
        "--model",
        model,
        "--user-id",
        "u1",
        "--rerank",
        "mmr",
        "--strength",
        "0.3",
    )
    assert error == (
        "error: --rerank mmr: mmr by categories needs item categories, and the catalogue has no "
        "column 'category' (columns: none: the model has no catalogue); name the column with "
        "--category-col, or use --similarity purchases"
    )
    error = assert_error(
        capsys,
        2,
        "recommend",
        "--model",
        model,
        "--user-id",
        "u1",
        "--rerank",
        "calibration",
        "--strength",
        "0.5",
    )
    assert error == (
        "error: --rerank calibration: calibration needs item categories, and the catalogue has "
        "no column 'category' (columns: none: the model has no catalogue); name the column "
        "with --category-col, or train with a catalogue that has one"
    )
    # factors need no catalogue; u1 bought i0, i1, i2, i3 and i5, so two items are left
    payload = run_json(
        capsys,
        "recommend",
        "--model",
        model,
        "--user-id",
        "u1",
        "--rerank",
        "mmr",
        "--strength",
        "0.3",
        "--similarity",
        "factors",
    )
    assert sorted(i["item"] for i in payload["results"][0]["items"]) == ["i4", "i6"]
    assert payload["n_short_lists"] == 1


def test_available_file_of_unknown_ids_is_refused(model_file, tmp_path, capsys):
    stock = tmp_path / "stock.txt"
    stock.write_text("ghost\nspirit\n")
    error = assert_error(
        capsys, 1, "recommend", "--model", model_file, "--user-id", "1", "--available", stock
    )
    assert error == (
        f"error: --available {stock}: none of its 2 item ids is in the model's catalogue "
        "(first: 'ghost')"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    error = assert_error(
        capsys, 1, "recommend", "--model", model_file, "--user-id", "1", "--available", empty
    )
    assert error == f"error: {empty}: the --available file lists no item ids"


def test_rules_that_together_allow_nothing(model_file, catalogue, tmp_path, capsys):
    cheap = sorted(i for i, row in catalogue.items() if float(row["price"]) <= 20)
    dear = sorted(set(catalogue) - set(cheap))
    stock = tmp_path / "dear.txt"
    stock.write_text("\n".join(dear) + "\n")
    error = assert_error(
        capsys,
        1,
        "recommend",
        "--model",
        model_file,
        "--user-id",
        "1",
        "--available",
        stock,
        "--filter",
        "price <= 20",
    )
    assert error == (
        f"error: the rules leave no item of the catalogue's {len(catalogue)}: --filter price "
        "<= 20, --available together allow none"
    )


def test_evaluate_refuses_bad_options_before_fitting(shop, capsys):
    error = assert_error(
        capsys, 2, "evaluate", "--data", shop, "--model", "als", "--filter", "colour == red"
    )
    assert "the catalogue has no column 'colour'" in error
    error = assert_error(
        capsys,
        2,
        "evaluate",
        "--data",
        shop,
        "--sampled",
        10,
        "--rerank",
        "mmr",
        "--strength",
        "0.2",
    )
    assert error == (
        "error: sampled ranking ranks a few drawn items, not served lists: it takes no rules or "
        "re-ranker (drop --sampled, or the list options)"
    )


def _json(capsys, *argv: object) -> dict:
    """--json output of a command that warns about the --available file's unknown id."""
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert err.startswith("warning: --available ") and err.count("\n") == 1
    return json.loads(out)


def test_list_spec_in_json_follows_the_schemas(shop, model_file, available, tmp_path, capsys):
    from test_json_contract import check

    options = [*_list_options(available), "--exclude", "SKU00003"]
    payload = _json(capsys, "recommend", "--model", model_file, "--user-id", "1", *options)
    check("recommend", payload)
    assert payload["list_spec"] == {
        "exclude_purchased": True,
        "available": {"path": str(available), "n_items": 26, "n_unknown": 1},
        "exclude": ["SKU00003"],
        "filters": ["price <= 60", "category not in books"],
        "caps": {"brand": 2},
        "rerank": {
            "kind": "mmr",
            "strength": 0.4,
            "popularity_penalty": 0.1,
            "similarity": "categories",
            "window": None,
            "aggregate": "max",
            "coverage": 0.3,
        },
        "candidates": 30,
        "category_col": "category",
    }
    target = tmp_path / "all.parquet"
    exported = _json(capsys, "export", "--model", model_file, "--output", target, *options)
    check("export", exported)
    assert exported["list_spec"] == payload["list_spec"]
    dpp = [o if o != "mmr" else "dpp" for o in options]
    evaluated = _json(
        capsys, "evaluate", "--data", shop, "--factors", 4, "--k", 3, *dpp, "--window", 3
    )
    check("evaluate", evaluated)
    assert evaluated["list_spec"]["rerank"]["window"] == 3
    assert "exclude_purchased" not in evaluated["list_spec"]


def test_derived_tables_stay_bounded_whatever_filters_requests_send(small_shop):
    """A service takes filters from requests: the cache of filter masks cannot grow forever."""
    from growthrec.pipeline.prepared import MAX_DERIVED, prepare

    model = fit_model(small_shop, "popularity")
    prepared = prepare(model)
    for n in range(MAX_DERIVED + 40):
        prepared.derive(("filters", n), lambda n=n: np.full(3, n))
    assert len(prepared.derived) <= MAX_DERIVED
    last = ("filters", MAX_DERIVED + 39)
    assert prepared.derived[last].tolist() == [MAX_DERIVED + 39] * 3  # the newest is kept
