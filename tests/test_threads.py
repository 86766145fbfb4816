"""One threads rule: ``threads=0`` is every core the process may use, and a caller's limit holds.

A caller who wraps growthrec in ``threadpool_limits(n)`` (or starts with ``OMP_NUM_THREADS``)
gets at most ``n`` threads from any backend's fit and from the ranking, and BLAS is never
raised above it.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import threadpoolctl
from threadpoolctl import threadpool_info, threadpool_limits

from growthrec.backends.registry import BUILTIN_MODULES, available_backends
from growthrec.core import ranking, threads
from growthrec.core.ranking import top_k_batched
from growthrec.core.threads import available_cores, caller_limit, thread_count
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend

#: Built-in backends that run work in parallel, each with a ``threads`` parameter.
THREADED = {"als", "bpr", "itemknn", "ease", "spark", "rp3beta", "edlae", "ials", "sparse_ease"}
#: Small enough for the test shop, quick to fit.
PARAMS = {
    "svd": {"factors": 4},
    "als": {"factors": 4, "iterations": 2},
    "bpr": {"factors": 4, "iterations": 2},
    "itemknn": {},
    "ease": {},
    "popularity": {},
}


def _blas_threads() -> int:
    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_zero_means_every_core_the_process_may_use(monkeypatch) -> None:
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert available_cores() == 3
    with threadpool_limits(64):  # every pool allows more than the process has
        assert caller_limit() == 64
        assert thread_count(0) == 3
        assert thread_count(5) == 5
        assert thread_count(1) == 1


def test_a_callers_limit_caps_every_count() -> None:
    with threadpool_limits(1):
        assert caller_limit() == 1
        assert thread_count(0) == 1
        assert thread_count(8) == 1
    with threadpool_limits(2, "blas"):  # a limit on one kind of pool is a limit too
        assert thread_count(0) == min(2, available_cores())


def test_every_threaded_builtin_backend_has_the_same_threads_parameter() -> None:
    builtins = {
        name: reg.backend
        for name, reg in available_backends().items()
        if reg.plugin in BUILTIN_MODULES
    }
    with_threads = {}
    for name, backend in builtins.items():
        found = [p for p in backend.params if p.name == "threads"]
        if found:
            with_threads[name] = found[0]
    assert set(with_threads) == THREADED
    for name, param in with_threads.items():
        assert param.type is int and param.minimum == 0, name
        assert "0: every core the process may use" in param.help, name
        assert "within the caller's threadpool limits" in param.help, name
    # bpr alone defaults to one thread: its Hogwild SGD is only reproducible on one.
    assert {n: p.default for n, p in with_threads.items()} == {
        "als": 0,
        "bpr": 1,
        "itemknn": 0,
        "ease": 0,
        "spark": 0,
        "rp3beta": 0,
        "edlae": 0,
        "ials": 0,
        "sparse_ease": 0,
    }


@pytest.fixture
def limits_asked(monkeypatch) -> list[object]:
    """Every ``threadpool_limits(n, ...)`` growthrec enters, by the limit it asks for."""
    asked: list[object] = []
    real_init = threadpoolctl.threadpool_limits.__init__

    def init(self, limits=None, user_api=None):
        asked.append(limits)
        real_init(self, limits=limits, user_api=user_api)

    monkeypatch.setattr(threadpoolctl.threadpool_limits, "__init__", init)
    return asked


@pytest.mark.parametrize("backend", sorted(PARAMS))
def test_no_backend_raises_blas_above_the_callers_limit(
    small_shop, backend, limits_asked, monkeypatch
) -> None:
    if backend in ("als", "bpr"):
        pytest.importorskip("implicit")
    seen = []
    real_count = threads.thread_count

    def counting(n_threads: int) -> int:
        seen.append(real_count(n_threads))
        return seen[-1]

    for module in ("als", "bpr", "itemknn", "ease"):
        monkeypatch.setattr(f"growthrec.backends.{module}.thread_count", counting)
    monkeypatch.setattr(ranking, "thread_count", counting)
    with threadpool_limits(1):
        del limits_asked[:]  # the caller's own limit is not growthrec's
        model = fit_model(small_shop, backend, {**PARAMS[backend]})
        recommend(model, np.arange(small_shop.n_users), 5, n_threads=0)
        assert _blas_threads() == 1
    assert all(n <= 1 for n in limits_asked if isinstance(n, int)), limits_asked
    assert seen and set(seen) == {1}


def test_ease_raises_blas_to_its_threads_only_where_the_caller_allows(
    small_shop, monkeypatch
) -> None:
    from scipy.linalg import lapack

    observed = []
    real_potrf = lapack.spotrf

    def potrf(*args, **kwargs):
        observed.append(_blas_threads())
        return real_potrf(*args, **kwargs)

    monkeypatch.setattr(lapack, "spotrf", potrf)
    with threadpool_limits(1):
        fit_model(small_shop, "ease")
    with threadpool_limits(64):
        fit_model(small_shop, "ease", {"threads": 2})
        fit_model(small_shop, "ease", {"threads": 1})
    assert observed == [1, min(2, 64), 1]


def test_itemknn_threads_reach_its_block_pool(small_shop, monkeypatch) -> None:
    from growthrec.backends import itemknn

    asked = []
    real = itemknn.map_gram_row_blocks

    def spy(matrix, rows_per_block, consume, *, n_threads=1):
        asked.append(n_threads)
        return real(matrix, rows_per_block, consume, n_threads=n_threads)

    monkeypatch.setattr(itemknn, "map_gram_row_blocks", spy)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    with threadpool_limits(64):
        first = fit_model(small_shop, "itemknn", {"threads": 0})
        fit_model(small_shop, "itemknn", {"threads": 2})
    with threadpool_limits(1):
        last = fit_model(small_shop, "itemknn", {"threads": 4})
    assert asked == [6, 2, 1]
    for key in first.arrays:  # the similarities do not depend on the threads
        np.testing.assert_array_equal(first.arrays[key], last.arrays[key])


@pytest.mark.parametrize(
    ("backend", "module", "model_class"),
    [
        ("als", "implicit.cpu.als", "AlternatingLeastSquares"),
        ("bpr", "implicit.cpu.bpr", "BayesianPersonalizedRanking"),
    ],
)
def test_implicit_gets_the_threads_and_blas_stays_at_one(
    small_shop, monkeypatch, backend, module, model_class
) -> None:
    library = pytest.importorskip(module)
    made = []
    real = getattr(library, model_class)

    def spy(*args, **kwargs):
        made.append((kwargs["num_threads"], _blas_threads()))
        return real(*args, **kwargs)

    # The backend's own view of the library gets the spy; implicit's module stays untouched
    # (its classes refer to themselves by their module-level name).
    seen_by_backend = types.SimpleNamespace(**{model_class: spy})
    monkeypatch.setattr(
        f"growthrec.backends.{backend}.import_implicit", lambda name, path: seen_by_backend
    )
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    params = {**PARAMS[backend]}
    with threadpool_limits(64):
        fit_model(small_shop, backend, {**params, "threads": 0})
    with threadpool_limits(1):
        fit_model(small_shop, backend, {**params, "threads": 0})
    fit_model(small_shop, backend, {**params, "threads": 1})
    # Every core the process may use (3 here), then the caller's 1; BLAS at one inside.
    assert made == [(3, 1), (1, 1), (1, 1)]


def test_spark_threads_pick_the_local_session_it_starts(small_shop, monkeypatch) -> None:
    pytest.importorskip("pyspark")
    from growthrec.backends import _spark_als

    given = []

    def fake_fit(matrix, params, seed, *, threads=None):
        given.append(threads)
        n_users, n_items = matrix.shape
        return {
            "user_factors": np.ones((n_users, params["factors"]), np.float32),
            "item_factors": np.ones((n_items, params["factors"]), np.float32),
        }

    monkeypatch.setattr(_spark_als, "fit_matrix", fake_fit)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    with threadpool_limits(64):
        fit_model(small_shop, "spark", {"factors": 2})
        fit_model(small_shop, "spark", {"factors": 2, "threads": 2})
    with threadpool_limits(1):
        fit_model(small_shop, "spark", {"factors": 2})
    assert given == [4, 2, 1]


def test_spark_session_master_follows_threads_unless_one_is_running(monkeypatch) -> None:
    pytest.importorskip("pyspark")
    import contextlib

    from pyspark import SparkContext

    from growthrec.backends import _spark_als

    masters = []

    class Stop(Exception):
        pass

    @contextlib.contextmanager
    def fake_session(master=None, conf=None):
        masters.append(master)
        raise Stop
        yield  # pragma: no cover

    monkeypatch.setattr(_spark_als, "spark_session", fake_session)
    # The matrix is never read: the fake session stops the fit first.
    monkeypatch.setattr(SparkContext, "_active_spark_context", None)  # as if none ran
    for threads_given in (3, None):
        with pytest.raises(Stop):
            _spark_als.fit_matrix(None, {}, 0, threads=threads_given)
    monkeypatch.setattr(SparkContext, "_active_spark_context", object())
    with pytest.raises(Stop):
        _spark_als.fit_matrix(None, {}, 0, threads=3)
    assert masters == ["local[3]", None, None]


def test_ranking_threads_follow_the_same_rule(monkeypatch) -> None:
    pools = []
    real = ranking.ThreadPoolExecutor

    def spy(n_threads):
        pools.append(n_threads)
        return real(n_threads)

    monkeypatch.setattr(ranking, "ThreadPoolExecutor", spy)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    scores = np.arange(40, dtype=np.float32).reshape(4, 10)
    expected = top_k_batched(lambda a, b: scores[a:b], 4, 10, 3, batch_size=1)
    with threadpool_limits(64):
        got = top_k_batched(lambda a, b: scores[a:b], 4, 10, 3, batch_size=1, n_threads=0)
    with threadpool_limits(1):
        top_k_batched(lambda a, b: scores[a:b], 4, 10, 3, batch_size=1, n_threads=0)
    assert pools == [3]  # every core; then one thread, so no pool at all
    np.testing.assert_array_equal(got[0], expected[0])
