"""The contract every registered backend must pass, the example third-party plugin included."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from growthrec.backends.registry import available_backends, get_backend, plugin_manager
from growthrec.core.features import Features, fit_features
from growthrec.core.interactions import Interactions
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets, similar_items
from growthrec.store.modelfile import load_model, save_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "growthrec-cooccurrence"
#: Small parameters so the contract runs fast on the 40-item shop.
PARAMS = {
    "svd": {"factors": 8},
    "als": {"factors": 8, "iterations": 3},
    "bpr": {"factors": 8, "iterations": 20},
    "spark": {"factors": 8, "iterations": 3},
    "hybrid": {"factors": 8},
}


def _load_example_plugin() -> object:
    spec = importlib.util.spec_from_file_location(
        "growthrec_cooccurrence", EXAMPLE / "growthrec_cooccurrence.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def example_plugin() -> Iterator[None]:
    """The example plugin registered in-process, so the contract covers a third-party backend."""
    module = _load_example_plugin()
    pm = plugin_manager()
    if "cooccurrence" in available_backends():  # already installed through its entry point
        yield
        return
    pm.register(module, name="growthrec_cooccurrence (in-process)")
    try:
        yield
    finally:
        pm.unregister(module)


def _backend_names() -> list[str]:
    return sorted({*available_backends(), "cooccurrence"})


@pytest.fixture(params=_backend_names())
def backend(request) -> str:
    """A backend name; skipped where an optional module its fit needs is not installed.

    Spark backends run in the tests' shared local session (skipped without Java).
    """
    requires = getattr(get_backend(request.param), "requires", ())
    for module in requires:
        pytest.importorskip(module, reason=f"{request.param} needs {module} (an optional extra)")
    if "pyspark" in requires:
        request.getfixturevalue("spark")
    return request.param


def _item_features(data: Interactions) -> Features:
    """Five groups of items: what a backend that learns from item features is given."""
    groups = np.array([f"group{i % 5}" for i in range(data.n_items)])
    return fit_features((("group", "category"),), {"group": groups}, data.n_items)


def _fit(data: Interactions, backend: str, seed: int = 0):
    needs = callable(getattr(get_backend(backend), "fit_with_features", None))
    features = _item_features(data) if needs else None
    return fit_model(data, backend, PARAMS.get(backend, {}), seed=seed, item_features=features)


def test_fit_returns_plain_numeric_arrays(small_shop, backend) -> None:
    model = _fit(small_shop, backend)
    assert model.arrays, "a backend must return the arrays scoring needs"
    for name, array in model.arrays.items():
        assert isinstance(array, np.ndarray), name
        assert array.dtype.kind in "biuf", name
        assert np.all(np.isfinite(array)), name


def test_scores_have_the_right_shape_dtype_and_no_nan(small_shop, backend) -> None:
    model = _fit(small_shop, backend)
    impl = get_backend(backend)
    users = np.arange(10)
    scores = impl.score(model.arrays, model.params, small_shop.matrix[users], users)
    assert scores.shape == (10, small_shop.n_items)
    assert scores.dtype.kind == "f"
    assert not np.isnan(scores).any()


def test_same_seed_same_model(small_shop, backend) -> None:
    first, second = _fit(small_shop, backend, seed=3), _fit(small_shop, backend, seed=3)
    assert first.arrays.keys() == second.arrays.keys()
    for name in first.arrays:
        np.testing.assert_array_equal(first.arrays[name], second.arrays[name])


def test_known_users_get_k_unbought_items(small_shop, backend) -> None:
    model = _fit(small_shop, backend)
    users = np.arange(small_shop.n_users)
    items, scores = recommend(model, users, 5)
    assert items.shape == scores.shape == (small_shop.n_users, 5)
    assert scores.dtype == np.float32
    bought = small_shop.matrix
    for user in range(small_shop.n_users):
        valid = items[user][items[user] >= 0]
        assert not set(valid) & set(bought[user].indices)
        assert len(valid) == min(5, small_shop.n_items - bought[user].nnz)
        assert np.all(np.diff(scores[user][items[user] >= 0]) <= 0)


def test_excluded_and_disallowed_items_never_appear(small_shop, backend) -> None:
    model = _fit(small_shop, backend)
    ids = small_shop.items.ids
    exclude, allow = ids[:5].tolist(), ids[3:25].tolist()
    items, _ = recommend(model, np.arange(50), 10, exclude_items=exclude, allow_items=allow)
    shown = set(ids[items[items >= 0]].tolist())
    assert not shown & set(exclude)
    assert shown <= set(allow)


def test_new_customer_is_scored_from_a_basket(small_shop, backend) -> None:
    model = _fit(small_shop, backend)
    basket = small_shop.items.ids[[0, 4, 7]].tolist()
    items, scores = recommend_baskets(model, [basket, []], 6)
    assert items.shape == (2, 6)
    assert np.all(items >= 0) and np.all(np.isfinite(scores))
    assert not set(small_shop.items.ids[items[0]].tolist()) & set(basket)


def test_save_load_round_trip_gives_identical_recommendations(
    small_shop, backend, tmp_path
) -> None:
    model = _fit(small_shop, backend)
    loaded = load_model(save_model(model, tmp_path / f"{backend}.npz"))
    assert loaded.backend == backend
    assert dict(loaded.params) == dict(model.params)
    users = np.arange(small_shop.n_users)
    before, after = recommend(model, users, 10), recommend(loaded, users, 10)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_similar_items_leave_the_item_itself_out(small_shop, backend) -> None:
    model = _fit(small_shop, backend)
    items, scores = similar_items(model, np.arange(6), 4)
    assert items.shape == (6, 4)
    for item in range(6):
        assert item not in items[item]
    assert np.all(np.isfinite(scores[items >= 0]))
