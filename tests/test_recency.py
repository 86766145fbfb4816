"""Recency weights: a customer's latest purchases count more when ranking them."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import scipy.sparse as sp
from cli_helpers import assert_error, run_json
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.backends.registry import get_backend
from growthrec.cli.main import main
from growthrec.core.interactions import build_interactions
from growthrec.core.split import split_leave_one_out
from growthrec.core.weighting import apply_weighting, recency_decay
from growthrec.data.synthetic import generate_shop
from growthrec.errors import DataError, ModelFileError, ParameterError
from growthrec.evaluation.runs import evaluate_backend
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.scores import scores
from growthrec.store.modelfile import load_model, save_model


def test_decay_by_hand() -> None:
    matrix = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0]], np.float32))
    times = np.array([10.0, 30.0, 30.0, 5.0, 1.0])
    # row 0: items 0 (t=10), 1 and 3 (t=30, one basket: k=0), so item 0 has k=1
    np.testing.assert_allclose(recency_decay(matrix, times, 1.0), [0.5, 1, 1, 1, 0.5])
    np.testing.assert_allclose(recency_decay(matrix, times, 2.0), [2**-0.5, 1, 1, 1, 2**-0.5])
    np.testing.assert_array_equal(recency_decay(matrix, times, 0.0), np.ones(5))


def _reference(matrix: sp.csr_matrix, times: np.ndarray, half_life: float) -> np.ndarray:
    """Plain Python: each pair's count of distinct later times in its row, then 0.5 ** (k/h)."""
    out = []
    for row in range(matrix.shape[0]):
        mine = times[matrix.indptr[row] : matrix.indptr[row + 1]].tolist()
        out += [0.5 ** (len({t for t in mine if t > own}) / half_life) for own in mine]
    return np.array(out)


@settings(max_examples=60, deadline=None)
@given(
    dense=st.lists(st.lists(st.integers(0, 4), min_size=6, max_size=6), min_size=1, max_size=7),
    half_life=st.floats(0.25, 50),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1.0, 0.37, 1e10]),  # whole seconds; fractions; spans past 2^32
)
def test_decay_matches_a_plain_python_reference(dense, half_life, seed, scale) -> None:
    matrix = sp.csr_matrix(np.array(dense, dtype=np.float32))
    times = np.random.default_rng(seed).integers(0, 4, matrix.nnz) * scale + 1.7e9
    got = recency_decay(matrix, times, half_life)
    np.testing.assert_allclose(got, _reference(matrix, times, half_life), rtol=1e-6)
    assert got.dtype == np.float32
    assert np.all((got > 0) & (got <= 1))


@pytest.fixture(scope="module")
def data():
    shop = generate_shop(120, 30, 0.15, seed=5)
    return build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)


@pytest.mark.parametrize(("backend", "params"), [("ease", {"l2": 10}), ("svd", {"factors": 6})])
def test_lists_rank_by_the_decayed_rows(data, backend, params) -> None:
    """Every backend scores a customer from their decayed row, folded in (users -1)."""
    model = fit_model(data, backend, params, seed=0, recency=2.0)
    users = np.arange(data.n_users)
    decay = recency_decay(data.matrix, data.timestamps, 2.0)
    rows = apply_weighting(data.matrix, "binary")
    rows = sp.csr_matrix((rows.data * decay, rows.indices, rows.indptr), shape=rows.shape)
    expected = get_backend(backend).score(
        model.arrays, model.params, rows, np.full(data.n_users, -1)
    )
    np.testing.assert_allclose(scores(model, users), expected, rtol=1e-5, atol=1e-6)
    expected[data.matrix.nonzero()] = -np.inf
    items, _ = recommend(model, users, 5)
    # a random half of the customers goes through the row-by-row batches
    some = np.sort(np.random.default_rng(0).choice(data.n_users, 60, replace=False))
    assert np.array_equal(recommend(model, some, 5)[0], items[some])
    picked = np.take_along_axis(expected, items, axis=1)
    assert np.all(picked.min(axis=1) >= np.sort(expected, axis=1)[:, -5] - 1e-5)


def test_recency_changes_lists_and_zero_is_off(data) -> None:
    users = np.arange(data.n_users)
    plain = recommend(fit_model(data, "ease", {"l2": 10}), users, 5)[0]
    off = recommend(fit_model(data, "ease", {"l2": 10}, recency=0.0), users, 5)[0]
    recent = recommend(fit_model(data, "ease", {"l2": 10}, recency=1.0), users, 5)[0]
    assert np.array_equal(plain, off)
    assert not np.array_equal(plain, recent)


def test_evaluated_lists_are_the_recommended_lists(data) -> None:
    """One pipeline: evaluation ranks with the same recency weights as ``recommend``."""
    split = split_leave_one_out(data, by="latest", seed=0)
    evaluation = evaluate_backend(split, "ease", {"l2": 10}, ks=[5], recency=2.0, keep_lists=True)
    assert evaluation.recency == 2.0
    model = fit_model(split.train, "ease", {"l2": 10}, seed=0, recency=2.0)
    kept = evaluation.lists
    assert np.array_equal(kept.lists, recommend(model, kept.users, 5)[0])
    plain = evaluate_backend(split, "ease", {"l2": 10}, ks=[5], keep_lists=True)
    assert not np.array_equal(plain.lists.lists, kept.lists)


def test_model_file_keeps_recency_and_refuses_bad_values(data, tmp_path) -> None:
    model = fit_model(data, "ease", {"l2": 10}, recency=3.0)
    path = save_model(model, tmp_path / "m.npz")
    loaded = load_model(path)
    assert loaded.recency == 3.0
    users = np.arange(data.n_users)
    assert np.array_equal(recommend(loaded, users, 5)[0], recommend(model, users, 5)[0])
    with np.load(path) as stored:
        members = dict(stored)
    for value, message in ((-1, "recency is -1"), ("x", "recency is 'x'")):
        meta = json.loads(str(members["meta"]))
        meta["recency"] = value
        np.savez(tmp_path / "bad.npz", **{**members, "meta": np.array(json.dumps(meta))})
        with pytest.raises(ModelFileError, match=message):
            load_model(tmp_path / "bad.npz")
    without = {k: v for k, v in members.items() if k != "train_timestamps"}
    np.savez(tmp_path / "untimed.npz", **without)
    with pytest.raises(ModelFileError, match="no purchase times"):
        load_model(tmp_path / "untimed.npz")


def test_bad_recency_is_one_line(data) -> None:
    with pytest.raises(ParameterError, match=r"recency=-2 must be 0 \(off\)"):
        fit_model(data, "ease", recency=-2)
    untimed = build_interactions(np.array([0, 0, 1]), np.array([0, 1, 1]), np.ones(3))
    with pytest.raises(DataError, match="recency=2 needs purchase times"):
        fit_model(untimed, "popularity", recency=2)


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "transactions.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["generate", "--users", "150", "--items", "30", "--density", "0.12", "--seed", "2"]
        assert main([*argv, "--output", str(path)]) == 0
    return path


def test_cli_tune_train_and_compare_carry_recency(capsys, shop_file, tmp_path) -> None:
    data = ["--data", shop_file, "--protocol", "leave-one-out", "--by", "latest"]
    tuned = run_json(
        capsys, "tune", *data, "--model", "ease", "--grid", "l2=5,50", "--recency", 2,
        "--k", 5, "--at", 5, "--output", tmp_path,
    )  # fmt: skip
    assert tuned["recency"] == 2.0
    written = json.loads((tmp_path / "ease.params.json").read_text())
    assert written["recency"] == 2.0
    trained = run_json(
        capsys, "train", "--data", shop_file, "--params-file", tmp_path / "ease.params.json",
        "--output", tmp_path / "m.npz",
    )  # fmt: skip
    assert trained["model"]["recency"] == 2.0
    assert load_model(tmp_path / "m.npz").recency == 2.0
    compared = run_json(
        capsys, "compare", *data, "--models", "ease,popularity", "--tuned", tmp_path, "--k", 5
    )
    by_backend = {r["backend"]: r for r in compared["results"]}
    assert by_backend["ease"]["recency"] == 2.0
    assert by_backend["popularity"]["recency"] == 0.0
    # the tuned validation figure is what evaluate gives on that split with the same setting
    evaluated = run_json(
        capsys, "evaluate", *data, "--model", "ease", "--param", f"l2={written['params']['l2']}",
        "--recency", 2, "--k", 5, "--no-baseline",
    )  # fmt: skip
    assert evaluated["results"][0]["recency"] == 2.0
    assert evaluated["results"][0]["metrics"]["5"]["ndcg"] == pytest.approx(
        by_backend["ease"]["metrics"]["5"]["ndcg"]
    )


def test_cli_refuses_recency_without_times_in_one_line(capsys, tmp_path) -> None:
    path = tmp_path / "untimed.csv"
    path.write_text("customer,product\n1,a\n1,b\n2,a\n2,c\n3,b\n3,c\n")
    err = assert_error(
        capsys, 1, "train", "--data", path, "--user-col", "customer", "--item-col", "product",
        "--model", "popularity", "--recency", 3, "--output", tmp_path / "m.npz",
    )  # fmt: skip
    assert "recency=3 needs purchase times" in err
    assert not (tmp_path / "m.npz").exists()


def test_tradeoff_ranks_with_recency_as_evaluate_does(capsys, shop_file, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    data = ["--data", shop_file, "--protocol", "leave-one-out", "--by", "latest"]
    swept = run_json(
        capsys, "tradeoff", *data, "--model", "ease", "--param", "l2=5", "--recency", 2,
        "--strengths", "0.5", "--rerankers", "popularity", "--output", tmp_path / "report",
    )  # fmt: skip
    evaluated = run_json(
        capsys, "evaluate", *data, "--model", "ease", "--param", "l2=5", "--recency", 2,
        "--k", 10, "--no-baseline",
    )  # fmt: skip
    assert swept["test"]["plain"]["ndcg"] == pytest.approx(
        evaluated["results"][0]["metrics"]["10"]["ndcg"]
    )


def test_the_service_ranks_with_the_models_recency(tmp_path) -> None:
    """A real ``growthrec serve`` of a recency model answers ``recommend``'s lists."""
    pytest.importorskip("uvicorn")
    from serving_helpers import Server

    shop = generate_shop(200, 40, 0.1, seed=1)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    model = fit_model(data, "ease", {"l2": 10}, seed=0, recency=1.5)
    path = save_model(model, tmp_path / "recent.npz")
    users = np.arange(0, 200, 23)
    expected, _ = recommend(model, users, 6)
    plain, _ = recommend(fit_model(data, "ease", {"l2": 10}, seed=0), users, 6)
    assert not np.array_equal(expected, plain)
    with Server(path, log=tmp_path / "serve.log") as server:
        server.wait_ready()
        assert server.client.get("/v1/model").json()["recency"] == 1.5
        for user, row in zip(users, expected, strict=True):
            body = {"customer": str(data.users.ids[user]), "n": 6}
            answer = server.client.post("/v1/recommendations", json=body).json()
            assert [r["item"] for r in answer["items"]] == [str(i) for i in data.items.ids[row]]
