"""What one customer's recommendation costs in-process, beside the batched every-customer path.

A service answers one customer at a time: the figure that matters is the fixed cost of one
``recommend(model, [user], 10)`` call, not the throughput of ranking everybody. Models of
MovieLens-20M's catalogue (26,744 items, 64 factors) fitted on 20,000 synthetic customers
(``generate_shop``, seed 0, 20M-shape density: ~115 purchases each; the number of customers
does not enter a single list's cost): ``svd`` (skewed item norms), the same with
``normalize`` (unit item rows: flat norms, the worst case for the norm bound, like BPR's),
``als`` (3 iterations, stored user factors) and ``svd`` with cold-start item factors. The
score backends (``ease``, ``itemknn``: every item scored) at MovieLens-1M's shape (3,706 items),
where EASE's items x items matrix still fits. Beside them: the top 10 of every customer, per
customer, and what preparing a model costs once (the sort and copy every call used to pay).

Single requests run with BLAS on one thread, as a serving worker runs (its parallelism is its
requests and its worker processes): on a busy machine a product split over two BLAS threads
waits for the second one, which can cost more than the product itself.

    python -m pytest benchmarks/bench_one_request.py            # ~1 min
    python benchmarks/bench_one_request.py                      # the same figures as a table

The script form uses only ``recommend``, so it also measures an older growthrec (put that
tree first on ``PYTHONPATH``): the before-and-after of the README.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import time
from collections.abc import Callable

import attrs
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from growthrec.core.interactions import Interactions, build_interactions
from growthrec.core.model import Model
from growthrec.data.synthetic import generate_shop
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend

#: (customers, items, density): MovieLens-20M's catalogue and density, fewer customers.
LARGE = (20_000, 26_744, 20_000_000 / (138_493 * 26_744))
#: MovieLens-1M's shape, for the backends that score every item.
SMALL = (6_040, 3_706, 1_000_000 / (6_040 * 3_706))
FACTORS = 64
#: Customers asked in turn by the single-request benchmarks (each call a different one).
ASKED = 500
TARGET_MS = 1.0

pytestmark = pytest.mark.filterwarnings("ignore:OpenBLAS is configured:RuntimeWarning")


@functools.cache
def shop(shape: tuple[int, int, float]) -> Interactions:
    data = generate_shop(*shape, seed=0)
    return build_interactions(data.user_id, data.item_id, data.quantity, data.timestamp)


@functools.cache
def model(name: str) -> Model:
    """The benchmark's models by name, fitted once per process."""
    if name == "svd":
        return fit_model(shop(LARGE), "svd", {"factors": FACTORS}, seed=0)
    if name == "svd-normalize":  # the same factors as unit rows: every item norm is 1
        base = model("svd")
        return attrs.evolve(base, params={**base.params, "normalize": True})
    if name == "svd-coldstart":  # ranks by cold-start item factors, as a model with features
        base = model("svd")
        rng = np.random.default_rng(0)
        learned = base.arrays["item_factors"]
        noise = rng.standard_normal(learned.shape).astype(np.float32) * learned.std()
        return attrs.evolve(base, coldstart={"item_factors": learned + 0.1 * noise})
    if name == "als":
        params = {"factors": FACTORS, "iterations": 3}
        return fit_model(shop(LARGE), "als", params, seed=0)
    if name in ("ease", "itemknn"):
        return fit_model(shop(SMALL), name, seed=0)
    raise ValueError(name)


FACTOR_MODELS = ["svd", "svd-normalize", "als", "svd-coldstart"]
SCORE_MODELS = ["ease", "itemknn"]


def one_customer(fitted: Model) -> Callable[[], object]:
    """A call ranking the next customer of a fixed sample, as a stream of requests would."""
    rng = np.random.default_rng(1)
    users = itertools.cycle(rng.choice(fitted.train.n_users, ASKED, replace=False).tolist())
    return lambda: recommend(fitted, np.array([next(users)]), 10)


def _needs(name: str) -> None:
    if name == "als":
        pytest.importorskip("implicit")


@pytest.mark.parametrize("name", FACTOR_MODELS + SCORE_MODELS)
def test_one_customer_top10(benchmark, name) -> None:
    _needs(name)
    fitted = model(name)
    call = one_customer(fitted)
    call()  # the first call prepares the model (a service does it when it loads the model)
    with threadpool_limits(1, "blas"):
        benchmark.pedantic(call, rounds=ASKED, iterations=1, warmup_rounds=20)
    benchmark.extra_info["items"] = fitted.train.n_items
    benchmark.extra_info["load_average"] = round(os.getloadavg()[0], 2)
    if name in FACTOR_MODELS:
        assert benchmark.stats.stats.median * 1e3 < TARGET_MS * 3, "far from the 1 ms target"


@pytest.mark.parametrize("name", ["svd", "svd-normalize"])
def test_every_customer_top10(benchmark, name) -> None:
    """The batched path on the same model: the whole run, and per customer (extra_info)."""
    fitted = model(name)
    users = np.arange(fitted.train.n_users)
    benchmark.pedantic(recommend, (fitted, users, 10), {"n_threads": 0}, rounds=3)
    per_customer = benchmark.stats.stats.median / users.size
    benchmark.extra_info["ms_per_customer"] = round(per_customer * 1e3, 4)


@pytest.mark.parametrize("name", ["svd", "als"])
def test_prepare_model(benchmark, name) -> None:
    """Building the prepared state (uncached): what every call paid before it was kept."""
    _needs(name)
    from growthrec.pipeline.prepared import _build

    benchmark.pedantic(_build, (model(name),), rounds=20, warmup_rounds=1)


def _percentiles(call: Callable[[], object], rounds: int = ASKED) -> dict[str, float]:
    call()
    spent = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        spent.append(time.perf_counter() - start)
    ms = np.array(spent) * 1e3
    return {"p50_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=FACTOR_MODELS + SCORE_MODELS)
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads for single requests (0: as is)"
    )
    args = parser.parse_args()
    rows = []
    for name in args.models:
        fitted = model(name)
        with threadpool_limits(args.blas_threads or None, "blas"):
            single = _percentiles(one_customer(fitted))
        row = {"model": name, "items": fitted.train.n_items, **single}
        if name in ("svd", "svd-normalize"):
            users = np.arange(fitted.train.n_users)
            start = time.perf_counter()
            recommend(fitted, users, 10, n_threads=0)
            row["every_customer_s"] = time.perf_counter() - start
            row["every_customer_ms_each"] = row["every_customer_s"] * 1e3 / users.size
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'model':<14} {'items':>6} {'one p50 ms':>10} {'one p99 ms':>10} {'all s':>7}")
    for row in rows:
        every = f"{row['every_customer_s']:7.2f}" if "every_customer_s" in row else ""
        print(
            f"{row['model']:<14} {row['items']:>6} {row['p50_ms']:10.3f} {row['p99_ms']:10.3f} "
            f"{every}"
        )


if __name__ == "__main__":
    main()
