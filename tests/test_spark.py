"""The ``spark`` backend and ``growthrec spark-train``: Spark for real, in local mode.

The Spark tests skip where pyspark or Java is missing; they share one small local session. What
they pin down: Spark reads and cleans a file into exactly growthrec's own id maps, matrix and
counts; the factors line up with the external ids (Spark's own predictions for an external
(customer, item) pair equal growthrec's scores); the model file works without Spark. The
tests at the end need no Spark at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.backends._implicit import library_seed
from growthrec.backends.contract import resolve_params
from growthrec.backends.registry import get_backend
from growthrec.backends.spark import fold_in, spark_confidences
from growthrec.cli.main import main
from growthrec.core.interactions import build_interactions, interactions_from_events
from growthrec.core.model import Model
from growthrec.core.split import split_ratio
from growthrec.core.weighting import apply_weighting
from growthrec.data.cleaning import Cleaning
from growthrec.data.files import write_table
from growthrec.data.loading import Columns, load_events, read_interactions
from growthrec.data.synthetic import generate_shop
from growthrec.errors import DataError, ParameterError
from growthrec.evaluation.runs import evaluate_backend
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets, user_indices
from growthrec.store.modelfile import load_model, save_model

#: Small, so each fit takes a second or two; the same for every fit, so they can be compared.
PARAMS = {"factors": 8, "iterations": 5}
SEED = 3
#: Between them, every cleaning rule drops rows (see ``files``).
CLEANINGS = {
    "csv": Cleaning(min_user_interactions=3, min_item_interactions=5),
    "parquet": Cleaning(min_weight=2, require_positive=("price",)),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The synthetic shop (800 rows) with text customer ids ("cust-10" sorts before "cust-9"),
    a unit price with a few zeros, and 12 dirty rows: 10 exact repeats, a missing customer and
    a return; as CSV and as Parquet."""
    shop = generate_shop(200, 40, 0.1)
    price = np.round(1 + shop.quantity * 1.25, 2)
    price[::37] = 0.0
    columns = {
        "user_id": np.char.add("cust-", shop.user_id.astype(str)),
        "item_id": shop.item_id,
        "quantity": shop.quantity,
        "timestamp": shop.timestamp,
        "price": price,
    }
    dirty = np.r_[np.arange(10), 20, 30]
    columns = {name: np.r_[values, values[dirty]] for name, values in columns.items()}
    columns["user_id"][-2] = ""
    columns["quantity"][-1] = -1
    folder = tmp_path_factory.mktemp("spark-shop")
    return {kind: write_table(columns, folder / f"shop.{kind}") for kind in ("csv", "parquet")}


@pytest.fixture(scope="module")
def trained(spark, files):
    """The Parquet file loaded and fitted on Spark, with Spark's own ALS model kept; the Spark
    seed is the one ``fit_model(..., seed=SEED)`` uses."""
    from growthrec.spark import fit_spark_als, load_pairs, ratings_from_pairs

    loaded = load_pairs(spark, files["parquet"])
    params = resolve_params(get_backend("spark"), PARAMS)
    ratings = ratings_from_pairs(loaded.pairs, "binary")
    train = loaded.train
    seed = library_seed(np.random.default_rng(SEED))
    arrays, als = fit_spark_als(ratings, train.n_users, train.n_items, params, seed)
    return loaded, als, Model("spark", params, arrays, train, "binary", SEED)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_spark_reads_and_cleans_exactly_as_growthrec(spark, files, kind) -> None:
    from growthrec.spark import load_pairs

    cleaning = CLEANINGS[kind]
    events, report = load_events(files[kind], Columns(), cleaning)
    expected = interactions_from_events(events)
    loaded = load_pairs(spark, str(files[kind]), Columns(), cleaning)
    got = loaded.train
    assert got.users == expected.users  # text ids, in growthrec's (code point) order
    assert got.items == expected.items
    assert got.users.kind == "str" and got.users.ids.tolist() == sorted(got.users.ids.tolist())
    assert (got.matrix != expected.matrix).nnz == 0
    np.testing.assert_array_equal(got.matrix.indptr, expected.matrix.indptr)
    np.testing.assert_array_equal(got.timestamps, expected.timestamps)
    assert got.matrix.dtype == np.float32
    assert loaded.report.dropped == report.dropped
    assert list(loaded.report.dropped) == list(report.dropped)  # the same rules, in order
    assert (loaded.report.rows_read, loaded.report.rows_kept) == (
        report.rows_read,
        report.rows_kept,
    )
    assert loaded.report.n_pairs == expected.nnz
    # The Parquet cleaning drops the first row for its zero price before it counts as a repeat.
    assert report.dropped["duplicate rows"] == (10 if kind == "csv" else 9)
    assert report.dropped["missing user or item"] == report.dropped["non-positive weight"] == 1
    assert all(report.dropped.values())  # every rule dropped something
    loaded.pairs.unpersist()


def test_dirty_rows_and_float_ids(spark, tmp_path) -> None:
    """Missing ids, returns, a zero price, duplicates, float ids: the same rows go."""
    from growthrec.spark import load_pairs

    path = tmp_path / "dirty.csv"
    path.write_text(
        "CustomerID,StockCode,Quantity,InvoiceDate,UnitPrice\n"
        "17850.0,85123A,6,2010-12-01 08:26:00,2.55\n"
        "17850.0,85123A,6,2010-12-01 08:26:00,2.55\n"
        "17850.0,71053,6,2010-12-01 08:26:00,3.39\n"
        ",71053,1,2010-12-01 09:00:00,3.39\n"
        "13047.0,,1,2010-12-01 09:00:00,1.00\n"
        "13047.0,84406B,-8,2010-12-02 10:00:00,2.75\n"
        "13047.0,84406B,8,2010-12-02 10:00:00,0\n"
        "9.0,84406B,8,2010-12-03,2.75\n"
        "9.0,71053,2,2010-12-03T11:00:00,3.39\n"
    )
    columns = Columns("CustomerID", "StockCode", "Quantity", "InvoiceDate")
    cleaning = Cleaning(require_positive=("UnitPrice",))
    events, report = load_events(path, columns, cleaning)
    loaded = load_pairs(spark, path, columns, cleaning)
    assert loaded.train.users == events.users and loaded.train.users.ids.tolist() == [9, 17850]
    assert loaded.train.items == events.items
    assert (loaded.train.matrix != interactions_from_events(events).matrix).nnz == 0
    assert (
        loaded.report.dropped
        == report.dropped
        == {
            "missing user or item": 2,
            "non-positive weight": 1,
            "non-positive UnitPrice": 1,
            "duplicate rows": 1,
        }
    )
    loaded.pairs.unpersist()


def test_unreadable_values_and_missing_files_are_one_line_errors(spark, tmp_path) -> None:
    from growthrec.spark import load_pairs

    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id,quantity\na,x,1\nb,y,two\n")
    with pytest.raises(DataError, match=r"column 'quantity': cannot read 'two'"):
        load_pairs(spark, path)
    with pytest.raises(DataError, match=r"no column 'customer'; the file has 'user_id'"):
        load_pairs(spark, path, Columns(user="customer"))
    with pytest.raises(DataError, match=r"PATH_NOT_FOUND|does not exist"):
        load_pairs(spark, tmp_path / "absent.parquet")
    with pytest.raises(ParameterError, match="cannot tell the file type"):
        load_pairs(spark, tmp_path)


def test_factors_line_up_with_external_ids(spark, trained) -> None:
    """Spark's own top-5 for every customer, mapped to external ids inside Spark, scores the same
    as growthrec's factors indexed through the model's id maps."""
    from pyspark.sql import functions as F

    loaded, als, model = trained
    users = loaded.pairs.select("user_id", "user").distinct()
    items = loaded.pairs.select("item_id", "item").distinct()
    spark_top = (
        als.recommendForAllUsers(5)
        .withColumnRenamed("id", "user")
        .select("user", F.explode("recommendations").alias("r"))
        .select("user", F.col("r.item").alias("item"), F.col("r.rating").alias("rating"))
        .join(users, "user")
        .join(items, "item")
        .select("user_id", "item_id", "rating")
        .collect()
    )
    assert len(spark_top) == 5 * model.train.n_users
    user_ids = [row["user_id"] for row in spark_top]
    item_ids = [row["item_id"] for row in spark_top]
    u, i = model.train.users.index(user_ids), model.train.items.index(item_ids)
    assert np.all(u >= 0) and np.all(i >= 0)
    ours = np.einsum("nf,nf->n", model.arrays["user_factors"][u], model.arrays["item_factors"][i])
    np.testing.assert_allclose(ours, [row["rating"] for row in spark_top], rtol=1e-4, atol=1e-5)
    # ... and growthrec's own top-5 (purchases not excluded, as Spark) scores the same.
    _, scores = recommend(model, np.arange(model.train.n_users), 5, exclude_seen=False)
    spark_scores = np.sort(np.asarray([r["rating"] for r in spark_top]).reshape(-1, 5))
    order = np.argsort(u.reshape(-1, 5)[:, 0])
    np.testing.assert_allclose(np.sort(scores, axis=1), spark_scores[order], rtol=1e-4, atol=1e-5)


def test_spark_prediction_for_an_external_pair(spark, trained) -> None:
    loaded, als, model = trained
    row = loaded.pairs.filter("user_id = 'cust-42'").select("user", "item", "item_id").first()
    prediction = als.transform(
        spark.createDataFrame([(row["user"], row["item"])], "user int, item int")
    )
    expected = prediction.first()["prediction"]
    user = user_indices(model, ["cust-42"])
    item = model.train.items.index([row["item_id"]])
    ours = model.arrays["user_factors"][user] @ model.arrays["item_factors"][item].T
    assert ours.item() == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_fold_in_gives_back_a_training_customer(trained) -> None:
    """Spark's last half-step solves the users, so folding in a customer's own row, with the
    ALS-WR penalty, reproduces their factors."""
    _, _, model = trained
    rows = apply_weighting(model.train.matrix, model.weighting)
    folded = fold_in(model.arrays["item_factors"], rows, 1.0, model.params["regularization"])
    np.testing.assert_allclose(folded, model.arrays["user_factors"], atol=2e-5)
    unscaled = fold_in(model.arrays["item_factors"], rows, 1.0, 0.0)
    assert not np.allclose(unscaled, model.arrays["user_factors"], atol=1e-3)


def test_model_file_recommends_excludes_purchases_and_folds_in(trained, tmp_path) -> None:
    _, _, model = trained
    loaded = load_model(save_model(model, tmp_path / "spark.npz"))
    assert loaded.backend == "spark" and loaded.train.users == model.train.users
    users = np.arange(loaded.train.n_users)
    items, scores = recommend(loaded, users, 10)
    bought = loaded.train.matrix
    for user in users:
        assert not set(items[user][items[user] >= 0]) & set(bought[user].indices)
    np.testing.assert_array_equal(items, recommend(model, users, 10)[0])
    # A new customer with a known customer's basket gets that customer's list.
    user = int(np.argmax(np.diff(bought.indptr)))
    basket = loaded.train.items.external(bought[user].indices).tolist()
    assert len(basket) > 3
    new_items, new_scores = recommend_baskets(loaded, [basket, basket[:1]], 10)
    assert not set(new_items[0]) & set(bought[user].indices)
    np.testing.assert_allclose(new_scores[0], scores[user], atol=1e-4)


def test_in_memory_fit_equals_training_from_the_file(files, trained) -> None:
    """``fit_model(..., "spark")`` on growthrec's own load of the file gives the factors
    that training from the file on Spark gives (same seed, same pairs, same ratings)."""
    _, _, from_file = trained
    in_memory = fit_model(read_interactions(files["parquet"]), "spark", PARAMS, seed=SEED)
    assert from_file.train.users == in_memory.train.users
    assert (from_file.train.matrix != in_memory.train.matrix).nnz == 0
    for name in ("user_factors", "item_factors"):
        np.testing.assert_allclose(from_file.arrays[name], in_memory.arrays[name], atol=1e-5)


def test_beats_popularity(spark) -> None:
    shop = generate_shop(200, 40, 0.1, seed=1)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    split = split_ratio(data, test_ratio=0.2, seed=0)
    params = {"factors": 16, "iterations": 10, "regularization": 0.05}
    als = evaluate_backend(split, "spark", params, ks=(10,)).metrics[10]
    popular = evaluate_backend(split, "popularity", ks=(10,)).metrics[10]
    assert als["ndcg"] > popular["ndcg"] + 0.05
    assert als["recall"] > popular["recall"]


def test_spark_train_command(spark, files, tmp_path, capsys) -> None:
    capsys.readouterr()
    code = main(
        [
            "spark-train",
            "--data",
            str(files["csv"]),
            "--require-positive",
            "price",
            "--min-item-interactions",
            "2",
            "--checkpoint-dir",
            str(tmp_path / "checkpoints"),
            "--factors",
            "8",
            "--param",
            "iterations=3",
            "--output",
            str(tmp_path),
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    model = summary["model"]
    assert model["backend"] == "spark" and summary["spark"]["master"].startswith("local")
    assert model["path"] == str(tmp_path / "spark.npz")
    assert model["params"]["factors"] == 8 and model["params"]["iterations"] == 3
    assert summary["data"]["dropped"]["non-positive price"] > 0
    assert "k-core (users >= 1, items >= 2)" in summary["data"]["dropped"]
    assert any((tmp_path / "checkpoints").rglob("*"))  # the k-core rounds were checkpointed there
    assert summary["data"]["rows_read"] == 812 and summary["data"]["n_users"] == 200
    code = main(
        ["recommend", "--model", str(tmp_path / "spark.npz"), "--user-id", "cust-3", "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)["results"][0]
    assert result["user"] == "cust-3" and len(result["items"]) == 10


def test_a_running_session_on_another_master_is_not_silently_used(spark) -> None:
    from growthrec.spark import spark_session

    with pytest.raises(ParameterError, match="already running"), spark_session("local[1]"):
        pass
    with spark_session() as active:
        assert active is spark


# --- Without Spark ---------------------------------------------------------------------------


def _numpy_spark_step(items: np.ndarray, row: np.ndarray, alpha: float, lam: float) -> np.ndarray:
    """One user's factors as Spark's ALS.scala computes them, written out plainly."""
    factors = items.astype(np.float64)
    lhs = factors.T @ factors
    rhs = np.zeros(factors.shape[1])
    n_positive = 0
    for item in np.flatnonzero(row):
        c1 = alpha * abs(row[item])
        if row[item] > 0:
            n_positive += 1
            rhs += (1.0 + c1) * factors[item]
        lhs += c1 * np.outer(factors[item], factors[item])
    lhs += lam * n_positive * np.eye(factors.shape[1])
    return np.linalg.solve(lhs, rhs)


def test_fold_in_is_sparks_normal_equation() -> None:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(30, 6)).astype(np.float32)
    dense = np.zeros((5, 30), dtype=np.float32)
    dense[0, [1, 4, 9]] = 1.0
    dense[1, [2, 3]] = [2.0, 0.5]
    dense[2, [5, 6, 7, 8]] = [1.0, -1.0, 3.0, 1.0]  # a dislike: preference 0, confidence 1 + a
    dense[4, 11] = 1.0  # row 3 stays empty: zero factors
    rows = sp.csr_matrix(dense)
    got = fold_in(items, rows, alpha=2.0, regularization=0.3)
    for n in range(5):
        expected = _numpy_spark_step(items, dense[n], 2.0, 0.3) if dense[n].any() else 0.0
        np.testing.assert_allclose(got[n], expected, rtol=1e-4, atol=1e-5)
    confidences = spark_confidences(rows, 2.0)
    np.testing.assert_allclose(confidences[2].data, [3.0, -3.0, 7.0, 3.0])


def _spark_als_model(n_users: int = 12, n_items: int = 9) -> Model:
    """A ``spark`` model made by hand (no Spark needed to score one)."""
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(n_users), 3)
    items = rng.integers(0, n_items, users.size)
    data = build_interactions(
        np.char.add("c", users.astype(str)), np.char.add("i", items.astype(str))
    )
    params = resolve_params(get_backend("spark"), {"factors": 4})
    arrays = {
        "user_factors": rng.normal(size=(data.n_users, 4)).astype(np.float32),
        "item_factors": rng.normal(size=(data.n_items, 4)).astype(np.float32),
    }
    return Model("spark", params, arrays, data)


def test_scoring_a_model_file_never_imports_pyspark(tmp_path) -> None:
    path = save_model(_spark_als_model(), tmp_path / "spark.npz")
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from growthrec.cli.main import main\n"
        "from growthrec.store.modelfile import load_model\n"
        "from growthrec.pipeline.lists import recommend, recommend_baskets\n"
        f"model = load_model({str(path)!r})\n"
        "recommend(model, np.arange(3), 3)\n"
        "recommend_baskets(model, [['i1', 'i2']], 3)\n"
        f"assert main(['recommend', '--model', {str(path)!r}, '--items', 'i1', '--json']) == 0\n"
        "assert 'pyspark' not in sys.modules, 'pyspark was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def no_pyspark(monkeypatch):
    """pyspark made unimportable, as on a machine without it."""
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyspark", None)


def test_without_pyspark_fitting_says_how_to_install(no_pyspark) -> None:
    data = _spark_als_model().train
    with pytest.raises(ParameterError, match=r'pip install "growthrec\[spark\]"'):
        fit_model(data, "spark")


def test_without_pyspark_spark_train_is_one_line(no_pyspark, tmp_path, capsys) -> None:
    path = write_table({"user_id": np.array(["a"]), "item_id": np.array(["x"])}, tmp_path / "t.csv")
    code = main(["spark-train", "--data", str(path), "--output", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and 'pip install "growthrec[spark]"' in err
    assert not (tmp_path / "spark.npz").exists()


def test_spark_train_usage_errors(tmp_path, capsys) -> None:
    """Checked before Spark starts: exit 2 and one line."""
    path = str(tmp_path / "t.csv")
    for argv, message in (
        (["--conf", "spark.executor.memory"], "expected KEY=VALUE"),
        (["--param", "rank=64"], "unknown parameter 'rank'"),
        (["--data", str(tmp_path / "folder")], "cannot tell the file type"),
    ):
        code = main(["spark-train", "--data", path, *argv, "--output", str(tmp_path)])
        _, err = capsys.readouterr()
        assert code == 2, err
        assert message in err and err.count("\n") == 1
