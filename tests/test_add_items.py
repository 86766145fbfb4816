"""add-items: new products join a trained model from their features alone, without retraining."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from cli_helpers import assert_error, run, run_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_json_contract import check

from growthrec.backends.registry import get_backend
from growthrec.core.features import fit_features
from growthrec.core.interactions import build_interactions
from growthrec.data.synthetic import generate_shop
from growthrec.errors import DataError, ParameterError
from growthrec.pipeline.catalog import add_items, added_items
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets
from growthrec.pipeline.scores import scores
from growthrec.store.modelfile import load_model, save_model

pytestmark = pytest.mark.usefixtures("plain_console")

COLUMNS = ("brand", "line", "category", "price")
SPEC = "brand,line,category,price:numeric"


@pytest.fixture(scope="module")
def shop():
    return generate_shop(400, 60, 0.06, seed=3)


def _catalog(shop) -> dict[str, np.ndarray]:
    return {
        "brand": shop.catalog_brand,
        "line": shop.catalog_line,
        "category": shop.catalog_category,
        "price": np.char.mod("%.2f", shop.catalog_price),
    }


def _fit(shop, backend: str, params: dict | None = None):
    """``backend`` fitted on the shop with its brand, line, category and price as features."""
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity)
    catalog = _catalog(shop)
    position = {item: n for n, item in enumerate(shop.catalog_item_id.tolist())}
    order = np.array([position[i] for i in data.items.ids.tolist()])
    columns = {k: v[order] for k, v in catalog.items()}
    features = fit_features(
        [
            ("brand", "category"),
            ("line", "category"),
            ("category", "category"),
            ("price", "numeric"),
        ],
        columns,
        data.n_items,
    )
    return fit_model(data, backend, params, seed=0, item_attributes=columns, item_features=features)


@pytest.fixture(scope="module")
def svd(shop):
    return _fit(shop, "svd", {"factors": 16})


def _new_products(model, item: int, ids: list[str]) -> pa.Table:
    """Products with the features of the model's item ``item`` (a new SKU of its line)."""
    attrs = model.item_attributes
    return pa.table({"item_id": ids, **{c: [str(attrs[c][item])] * len(ids) for c in COLUMNS}})


# the model


def test_new_items_join_ids_matrix_features_attributes_and_factors(svd):
    table = _new_products(svd, 3, ["NEW-1", "NEW-2"])
    result = added_items(svd, table)
    model = result.model
    n = svd.train.n_items
    assert result.added.tolist() == ["NEW-1", "NEW-2"] and result.skipped.size == 0
    assert model.train.items.ids.tolist() == [*svd.train.items.ids.tolist(), "NEW-1", "NEW-2"]
    assert model.train.matrix.shape == (svd.train.n_users, n + 2)
    assert model.train.matrix[:, n:].nnz == 0
    assert (model.train.matrix[:, :n] != svd.train.matrix).nnz == 0
    for column in COLUMNS:
        assert model.item_attributes[column][n:].tolist() == [svd.item_attributes[column][3]] * 2
    np.testing.assert_array_equal(
        model.item_features.matrix[n:].toarray(),
        np.repeat(svd.item_features.matrix[3].toarray(), 2, 0),
    )
    # the ranking's factors and the backend's own rows (baskets fold in through them):
    # mapped from features alone
    mapped = svd.item_features.matrix[3] @ svd.coldstart["item_map"]
    np.testing.assert_allclose(
        model.coldstart["item_factors"][n:], np.repeat(mapped, 2, 0), rtol=1e-6
    )
    np.testing.assert_array_equal(
        model.coldstart["item_factors"][:n], svd.coldstart["item_factors"]
    )
    np.testing.assert_allclose(model.arrays["item_factors"][n:], np.repeat(mapped, 2, 0), rtol=1e-6)
    np.testing.assert_array_equal(model.arrays["item_factors"][:n], svd.arrays["item_factors"])
    assert svd.train.n_items == n  # the model given is left as it was


def test_old_items_keep_every_score(svd):
    model = add_items(svd, _new_products(svd, 5, ["NEW"]))
    n = svd.train.n_items
    users = np.arange(svd.train.n_users)
    np.testing.assert_array_equal(scores(model, users)[:, :n], scores(svd, users))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_new_items_scores_come_only_from_its_features(svd, data):
    """Two new products with the same features score alike for every customer, whatever their
    ids and order; a product with other features scores differently."""
    attrs = svd.item_attributes
    values = {
        c: data.draw(st.sampled_from(sorted(set(attrs[c].tolist()))), label=c) for c in COLUMNS
    }
    other = data.draw(st.integers(0, svd.train.n_items - 1), label="other")
    ids = data.draw(st.permutations(["A", "B", "C"]), label="order")
    table = pa.table(
        {
            "item_id": ids,
            **{c: [values[c] if i != "C" else str(attrs[c][other]) for i in ids] for c in COLUMNS},
        }
    )
    model = add_items(svd, table)
    every = scores(model, np.arange(svd.train.n_users))
    a, b, c = model.train.items.index(["A", "B", "C"])
    np.testing.assert_array_equal(every[:, a], every[:, b])
    encoded_c = model.item_features.matrix[c].toarray()
    if not np.array_equal(encoded_c, model.item_features.matrix[a].toarray()):
        assert not np.array_equal(every[:, a], every[:, c])


def test_round_trip_through_the_model_file(svd, tmp_path):
    model = add_items(svd, _new_products(svd, 7, ["NEW-1", "NEW-2"]))
    loaded = load_model(save_model(model, tmp_path / "m.npz"))
    assert loaded.train.items.ids.tolist() == model.train.items.ids.tolist()
    np.testing.assert_array_equal(loaded.coldstart["item_factors"], model.coldstart["item_factors"])
    np.testing.assert_array_equal(
        loaded.item_features.matrix.toarray(), model.item_features.matrix.toarray()
    )
    assert loaded.item_attributes["line"].tolist() == model.item_attributes["line"].tolist()
    users = np.arange(model.train.n_users)
    for ours, theirs in zip(recommend(model, users, 10), recommend(loaded, users, 10), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # and a second round adds on top of the first
    again = add_items(loaded, _new_products(svd, 8, ["NEW-3"]))
    assert again.train.items.ids.tolist()[-3:] == ["NEW-1", "NEW-2", "NEW-3"]


def _line_buyers(model, item: int) -> np.ndarray:
    line = np.flatnonzero(model.item_attributes["line"] == model.item_attributes["line"][item])
    return np.flatnonzero(np.asarray(model.train.matrix[:, line].sum(axis=1)).ravel() > 0)


@pytest.mark.parametrize(
    ("backend", "params"),
    [
        ("svd", {"factors": 16}),
        ("als", {"factors": 16, "iterations": 5}),
        ("bpr", {"factors": 16}),
        ("content", {}),
    ],
)
def test_customers_whose_history_matches_rank_the_new_product_high(shop, backend, params):
    impl = get_backend(backend)
    for module in getattr(impl, "requires", ()):
        pytest.importorskip(module)
    model = _fit(shop, backend, params)
    popular = int(np.argmax(np.bincount(model.train.matrix.indices, minlength=model.train.n_items)))
    new_model = add_items(model, _new_products(model, popular, ["NEW"]))
    new = new_model.train.n_items - 1
    buyers = _line_buyers(model, popular)
    items, _ = recommend(new_model, np.arange(model.train.n_users), 10)
    reached = (items == new).any(axis=1)
    share_buyers = reached[buyers].mean()
    others = np.setdiff1d(np.arange(model.train.n_users), buyers)
    assert buyers.size >= 10
    assert share_buyers >= 0.6, (backend, share_buyers)
    assert share_buyers > 2 * reached[others].mean(), backend


def test_popularity_adds_new_items_last(shop):
    model = _fit(shop, "popularity")
    new_model = add_items(model, _new_products(model, 0, ["NEW"]))
    assert new_model.arrays["item_popularity"][-1] == 0
    np.testing.assert_array_equal(
        new_model.arrays["item_popularity"][:-1], model.arrays["item_popularity"]
    )


def test_als_bm25_gives_new_items_the_idf_of_no_buyers(shop):
    pytest.importorskip("implicit")
    model = _fit(shop, "als", {"factors": 8, "iterations": 2, "confidence": "bm25"})
    new_model = add_items(model, _new_products(model, 0, ["NEW"]))
    assert new_model.arrays["bm25_idf"][-1] == pytest.approx(np.log(model.train.n_users))
    assert new_model.arrays["item_factors"].shape == (model.train.n_items + 1, 8)


def test_bpr_and_spark_pad_every_column_with_zeros():
    arrays = {
        "user_factors": np.ones((3, 5), np.float32),
        "item_factors": np.ones((4, 5), np.float32),
    }
    new = sp.csr_matrix(np.ones((2, 3), np.float32))
    for name in ("bpr", "spark", "als"):
        out = get_backend(name).add_items(arrays, {}, new)
        assert out["item_factors"].shape == (6, 5) and out["item_factors"].dtype == np.float32
        assert not out["item_factors"][4:].any() and out["item_factors"][:4].all()
        assert out["user_factors"] is arrays["user_factors"]


def test_a_basket_of_the_new_product_is_scored(svd):
    """A new customer whose basket holds only the new product still gets a list (its factors
    in the basket fold-in are zero, as an unsold product's are)."""
    model = add_items(svd, _new_products(svd, 2, ["NEW"]))
    items, _ = recommend_baskets(model, [["NEW", str(svd.train.items.ids[2])]], 5)
    assert (items >= 0).all() and model.train.items.index(["NEW"])[0] not in items


# bad inputs, in Python


def test_without_item_features_is_refused(shop):
    data = build_interactions(shop.user_id, shop.item_id)
    model = fit_model(data, "svd", {"factors": 4})
    with pytest.raises(ParameterError, match=r"trained without item features.*--item-features"):
        add_items(model, pa.table({"item_id": ["X"], "brand": ["b"]}))


@pytest.mark.parametrize("backend", ["ease", "itemknn"])
def test_backends_without_the_capability_say_to_retrain(shop, backend):
    model = _fit(shop, backend)
    with pytest.raises(ParameterError, match=f"the {backend} backend cannot take new products"):
        add_items(model, _new_products(model, 0, ["NEW"]))


def test_known_ids_are_refused_or_skipped(svd):
    known = str(svd.train.items.ids[4])
    table = _new_products(svd, 4, ["NEW", known])
    with pytest.raises(
        DataError, match=f"1 product\\(s\\) already in the model \\(first: {known}\\)"
    ):
        add_items(svd, table)
    result = added_items(svd, table, known="skip")
    assert result.added.tolist() == ["NEW"] and result.skipped.tolist() == [known]
    only_known = added_items(svd, _new_products(svd, 4, [known]), known="skip")
    assert only_known.model is svd and only_known.added.size == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"brand": "", "line": "", "category": "", "price": ""}, "first NEW: no value in brand"),
        (
            {"brand": "Nope", "line": "L9999", "category": "moon", "price": ""},
            "first NEW: no feature value the model knows (brand='Nope'",
        ),
        ({"price": "cheap"}, "product NEW: price 'cheap' is not a number"),
    ],
)
def test_rows_that_cannot_be_scored_are_refused(svd, change, message):
    table = _new_products(svd, 1, ["NEW"])
    for column, value in change.items():
        table = table.set_column(table.column_names.index(column), column, pa.array([value]))
    with pytest.raises(DataError, match=message.replace("(", "\\(")):
        add_items(svd, table, where="new.csv")


def test_missing_columns_are_named(svd):
    table = _new_products(svd, 1, ["NEW"])
    with pytest.raises(DataError, match="no column 'line'; the model's item features are brand"):
        add_items(svd, table.drop_columns(["line"]))
    with pytest.raises(DataError, match="no id column 'sku'"):
        add_items(svd, table, "sku")


# the command line


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from growthrec.cli.main import main

    root = tmp_path_factory.mktemp("add-items")
    data = root / "data" / "transactions.csv"
    generate = ["generate", "--users", "300", "--items", "40", "--seed", "4"]
    assert main([*generate, "--output", str(data)]) == 0
    model = root / "svd.npz"
    train = ["train", "--data", str(data), "--item-features", SPEC, "--factors", "8"]
    assert main([*train, "--output", str(model)]) == 0
    plain = root / "plain.npz"
    assert main(["train", "--data", str(data), "--factors", "8", "--output", str(plain)]) == 0
    return {"data": data, "catalog": data.parent / "items.csv", "model": model, "plain": plain}


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _sibling(files, **change) -> dict[str, str]:
    with files["catalog"].open(newline="") as handle:
        row = next(csv.DictReader(handle))
    return {**row, "item_id": "SKU-NEW", **change}


def test_cli_writes_output_and_leaves_the_model(files, tmp_path, capsys):
    catalog = _write(tmp_path / "new.csv", [_sibling(files)])
    before = files["model"].read_bytes()
    output = tmp_path / "out.npz"
    payload = run_json(
        capsys, "add-items", "--model", files["model"], "--catalog", catalog, "--output", output
    )
    check("add-items", payload)
    assert files["model"].read_bytes() == before
    assert payload["added"] == ["SKU-NEW"] and payload["skipped"] == []
    assert (payload["n_items_before"], payload["n_items"]) == (40, 41)
    assert payload["scored_by"] == "feature map to factors"
    assert payload["model"]["path"] == str(output)
    assert payload["model"]["bytes"] == output.stat().st_size
    assert load_model(output).train.items.ids[-1] == "SKU-NEW"
    code, out, _ = run(capsys, "recommend", "--model", output, "--items", "SKU00001", "--n", 40)
    assert code == 0 and "SKU-NEW" in out


def test_cli_replaces_the_model_by_default(files, tmp_path, capsys):
    model = tmp_path / "m.npz"
    model.write_bytes(files["model"].read_bytes())
    catalog = _write(tmp_path / "new.csv", [_sibling(files)])
    code, out, err = run(capsys, "add-items", "--model", model, "--catalog", catalog)
    assert code == 0, err
    assert "products added" in out and "SKU-NEW" in out and "40 -> 41" in out
    assert load_model(model).train.n_items == 41
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "new.csv"]
    # again: the product is now known
    message = assert_error(capsys, 1, "add-items", "--model", model, "--catalog", catalog)
    assert "1 product(s) already in the model (first: SKU-NEW)" in message
    assert "--skip-known" in message
    code, out, err = run(
        capsys, "add-items", "--model", model, "--catalog", catalog, "--skip-known", "--json"
    )
    assert code == 0 and json.loads(out)["skipped"] == ["SKU-NEW"]
    assert err == "warning: already in the model, left as they are: SKU-NEW\n"


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("plain", 2, "trained without item features, so a new product has nothing"),
        ("no-values", 1, "new.csv: 1 new product(s) cannot be scored, first SKU-NEW: no value in"),
        ("text-price", 1, "new.csv: product SKU-NEW: price 'about ten' is not a number"),
        ("no-column", 1, "new.csv: no column 'line'; the model's item features are"),
        ("no-id", 1, "new.csv: no column 'item_id'; the file has 'sku'"),
        ("empty", 1, "new.csv: lists no product"),
        ("missing-file", 1, "no-such.csv"),
    ],
)
def test_cli_bad_inputs_are_one_line_and_write_nothing(
    files, tmp_path, capsys, case, code, message
):
    model = tmp_path / "m.npz"
    source = files["plain"] if case == "plain" else files["model"]
    model.write_bytes(source.read_bytes())
    before = model.read_bytes()
    rows = {
        "plain": [_sibling(files)],
        "no-values": [_sibling(files, brand="", line="", category="", price="")],
        "text-price": [_sibling(files, price="about ten")],
        "no-column": [{k: v for k, v in _sibling(files).items() if k != "line"}],
        "no-id": [{("sku" if k == "item_id" else k): v for k, v in _sibling(files).items()}],
        "empty": [_sibling(files, item_id="")],
        "missing-file": None,
    }[case]
    catalog = tmp_path / ("no-such.csv" if rows is None else "new.csv")
    if rows is not None:
        _write(catalog, rows)
    error = assert_error(capsys, code, "add-items", "--model", model, "--catalog", catalog)
    assert message in error
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["m.npz", *([] if rows is None else ["new.csv"])]
    )


def test_cli_refuses_ease_in_one_line(files, tmp_path, capsys):
    model = tmp_path / "ease.npz"
    train = ["train", "--data", files["data"], "--item-features", SPEC, "--model", "ease"]
    assert run(capsys, *train, "--output", model)[0] == 0
    catalog = _write(tmp_path / "new.csv", [_sibling(files)])
    error = assert_error(capsys, 2, "add-items", "--model", model, "--catalog", catalog)
    assert "the ease backend cannot take new products without retraining" in error
    assert "retrain with the new products in the catalogue" in error
