"""One customer's list from a prepared model: exact, prepared once, no thread-pool scan, and
safe to ask from several threads at once."""

from __future__ import annotations

import gc
import threading
import weakref
from unittest import mock

import attrs
import numpy as np
import pytest
import scipy.sparse as sp
import threadpoolctl
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core import ranking
from growthrec.core.ranking import items_by_norm, top_k_batched, top_k_factors
from growthrec.core.weighting import apply_weighting
from growthrec.errors import ParameterError
from growthrec.pipeline import prepared as prepared_module
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import popular_items, recommend
from growthrec.pipeline.prepared import prepare


def test_items_by_norm_by_hand() -> None:
    # Norms 1, 3, 3, 0, 2: visited 1 and 2 (tied, lower index first), then 4, 0, 3.
    factors = np.array([[1, 0], [0, 3], [3, 0], [0, 0], [0, -2]], dtype=np.float64)
    index = items_by_norm(factors)
    np.testing.assert_array_equal(index.ids, [1, 2, 4, 0, 3])
    np.testing.assert_array_equal(index.norms, [3, 3, 2, 1, 0])
    np.testing.assert_array_equal(index.position, [3, 0, 1, 4, 2])
    np.testing.assert_array_equal(index.factors, factors[[1, 2, 4, 0, 3]])
    assert index.factors.dtype == np.float32 and index.factors.flags.c_contiguous
    assert (index.n_items, index.n_factors) == (5, 2)
    for array in (index.factors, index.ids, index.norms, index.position):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 7  # shared by every request thread: nobody may write to it
    with pytest.raises(ParameterError, match=r"item_factors has shape \(5,\)"):
        items_by_norm(np.ones(5))


# ---------------------------------------------------------------------------------------------
# Exactness: a prepared order gives the lists of ranking every score, for one user or a few.
# ---------------------------------------------------------------------------------------------
@st.composite
def few_user_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_rows = draw(st.integers(1, 7))  # one by one up to ONE_BY_ONE_ROWS, then a batch
    n_items = draw(st.integers(1, 400))
    n_factors = draw(st.integers(1, 6))
    # Small integers times a power of two per item: every score is exact in float32 whatever
    # the order of the sums (a matrix-vector product or a matrix product), with many ties and
    # item norms spread over orders of magnitude, so the bound stops users early.
    users = rng.integers(-4, 5, (n_rows, n_factors)).astype(np.float32)
    spread = draw(st.sampled_from([0, 4, 8]))
    scale = 2.0 ** rng.integers(-spread, 1, (n_items, 1))
    items = (rng.integers(-4, 5, (n_items, n_factors)) * scale).astype(np.float32)
    users[rng.random(n_rows) < 0.1] = 0.0
    bought = rng.random((n_rows, n_items)) < draw(st.sampled_from([0.0, 0.05, 0.5]))
    exclude_rows = sp.csr_matrix(bought.astype(np.float32)) if draw(st.booleans()) else None
    exclude_items = None
    if draw(st.booleans()):
        exclude_items = rng.choice(n_items, rng.integers(0, min(n_items, 8) + 1), replace=False)
    allow_items = None
    if draw(st.booleans()):  # a few (only these rows are visited) or most (the rest skipped)
        share = draw(st.sampled_from([0.02, 0.3, 0.7, 1.0]))
        allow_items = rng.choice(n_items, max(1, int(share * n_items)), replace=False)
    k = draw(st.integers(1, 12))
    return users, items, exclude_rows, exclude_items, allow_items, k


@pytest.mark.parametrize("wide_k", [None, 1], ids=["merged", "collected"])
@settings(max_examples=300, deadline=None)
@given(few_user_cases(), st.sampled_from([None, 1, 3]))
def test_prepared_top_k_equals_ranking_every_score(wide_k, case, batch_size) -> None:
    users, items, exclude_rows, exclude_items, allow_items, k = case
    n_rows, n_items = users.shape[0], items.shape[0]
    options = {
        "exclude_rows": exclude_rows,
        "exclude_items": exclude_items,
        "allow_items": allow_items,
        "batch_size": batch_size,
    }
    scores = users @ items.T
    expected = top_k_batched(lambda a, b: scores[a:b], n_rows, n_items, k, **options)
    index = items_by_norm(items)
    # Tiny blocks, so that these small catalogues take several blocks in both ways of ranking.
    with (
        mock.patch.object(ranking, "FIRST_BLOCK_ITEMS", 8),
        mock.patch.object(ranking, "BLOCK_CELLS", 64),
        mock.patch.object(ranking, "WIDE_K", wide_k or ranking.WIDE_K),
    ):
        prepared = top_k_factors(lambda a, b: users[a:b], n_rows, index, k, **options)
        raw = top_k_factors(lambda a, b: users[a:b], n_rows, items, k, **options)
        # Every user alone (as a request asks) gets the row of the batch.
        alone = [
            top_k_factors(
                lambda a, b, r=r: users[r : r + 1],
                1,
                index,
                k,
                **{**options, "exclude_rows": None if exclude_rows is None else exclude_rows[r]},
            )
            for r in range(n_rows)
        ]
    for got in (
        prepared,
        raw,
        (np.vstack([a[0] for a in alone]), np.vstack([a[1] for a in alone])),
    ):
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        assert got[0].dtype == np.int64 and got[1].dtype == np.float32


def test_one_user_with_nan_scores_is_refused() -> None:
    items = np.array([[1.0], [np.nan], [2.0]], dtype=np.float32)
    with pytest.raises(ParameterError, match="NaN"):
        top_k_factors(lambda a, b: np.ones((1, 1), np.float32), 1, items_by_norm(items), 2)


def test_one_user_stops_early_on_skewed_norms(monkeypatch) -> None:
    # Norms falling steeply: after its first block, one user's bound rules the rest out.
    rng = np.random.default_rng(0)
    items = (rng.standard_normal((20_000, 8)) * np.geomspace(10, 1e-3, 20_000)[:, None]).astype(
        np.float32
    )[rng.permutation(20_000)]
    user = rng.standard_normal((1, 8)).astype(np.float32)
    index = items_by_norm(items)
    rows = []
    real_matmul = np.matmul

    def counting(a, b, out=None):
        rows.append(a.shape[0])
        return real_matmul(a, b, out=out)

    monkeypatch.setattr("growthrec.core.ranking.np.matmul", counting)
    got = top_k_factors(lambda a, b: user, 1, index, 10)
    monkeypatch.undo()
    expected = ranking.top_k(user @ items.T, 10)
    np.testing.assert_array_equal(got[0], expected[0])
    assert sum(rows) <= ranking.FIRST_BLOCK_ITEMS * 3  # a few blocks, not 20,000 items


# ---------------------------------------------------------------------------------------------
# The pipeline: a model is prepared once; one customer's list is the batch's row.
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def exact_svd(small_shop):
    """An svd model whose item factors are small integers times powers of two: its scores
    (sums of purchases' factors, times factors) are exact however they are summed."""
    model = fit_model(small_shop, "svd", {"factors": 4}, seed=0)
    rng = np.random.default_rng(5)
    scale = 2.0 ** rng.integers(-6, 1, (small_shop.n_items, 1))
    factors = (rng.integers(-3, 4, (small_shop.n_items, 4)) * scale).astype(np.float32)
    return attrs.evolve(model, arrays={"item_factors": factors})


def _item_ids(model, indices) -> list[object]:
    return model.train.items.external(np.asarray(indices)).tolist()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"exclude_seen": False},
        {"exclude_items": [0, 3, 17]},
        {"allow_items": list(range(0, 40, 7))},
        {"allow_items": list(range(30)), "exclude_items": [2]},
    ],
)
def test_one_customer_gets_the_row_of_every_customer(exact_svd, options) -> None:
    model = exact_svd
    options = {
        key: _item_ids(model, value) if key.endswith("items") else value
        for key, value in options.items()
    }
    everyone = np.arange(model.train.n_users)
    items, scores = recommend(model, everyone, 10, **options)
    assert (items[:, 0] >= 0).all()
    for user in range(0, model.train.n_users, 7):
        one_items, one_scores = recommend(model, np.array([user]), 10, **options)
        np.testing.assert_array_equal(one_items[0], items[user])
        np.testing.assert_array_equal(one_scores[0], scores[user])
    few = everyone[[5, 90, 3]]  # ranked one by one
    np.testing.assert_array_equal(recommend(model, few, 10, **options)[0], items[few])
    some = everyone[10:40]  # a small batch
    np.testing.assert_array_equal(recommend(model, some, 10, **options)[0], items[some])


def test_cold_start_item_factors_are_what_a_customer_is_ranked_by(exact_svd) -> None:
    rng = np.random.default_rng(9)
    cold = (rng.integers(-3, 4, exact_svd.arrays["item_factors"].shape)).astype(np.float32)
    model = attrs.evolve(exact_svd, coldstart={"item_factors": cold})
    assert prepare(model) is not prepare(exact_svd)
    rows = apply_weighting(model.train.matrix[[4]], model.weighting).toarray()
    user = rows.astype(np.float32) @ exact_svd.arrays["item_factors"]
    scores = user @ cold.T  # (the svd normalizes its user rows: that changes no order)
    scores[rows > 0] = -np.inf
    expected = ranking.top_k(scores, 10)
    got = recommend(model, np.array([4]), 10)
    np.testing.assert_array_equal(got[0], expected[0])


@pytest.mark.parametrize("backend", ["ease", "itemknn", "popularity"])
def test_score_backends_one_customer_gets_the_row_of_every_customer(small_shop, backend) -> None:
    model = fit_model(small_shop, backend, seed=0)
    items, scores = recommend(model, np.arange(small_shop.n_users), 5)
    for user in (0, 11, 123):
        got = recommend(model, np.array([user]), 5)
        np.testing.assert_array_equal(got[0][0], items[user])
        np.testing.assert_allclose(got[1][0], scores[user], rtol=1e-6)


def test_a_model_is_prepared_once_and_forgotten_with_it(small_shop, monkeypatch) -> None:
    builds = []
    real = prepared_module._build

    def counting(model):
        builds.append(model)
        return real(model)

    monkeypatch.setattr(prepared_module, "_build", counting)
    model = fit_model(small_shop, "svd", {"factors": 4}, seed=0)
    for user in range(20):
        recommend(model, np.array([user]), 5)
    popular_items(model, 5)
    state = prepare(model)
    assert len(builds) == 1 and prepare(model) is state
    twin = attrs.evolve(model)  # an equal model, another object: its own state
    assert prepare(twin) is not state and len(builds) == 2
    np.testing.assert_array_equal(state.items_by_norm.factors, prepare(twin).items_by_norm.factors)
    del builds[:]
    gone = weakref.ref(state)
    key = id(model)
    del model, state
    gc.collect()
    assert gone() is None  # the prepared copy of the factors went with its model
    assert key not in prepared_module._PREPARED


def test_best_sellers_are_the_buyers_counts(small_shop) -> None:
    model = fit_model(small_shop, "popularity")
    buyers = np.diff(small_shop.matrix.tocsc().indptr)  # customers who bought each item
    items, counts = popular_items(model, 5)
    expected = ranking.top_k(buyers[None, :].astype(np.float32), 5)
    np.testing.assert_array_equal(items[0], expected[0][0])
    np.testing.assert_array_equal(counts[0], expected[1][0])


# ---------------------------------------------------------------------------------------------
# Thread pools: a request scans no libraries and sets no process-wide limit.
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def scans(monkeypatch) -> dict[str, int]:
    counts = {"scans": 0, "limits": 0}
    real_controller = threadpoolctl.ThreadpoolController.__init__
    real_limits = threadpoolctl.threadpool_limits.__init__

    def controller(self, *args, **kwargs):
        counts["scans"] += 1
        real_controller(self, *args, **kwargs)

    def limits(self, *args, **kwargs):
        counts["limits"] += 1
        real_limits(self, *args, **kwargs)

    monkeypatch.setattr(threadpoolctl.ThreadpoolController, "__init__", controller)
    monkeypatch.setattr(threadpoolctl.threadpool_limits, "__init__", limits)
    return counts


def test_a_request_scans_no_libraries(small_shop, scans) -> None:
    model = fit_model(small_shop, "svd", {"factors": 4}, seed=0)
    for n_threads in (1, 0):
        recommend(model, np.array([0]), 5, n_threads=n_threads)  # warm: prepared, scanned
    scans.update(scans=0, limits=0)
    for user in range(30):
        for n_threads in (1, 0, 2):
            recommend(model, np.array([user]), 5, n_threads=n_threads)
            recommend(model, np.arange(user, user + 40), 5, n_threads=n_threads)
    assert scans == {"scans": 0, "limits": 0}
    # Many users still rank with BLAS at one thread: one limit (and its own scan) per call.
    recommend(model, np.arange(small_shop.n_users), 5)
    assert scans["limits"] == 1


def test_requests_from_many_threads_get_the_sequential_lists(small_shop) -> None:
    model = fit_model(small_shop, "svd", {"factors": 8}, seed=0)  # not prepared yet
    twin = fit_model(small_shop, "svd", {"factors": 8}, seed=0)
    expected = [recommend(twin, np.array([u]), 10)[0][0] for u in range(small_shop.n_users)]
    barrier = threading.Barrier(8)
    states, failures = [], []

    def serve(first: int) -> None:
        barrier.wait()  # all threads ask for the unprepared model at once
        try:
            states.append(prepare(model))
            for user in range(first, small_shop.n_users, 8):
                got = recommend(model, np.array([user]), 10)[0][0]
                if not np.array_equal(got, expected[user]):
                    failures.append((user, got, expected[user]))
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=serve, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(states) == 8 and all(state is states[0] for state in states)
