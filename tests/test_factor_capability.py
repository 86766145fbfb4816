"""Dot-product models rank through the pruned top-k by a contract method, plugins included.

A backend with ``item_factors`` and ``user_factors`` gets ``top_k_factors`` (looked up by name,
never by class); its lists are the same as ranking every score ``score`` returns.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import growthrec
from growthrec.backends.contract import resolve_params
from growthrec.backends.registry import available_backends, get_backend, plugin_manager
from growthrec.core.model import Model
from growthrec.core.ranking import top_k_batched
from growthrec.core.weighting import apply_weighting
from growthrec.errors import PluginError
from growthrec.pipeline import lists
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_baskets

N_FACTORS = 4


class _ExactFactorBackend:
    """A plugin factor model whose every score is exact in float32 (small integers times
    powers of two), so both ways of ranking see the very same numbers, ties included."""

    name = "exact-factors"
    description = "integer factors with skewed item norms (a test double)"
    params = (growthrec.Param("spread", 8, "powers of two the item norms span", minimum=1),)

    def fit(self, matrix, params, rng):
        n_users, n_items = matrix.shape
        scale = 2.0 ** rng.integers(-params["spread"], 1, (n_items, 1))
        items = rng.integers(-3, 4, (n_items, N_FACTORS)) * scale
        return {
            "user_factors": rng.integers(-3, 4, (n_users, N_FACTORS)).astype(np.float32),
            "item_factors": items.astype(np.float32),
        }

    def item_factors(self, arrays, params):
        return arrays["item_factors"]

    def user_factors(self, arrays, params, rows, users):
        # New customers: the number of items in the basket in every factor (exact, and it
        # depends on the basket, so fold-in is visible in the lists).
        out = np.empty((users.size, N_FACTORS), dtype=np.float32)
        known = users >= 0
        out[known] = arrays["user_factors"][users[known]]
        sizes = np.diff(rows.indptr)[~known].astype(np.float32)
        out[~known] = sizes[:, None] * np.array([1, -1, 2, 0], dtype=np.float32)
        return out

    def score(self, arrays, params, rows, users):
        return self.user_factors(arrays, params, rows, users) @ arrays["item_factors"].T


class _Plugin:
    def __init__(self, backend: object) -> None:
        self.backend = backend

    @growthrec.hookimpl
    def register_backends(self, register):
        register(self.backend)


@pytest.fixture
def plugin_backend():
    plugin = _Plugin(_ExactFactorBackend())
    plugin_manager().register(plugin, name="test-exact-factors")
    try:
        yield
    finally:
        plugin_manager().unregister(plugin)


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of ``top_k_factors`` and ``top_k_batched`` made by the ranking."""
    calls = {"factors": 0, "batched": 0}
    real_factors, real_batched = lists.top_k_factors, lists.top_k_batched

    def factors(*args, **kwargs):
        calls["factors"] += 1
        return real_factors(*args, **kwargs)

    def batched(*args, **kwargs):
        calls["batched"] += 1
        return real_batched(*args, **kwargs)

    monkeypatch.setattr(lists, "top_k_factors", factors)
    monkeypatch.setattr(lists, "top_k_batched", batched)
    return calls


def _lists_by_score(model, rows, users, k, *, exclude_rows, exclude_items=None, allow_items=None):
    """Top-k from every score ``score`` returns: the reference the pruned ranking must match."""
    impl = get_backend(model.backend)
    weighted = apply_weighting(rows, model.weighting)
    scores = impl.score(model.arrays, model.params, weighted, users)
    return top_k_batched(
        lambda start, stop: scores[start:stop],
        rows.shape[0],
        model.train.n_items,
        k,
        exclude_rows=exclude_rows,
        exclude_items=exclude_items,
        allow_items=allow_items,
    )


def test_plugin_factor_model_gets_the_fast_path_and_the_score_lists(
    small_shop, plugin_backend, spy
) -> None:
    model = fit_model(small_shop, "exact-factors", seed=3)
    users = np.arange(small_shop.n_users)
    item_ids = small_shop.items.external(np.arange(small_shop.n_items)).tolist()
    cases = [
        {},
        {"exclude_items": [0, 5, 7]},
        {"allow_items": list(range(0, small_shop.n_items, 3))},
        {"exclude_items": [3], "allow_items": list(range(10))},
    ]
    for case in cases:
        options = {key: [item_ids[i] for i in value] for key, value in case.items()}
        for exclude_seen in (True, False):
            for n_threads in (1, 2):
                before = dict(spy)
                got = recommend(
                    model, users, 12, exclude_seen=exclude_seen, n_threads=n_threads, **options
                )
                assert spy["factors"] == before["factors"] + 1
                assert spy["batched"] == before["batched"]
                expected = _lists_by_score(
                    model,
                    small_shop.matrix,
                    users,
                    12,
                    exclude_rows=small_shop.matrix if exclude_seen else None,
                    **{key: np.array(value) for key, value in case.items()},
                )
                np.testing.assert_array_equal(got[0], expected[0])
                np.testing.assert_array_equal(got[1], expected[1])


def test_plugin_factor_model_folds_baskets_in_through_user_factors(
    small_shop, plugin_backend, spy
) -> None:
    model = fit_model(small_shop, "exact-factors", seed=3)
    ids = small_shop.items.external(np.arange(small_shop.n_items)).tolist()
    baskets = [[ids[0]], [ids[1], ids[2]], ids[3:9], [], ids[::5]]
    for exclude_seen in (True, False):
        got = recommend_baskets(model, baskets, 6, exclude_seen=exclude_seen)
        rows = sp.csr_matrix(
            (
                np.ones(sum(map(len, baskets)), np.float32),
                [ids.index(i) for b in baskets for i in b],
                np.cumsum([0, *map(len, baskets)]),
            ),
            shape=(len(baskets), small_shop.n_items),
        )
        expected = _lists_by_score(
            model,
            rows,
            np.full(len(baskets), -1),
            6,
            exclude_rows=rows if exclude_seen else None,
        )
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    assert spy["factors"] == 2 and spy["batched"] == 0
    # Fold-in is used: a basket's lists differ from an empty basket's.
    assert not np.array_equal(got[0][1], got[0][3])


def test_a_backend_with_half_the_capability_is_refused_naming_the_plugin() -> None:
    class HalfFactors(_ExactFactorBackend):
        name = "half-factors"
        user_factors = None  # item_factors alone cannot rank anything

    plugin = _Plugin(HalfFactors())
    plugin_manager().register(plugin, name="half-plugin")
    try:
        with pytest.raises(
            PluginError, match=r"half-plugin.*'half-factors' has item_factors but not user_factors"
        ):
            available_backends()
    finally:
        plugin_manager().unregister(plugin)


def test_factors_of_the_wrong_shape_are_one_line_naming_the_backend(
    small_shop, plugin_backend, monkeypatch
) -> None:
    model = fit_model(small_shop, "exact-factors", seed=0)
    impl = get_backend("exact-factors")
    monkeypatch.setattr(impl, "item_factors", lambda arrays, params: arrays["item_factors"][1:])
    with pytest.raises(
        PluginError, match=r"'exact-factors': item_factors returned shape \(39, 4\)"
    ):
        recommend(model, np.arange(3), 5)
    monkeypatch.undo()
    monkeypatch.setattr(
        impl, "user_factors", lambda arrays, params, rows, users: np.zeros((users.size, 3))
    )
    with pytest.raises(
        PluginError, match=r"user_factors returned shape \(3, 3\), expected \(3, 4\)"
    ):
        recommend(model, np.arange(3), 5)


def _spark_model(small_shop) -> Model:
    """A ``spark`` model from made-up factors: scoring needs no Spark, nor does this test."""
    rng = np.random.default_rng(0)
    params = resolve_params(get_backend("spark"), {"factors": 6})
    arrays = {
        "user_factors": rng.standard_normal((small_shop.n_users, 6)).astype(np.float32),
        "item_factors": (
            rng.standard_normal((small_shop.n_items, 6))
            * np.geomspace(2, 0.01, small_shop.n_items)[:, None]
        ).astype(np.float32),
    }
    return Model("spark", params, arrays, small_shop)


BUILTIN_FACTOR_MODELS = [
    ("svd", {"factors": 8}),
    ("svd", {"factors": 8, "normalize": True}),
    ("als", {"factors": 8, "iterations": 3, "threads": 1}),
    ("als", {"factors": 8, "iterations": 3, "threads": 1, "confidence": "bm25"}),
    ("bpr", {"factors": 8, "iterations": 20}),
    ("spark", None),
]


@pytest.mark.parametrize(("backend", "params"), BUILTIN_FACTOR_MODELS)
def test_builtin_factor_models_rank_by_factors_with_the_score_lists(
    small_shop, spy, backend, params
) -> None:
    if backend in ("als", "bpr"):
        pytest.importorskip("implicit")
    model = _spark_model(small_shop) if params is None else fit_model(small_shop, backend, params)
    users = np.arange(small_shop.n_users)
    excluded = np.array([3, 11])
    got = recommend(model, users, 7, exclude_items=small_shop.items.external(excluded).tolist())
    assert spy == {"factors": 1, "batched": 0}
    expected = _lists_by_score(
        model, small_shop.matrix, users, 7, exclude_rows=small_shop.matrix, exclude_items=excluded
    )
    # Ties go to the lower item index both ways; the two float32 products may differ in the
    # last bit, which on this data reorders nothing.
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-5, atol=1e-6)
    ids = small_shop.items.external(np.arange(small_shop.n_items)).tolist()
    baskets = [ids[:3], ids[5:6], ids[10:20]]
    got = recommend_baskets(model, baskets, 5)
    assert spy == {"factors": 2, "batched": 0}
    rows = sp.csr_matrix(
        (np.ones(14, np.float32), [0, 1, 2, 5, *range(10, 20)], [0, 3, 4, 14]),
        shape=(3, small_shop.n_items),
    )
    expected = _lists_by_score(model, rows, np.full(3, -1), 5, exclude_rows=rows)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["popularity", "itemknn", "ease"])
def test_models_without_factors_rank_their_scores(small_shop, spy, backend) -> None:
    model = fit_model(small_shop, backend)
    recommend(model, np.arange(5), 3)
    assert spy == {"factors": 0, "batched": 1}
