"""Degenerate but legal data, and absurd weights or parameters: a model or one clear line.

Every backend is trained through the command line on the smallest shops there are (one
customer, one product, two of each); each either writes a model that loads and exports, or
exits with one line that says what would work, and no model file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, run

from growthrec.backends.contract import ArraySpec
from growthrec.backends.registry import plugin_manager
from growthrec.core.interactions import build_interactions
from growthrec.data.synthetic import generate_shop
from growthrec.errors import DataError, ParameterError, PluginError
from growthrec.pipeline.fitting import fit_model
from growthrec.store.modelfile import load_model

HAS_IMPLICIT = importlib.util.find_spec("implicit") is not None
BACKENDS = ["svd", "popularity", "itemknn", "ease"] + (["als", "bpr"] if HAS_IMPLICIT else [])

SHOPS = {
    "1x1": [("1", "A")],
    "1xN": [("1", "A"), ("1", "B"), ("1", "C")],
    "Nx1": [("1", "A"), ("2", "A"), ("3", "A")],
    "2x2 apart": [("1", "A"), ("2", "B")],
    "2x2 overlapping": [("1", "A"), ("1", "B"), ("2", "B")],
}

SVD_TOO_SMALL = "use --model popularity for data this small"
NOTHING_LEARNED = "too little to learn from; popularity works on any data"
#: What each backend does on each shop: None when it trains, else words its one line holds.
REFUSED = {
    ("svd", "1x1"): SVD_TOO_SMALL,
    ("svd", "1xN"): SVD_TOO_SMALL,
    ("svd", "Nx1"): SVD_TOO_SMALL,
    ("svd", "2x2 apart"): "factors=50 must be smaller than the number of items (2) and of users "
    "(2); use at most 1",
    ("svd", "2x2 overlapping"): "use at most 1",
    ("itemknn", "1x1"): NOTHING_LEARNED,
    ("itemknn", "Nx1"): NOTHING_LEARNED,
    ("itemknn", "2x2 apart"): NOTHING_LEARNED,
    ("ease", "1x1"): NOTHING_LEARNED,
    ("ease", "Nx1"): NOTHING_LEARNED,
    ("ease", "2x2 apart"): NOTHING_LEARNED,
}
EXIT = {"svd": 2, "itemknn": 1, "ease": 1}


def _csv(path: Path, rows: list[tuple[str, ...]], header: str = "user_id,item_id") -> Path:
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("shop", list(SHOPS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_shop_trains_or_says_what_works(backend, shop, tmp_path, capsys, plain_console):
    data = _csv(tmp_path / "tiny.csv", SHOPS[shop])
    model = tmp_path / "model.npz"
    argv = ["train", "--data", data, "--model", backend, "--output", model, "--seed", "0"]
    expected = REFUSED.get((backend, shop))
    if expected is None:
        code, _, err = run(capsys, *argv)
        assert code == 0, err
        assert load_model(model).backend == backend
        export = tmp_path / "out.csv"
        code, _, err = run(capsys, "export", "--model", model, "--output", export)
        assert code == 0, err
        assert export.read_text().count("\n") >= 1
    else:
        line = assert_error(capsys, EXIT[backend], *argv)
        assert expected in line
        assert not model.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["tiny.csv"] + (["model.npz", "out.csv"] if expected is None else [])
    )


def test_svd_advice_always_works(tmp_path, capsys, plain_console):
    """ "use at most 1" is only said where factors=1 then trains."""
    data = _csv(tmp_path / "tiny.csv", SHOPS["2x2 overlapping"])
    model = tmp_path / "svd.npz"
    line = assert_error(capsys, 2, "train", "--data", data, "--output", model)
    assert line.endswith("use at most 1")
    code, _, err = run(capsys, "train", "--data", data, "--output", model, "--factors", "1")
    assert code == 0, err
    assert load_model(model).arrays["item_factors"].shape == (2, 1)


# Absurd weights and parameters


@pytest.fixture(scope="module")
def heavy_csv(tmp_path_factory) -> Path:
    """A small shop whose every line has quantity 1e23."""
    shop = generate_shop(80, 15, 0.2, seed=2)
    rows = [(str(u), str(i), "1e23") for u, i in zip(shop.user_id, shop.item_id, strict=True)]
    return _csv(tmp_path_factory.mktemp("heavy") / "heavy.csv", rows, "user_id,item_id,quantity")


@pytest.mark.parametrize("backend", ["ease"] + (["als"] if HAS_IMPLICIT else []))
def test_absurd_weights_are_refused_in_one_line(backend, heavy_csv, tmp_path, capsys):
    model = tmp_path / "model.npz"
    line = assert_error(
        capsys,
        1,
        "train",
        "--data",
        heavy_csv,
        "--weight-col",
        "quantity",
        "--weighting",
        "count",
        "--model",
        backend,
        "--output",
        model,
    )
    assert f"error: {backend}: the fit diverged" in line
    assert "the weights are too large (up to 1e+23 after weighting)" in line
    assert "--weighting log1p" in line
    assert not model.exists()


def test_absurd_weights_that_still_fit_print_no_warnings(heavy_csv, tmp_path, capsys):
    """svd's float overflow warnings are not printed beside the result: its factors are finite."""
    model = tmp_path / "svd.npz"
    code, _, err = run(
        capsys,
        "train",
        "--data",
        heavy_csv,
        "--weight-col",
        "quantity",
        "--weighting",
        "count",
        "--factors",
        "4",
        "--output",
        model,
    )
    assert code == 0, err
    assert "Warning" not in err
    assert np.isfinite(load_model(model).arrays["item_factors"]).all()


@pytest.mark.skipif(not HAS_IMPLICIT, reason="bpr needs the implicit library")
def test_bpr_learning_rate_that_diverges_is_refused(heavy_csv, tmp_path, capsys):
    model = tmp_path / "bpr.npz"
    line = assert_error(
        capsys,
        2,
        "train",
        "--data",
        heavy_csv,
        "--model",
        "bpr",
        "--param",
        "learning_rate=1e6",
        "--output",
        model,
    )
    assert "bpr: the fit diverged (NaN) with learning_rate=1e6" in line
    assert "try values nearer the defaults" in line
    assert not model.exists()


def test_a_fit_that_learns_nothing_is_refused(small_shop):
    with pytest.raises(ParameterError, match=r"ease: the fit learned nothing \(item_weights"):
        fit_model(small_shop, "ease", {"l2": 1e30})


def test_weights_that_overflow_float32_are_refused():
    data = build_interactions([1, 2], ["a", "b"], [3e38, 3e38])
    with np.errstate(over="ignore"):  # the loader's own overflow warning is not tested here
        doubled = build_interactions([1, 1, 2], ["a", "a", "b"], [3e38, 3e38, 1.0])
    assert np.isinf(doubled.matrix.data).any()  # the control: the sum overflowed
    assert fit_model(data, "popularity", weighting="count").arrays["item_popularity"][0] == 3e38
    with pytest.raises(DataError, match="do not fit in float32 after 'count' weighting"):
        fit_model(doubled, "popularity", weighting="count")


class _WrongShape:
    """A plugin whose fit disagrees with its own declared arrays."""

    name = "wrong-shape"
    description = "test"
    params = ()

    def fit(self, matrix, params, rng):
        return {"scores": np.ones(matrix.shape[1] + 1, np.float32)}

    def score(self, arrays, params, rows, users):
        return np.zeros(rows.shape)

    def array_specs(self, params, n_users, n_items):
        return {"scores": ArraySpec((n_items,), learned=True, meaning="items")}


class _Plugin:
    from growthrec import hookimpl

    @hookimpl
    def register_backends(self, register):
        register(_WrongShape())


def test_plugin_fit_breaking_its_declared_shapes_is_named(small_shop):
    pm = plugin_manager()
    plugin = _Plugin()
    pm.register(plugin, name="wrong-shape-plugin")
    try:
        expected = r"array_specs: array scores has shape \(41,\), expected \(40,\) \(items\)"
        with pytest.raises(PluginError, match=expected):
            fit_model(small_shop, "wrong-shape")
    finally:
        pm.unregister(plugin)
