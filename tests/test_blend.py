"""The ``blend`` backend: two models' per-customer z-scores mixed by a weight, and tuning it."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile

import numpy as np
import pytest
from cli_helpers import assert_error, run_json
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.backends.blend import parse_pairs
from growthrec.cli.main import main
from growthrec.core.interactions import build_interactions
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ModelFileError, ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.scores import basket_scores, scores
from growthrec.store.modelfile import load_model, save_model

#: Two deterministic models that rank differently: a regression and a random walk.
PARTS = {
    "first": "ease",
    "first_params": "l2=20",
    "second": "rp3beta",
    "second_params": "alpha=0.8,beta=0.3,neighbors=15",
}


@pytest.fixture(scope="module")
def data():
    shop = generate_shop(150, 35, 0.12, seed=4)
    return build_interactions(shop.user_id, shop.item_id, shop.quantity)


def _z(rows: np.ndarray) -> np.ndarray:
    """Reference z-scores in float64: each row minus its mean, over its (population) spread."""
    rows = np.asarray(rows, dtype=np.float64)
    return (rows - rows.mean(axis=1, keepdims=True)) / rows.std(axis=1, keepdims=True)


def test_scores_are_the_weighted_sum_of_each_models_z_scores(data) -> None:
    blended = fit_model(data, "blend", {**PARTS, "weight": 0.3})
    first = fit_model(data, "ease", {"l2": 20})
    second = fit_model(data, "rp3beta", {"alpha": 0.8, "beta": 0.3, "neighbors": 15})
    users = np.arange(data.n_users)
    expected = 0.3 * _z(scores(first, users)) + 0.7 * _z(scores(second, users))
    np.testing.assert_allclose(scores(blended, users), expected, rtol=1e-4, atol=1e-5)
    # a customer not seen in training folds in through both models the same way
    basket = [data.items.ids[:4].tolist()]
    expected = 0.3 * _z(basket_scores(first, basket)) + 0.7 * _z(basket_scores(second, basket))
    np.testing.assert_allclose(basket_scores(blended, basket), expected, rtol=1e-4, atol=1e-5)


def test_the_parts_keep_their_own_parameters_and_arrays(data) -> None:
    model = fit_model(data, "blend", {**PARTS, "weight": 0.5})
    assert model.params["first_params"] == "l2=20"
    similarity = {f"second_similarity_{k}" for k in ("indptr", "indices", "data")}
    assert set(model.arrays) == {"first_item_weights"} | similarity
    alone = fit_model(data, "ease", {"l2": 20})
    np.testing.assert_array_equal(model.arrays["first_item_weights"], alone.arrays["item_weights"])


@settings(max_examples=15, deadline=None)
@given(weight=st.sampled_from([0.0, 1.0]), seed=st.integers(0, 2**16))
def test_weight_one_or_zero_ranks_as_that_model_alone(weight: float, seed: int) -> None:
    shop = generate_shop(60, 20, 0.15, seed=seed)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity)
    blended = fit_model(data, "blend", {**PARTS, "weight": weight})
    alone = (
        fit_model(data, "ease", {"l2": 20})
        if weight == 1
        else fit_model(data, "rp3beta", {"alpha": 0.8, "beta": 0.3, "neighbors": 15})
    )
    users = np.arange(data.n_users)
    mine, theirs = (
        scores(blended, users, exclude_seen=True),
        scores(alone, users, exclude_seen=True),
    )
    # z-scores are an increasing map of each row: the same order, up to float ties
    for row in range(data.n_users):
        keep = np.isfinite(theirs[row])
        order = np.argsort(-mine[row][keep], kind="stable")
        assert np.all(np.diff(theirs[row][keep][order]) <= 1e-5 * np.abs(theirs[row]).max())


def test_a_half_and_half_blend_ranks_unlike_either_part(data) -> None:
    """Not a relabelling of one model: the mix changes lists (its accuracy: benchmarks)."""
    users = np.arange(data.n_users)
    lists = {}
    for weight in (0.0, 0.5, 1.0):
        model = fit_model(data, "blend", {**PARTS, "weight": weight})
        lists[weight] = recommend(model, users, 5)[0]
    assert not np.array_equal(lists[0.5], lists[0.0])
    assert not np.array_equal(lists[0.5], lists[1.0])


def test_model_file_round_trip_and_damage(data, tmp_path) -> None:
    model = fit_model(data, "blend", {**PARTS, "weight": 0.6})
    path = tmp_path / "blend.npz"
    save_model(model, path)
    loaded = load_model(path)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(scores(loaded, users), scores(model, users))
    # a part's array of the wrong shape is refused by that part's own declaration
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename.endswith("first_item_weights.npy"):
                buffer = io.BytesIO()
                np.save(buffer, np.zeros((3, 3), dtype=np.float32))
                payload = buffer.getvalue()
            dst.writestr(info, payload)
    with pytest.raises(ModelFileError, match="first_item_weights has shape"):
        load_model(bad)


def test_a_file_naming_a_part_that_is_not_installed_is_refused(data, tmp_path) -> None:
    model = fit_model(data, "blend", {**PARTS, "weight": 0.6})
    path = tmp_path / "blend.npz"
    save_model(model, path)
    with np.load(path) as arrays:
        members = dict(arrays)
    meta = json.loads(str(members["meta"]))
    meta["params"]["first"] = "not_a_backend"
    members["meta"] = np.array(json.dumps(meta))
    crafted = tmp_path / "crafted.npz"
    np.savez(crafted, **members)
    with pytest.raises(ModelFileError, match="first=not_a_backend: unknown backend"):
        load_model(crafted)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"first": "blend"}, "blend: first=blend; blend two other models"),
        ({"second": "nope"}, "blend: second=nope: unknown backend 'nope'"),
        ({"first_params": "l2"}, "blend: first=ials: first_params='l2': 'l2' is not"),
        ({"first_params": "l3=2"}, "blend: first=ials: ials: unknown parameter 'l3'"),
        ({"second_params": "l2=-1"}, "blend: second=sparse_ease: sparse_ease: parameter l2=-1"),
        ({"weight": 1.5}, "blend: parameter weight=1.5 must be at most 1"),
    ],
)
def test_bad_parameters_are_one_line_naming_them(data, given, message) -> None:
    with pytest.raises(ParameterError) as caught:
        fit_model(data, "blend", given)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_parse_pairs() -> None:
    assert parse_pairs("", "x") == {}
    assert parse_pairs(" a=1, b = x ,", "x") == {"a": "1", "b": "x"}
    with pytest.raises(ParameterError, match="gives 'a' twice"):
        parse_pairs("a=1,a=2", "first_params")


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "transactions.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["generate", "--users", "120", "--items", "30", "--density", "0.1", "--seed", "0"]
        assert main([*argv, "--output", str(path)]) == 0
    return path


def test_tune_searches_the_weight_with_the_parts_fixed(capsys, shop_file, tmp_path) -> None:
    fixed = [f"--param={k}={v}" for k, v in PARTS.items()]
    payload = run_json(
        capsys, "tune", "--data", shop_file, "--model", "blend", *fixed,
        "--grid", "weight=0.25,0.75", "--k", 5, "--at", 5, "--output", tmp_path,
    )  # fmt: skip
    tried = [t["params"] for t in payload["trials"]]
    assert sorted(p["weight"] for p in tried) == [0.25, 0.75]
    assert all(p["first_params"] == "l2=20" and p["second"] == "rp3beta" for p in tried)
    written = json.loads((tmp_path / "blend.params.json").read_text())
    assert written["params"] == payload["best"]["params"]
    # the tuned file trains the same model again
    model_path = tmp_path / "model.npz"
    with contextlib.redirect_stdout(io.StringIO()):
        tuned = ["--params-file", str(tmp_path / "blend.params.json")]
        args = ["train", "--data", str(shop_file), "--model", "blend", *tuned]
        code = main([*args, "--output", str(model_path)])
    assert code == 0
    assert load_model(model_path).params == written["params"]


def test_cli_names_a_bad_part_in_one_line(capsys, shop_file, tmp_path) -> None:
    err = assert_error(
        capsys, 2, "train", "--data", shop_file, "--model", "blend", "--param", "second=nope",
        "--output", tmp_path / "m.npz",
    )  # fmt: skip
    assert err.startswith("error: blend: second=nope: unknown backend 'nope'; available: als,")
    assert not (tmp_path / "m.npz").exists()


def test_tune_refuses_a_parameter_both_fixed_and_searched(capsys, shop_file, tmp_path) -> None:
    err = assert_error(
        capsys, 2, "tune", "--data", shop_file, "--model", "blend", "--param", "weight=0.5",
        "--grid", "weight=0.25,0.75", "--output", tmp_path,
    )  # fmt: skip
    assert err == "error: --param weight: also given to --grid; give it one way"
