"""Backend parameters under their new names, the old ones still accepted; writable scores."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from cli_helpers import assert_error, run_json

import growthrec
from growthrec.backends.contract import resolve_params
from growthrec.backends.registry import BUILTIN_MODULES, available_backends, get_backend
from growthrec.core.features import fit_features
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.store.modelfile import load_model, save_model


class _Renamed:
    name = "renamed"
    params = (growthrec.Param("size", 3, "new name", minimum=1, aliases=("old_size", "n")),)


def test_an_old_name_resolves_to_the_new_one() -> None:
    assert resolve_params(_Renamed(), {}) == {"size": 3}
    assert resolve_params(_Renamed(), {"old_size": "5"}) == {"size": 5}
    assert resolve_params(_Renamed(), {"n": 7}) == {"size": 7}
    # Messages name what the caller typed.
    with pytest.raises(ParameterError, match=r"renamed: parameter old_size=0 must be at least 1"):
        resolve_params(_Renamed(), {"old_size": 0})
    with pytest.raises(
        ParameterError,
        match=r"renamed: 'size' and 'old_size' name one parameter \('old_size' is the old "
        r"name of 'size'\); give one of them",
    ):
        resolve_params(_Renamed(), {"size": 4, "old_size": 4})
    with pytest.raises(ParameterError, match=r"unknown parameter 'sizes'; valid parameters: size$"):
        resolve_params(_Renamed(), {"sizes": 4})


def test_als_confidence_is_the_old_weighting() -> None:
    als = get_backend("als")
    new = resolve_params(als, {"confidence": "bm25"})
    assert resolve_params(als, {"weighting": "bm25"}) == new
    assert new["confidence"] == "bm25" and "weighting" not in new
    with pytest.raises(ParameterError, match=r"als: parameter weighting='tfidf'; choose one of"):
        resolve_params(als, {"weighting": "tfidf"})


def test_als_old_name_trains_the_same_model_and_an_old_file_loads(small_shop, tmp_path) -> None:
    pytest.importorskip("implicit")
    params = {"factors": 4, "iterations": 2, "threads": 1}
    new = fit_model(small_shop, "als", {**params, "confidence": "bm25"}, seed=0)
    old = fit_model(small_shop, "als", {**params, "weighting": "bm25"}, seed=0)
    assert old.params == new.params
    assert set(new.arrays) == {"user_factors", "item_factors", "bm25_idf", "bm25_average_length"}
    for key in new.arrays:
        np.testing.assert_array_equal(old.arrays[key], new.arrays[key])
    # A file written before the rename stores the parameter as "weighting".
    path = save_model(new, tmp_path / "new.npz")
    before = tmp_path / "before-rename.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(before, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "meta.npy":
                meta = json.loads(str(np.load(path, allow_pickle=False)["meta"]))
                meta["params"]["weighting"] = meta["params"].pop("confidence")
                buffer = tmp_path / "meta.npy"
                np.save(buffer, np.array(json.dumps(meta, sort_keys=True)))
                data = buffer.read_bytes()
            target.writestr(info, data)
    stored = json.loads(str(np.load(before, allow_pickle=False)["meta"]))["params"]
    assert stored["weighting"] == "bm25" and "confidence" not in stored
    loaded = load_model(before)
    assert loaded.params == new.params
    users = np.arange(small_shop.n_users)
    np.testing.assert_array_equal(recommend(loaded, users, 5)[0], recommend(new, users, 5)[0])


def test_cli_param_weighting_still_trains_als(tmp_path, capsys) -> None:
    pytest.importorskip("implicit")
    data = tmp_path / "tx.csv"
    run_json(capsys, "generate", "--users", 60, "--items", 30, "--output", data)
    summary = run_json(
        capsys,
        "train",
        "--data",
        data,
        "--model",
        "als",
        "--param",
        "weighting=bm25",
        "--param",
        "iterations=2",
        "--output",
        tmp_path,
    )
    assert summary["model"]["params"]["confidence"] == "bm25"
    assert "weighting" not in summary["model"]["params"]
    message = assert_error(
        capsys,
        2,
        "train",
        "--data",
        data,
        "--model",
        "als",
        "--param",
        "weighting=bm25",
        "--param",
        "confidence=none",
        "--output",
        tmp_path,
    )
    assert "'weighting' and 'confidence' name one parameter" in message


#: Parameters that fit the 200 x 40 test shop quickly.
SMALL = {
    "svd": {"factors": 4},
    "als": {"factors": 4, "iterations": 2},
    "bpr": {"factors": 4},
    "hybrid": {"factors": 4},
}


def _builtin_names() -> list[str]:
    return sorted(n for n, r in available_backends().items() if r.plugin in BUILTIN_MODULES)


@pytest.mark.parametrize("backend", [n for n in _builtin_names() if n != "spark"])
def test_every_builtin_backends_scores_are_writable(small_shop, backend) -> None:
    if backend in ("als", "bpr"):
        pytest.importorskip("implicit")
    params = SMALL.get(backend, {})
    impl = get_backend(backend)
    features = None
    if callable(getattr(impl, "fit_with_features", None)):  # content learns from features
        groups = np.array([f"g{i % 3}" for i in range(small_shop.n_items)])
        features = fit_features((("g", "category"),), {"g": groups}, small_shop.n_items)
    model = fit_model(small_shop, backend, params, seed=0, item_features=features)
    users = np.arange(5)
    learned = {key: value.copy() for key, value in model.arrays.items()}
    scores = impl.score(model.arrays, model.params, small_shop.matrix[users], users)
    assert scores.shape == (5, small_shop.n_items)
    assert scores.flags.writeable
    scores[...] = -1.0  # the caller's own array: the model's arrays do not change
    if hasattr(impl, "similar_items"):
        neighbours = impl.similar_items(model.arrays, model.params, np.array([0, 1]))
        assert neighbours.flags.writeable
        neighbours[...] = -1.0
    for key, value in learned.items():
        np.testing.assert_array_equal(model.arrays[key], value)


def test_popularity_scores_are_each_rows_own(small_shop) -> None:
    model = fit_model(small_shop, "popularity")
    impl = get_backend("popularity")
    users = np.arange(3)
    scores = impl.score(model.arrays, model.params, small_shop.matrix[users], users)
    buyers = np.bincount(small_shop.matrix.indices, minlength=small_shop.n_items)
    np.testing.assert_array_equal(scores, np.tile(buyers.astype(np.float32), (3, 1)))
    scores[0] = 0  # one customer's row changed: the others and the model keep theirs
    np.testing.assert_array_equal(scores[1], buyers)
    np.testing.assert_array_equal(model.arrays["item_popularity"], buyers)


def test_tune_grid_takes_the_old_name_too() -> None:
    """benchmarks/real_data_results.sh tunes ``--grid weighting=none,bm25`` for als."""
    from growthrec.evaluation.tuning import parse_space

    space = parse_space(["weighting=none,bm25"], get_backend("als"))
    assert space.choices == {"confidence": ("none", "bm25")}
