"""How growthrec scales, up to MovieLens-20M's shape, and how it compares with the libraries.

Three sizes of synthetic shop (``generate_shop``, seed 0): the prototype (1,000 x 100, 5k
rows), MovieLens-1M's shape (6,040 x 3,706, 1M rows) and MovieLens-20M's (138,493 x 26,744,
20M rows). For each: building the matrix, fitting ``svd`` (64 factors), the top 10 of every
customer, full-ranking evaluation and the whole pipeline in a fresh process (time and peak
memory). Beside them, on the same data in the same run: ``implicit``'s ``recommend`` and
``ranking_metrics_at_k`` on the same factors, scikit-learn's ``TruncatedSVD`` and ``implicit``'s
ALS called directly. The end of the run prints the ratios.

    python -m pytest benchmarks/bench_scale.py             # the two small sizes (~1 min)
    python -m pytest benchmarks/bench_scale.py --ml20m     # all three sizes (~12 min)
    python -m pytest benchmarks/bench_scale.py -m ml20m    # MovieLens-20M's shape alone

``python -m benchmarks.bench_scale --data FILE --output FILE`` runs the pipeline once and
prints its step times and peak memory as JSON (the pipeline benchmark runs exactly that).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from benchmarks.conftest import record
from growthrec.cli.export import write_recommendations
from growthrec.core.interactions import (
    IdMap,
    Interactions,
    factorize,
    interactions_from_codes,
    interactions_from_events,
)
from growthrec.core.model import Model
from growthrec.core.ranking import thread_count
from growthrec.core.split import Split, split_leave_one_out
from growthrec.data.loading import load_events
from growthrec.data.synthetic import generate_shop
from growthrec.evaluation.runs import evaluate_model
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend

REPO = Path(__file__).resolve().parents[1]

#: name -> (users, items, density): rows = density * users * items.
SIZES = {
    "prototype": (1_000, 100, 0.05),
    "ml1m-shape": (6_040, 3_706, 1_000_000 / (6_040 * 3_706)),
    "ml20m-shape": (138_493, 26_744, 20_000_000 / (138_493 * 26_744)),
}
LARGE = "ml20m-shape"
#: Timed rounds per benchmark; the 20M size keeps to a few (each round takes seconds).
ROUNDS = {"prototype": 5, "ml1m-shape": 3, LARGE: 3}
#: Rounds of implicit's ranking at each size (the same as ours, so the medians compare).
REFERENCE_ROUNDS = ROUNDS
#: Rounds of the ALS fits (ours and implicit's): about half a minute each at the 20M size.
ALS_ROUNDS = {"prototype": 5, "ml1m-shape": 3, LARGE: 2}
FACTORS = 64
SEED = 0
ALS_PARAMS = {"factors": FACTORS, "regularization": 0.01, "alpha": 1.0, "iterations": 15}

pytestmark = pytest.mark.filterwarnings("ignore:OpenBLAS is configured:RuntimeWarning")


def _sizes() -> list[Any]:
    return [pytest.param(s, marks=pytest.mark.ml20m) if s == LARGE else s for s in SIZES]


@attrs.frozen
class ScaleData:
    """One size's events (coded), matrix, leave-one-out split and fitted svd model."""

    user_codes: np.ndarray
    item_codes: np.ndarray
    users: IdMap
    items: IdMap
    quantity: np.ndarray
    timestamp: np.ndarray
    interactions: Interactions
    split: Split
    model: Model

    @property
    def train_binary(self) -> sp.csr_matrix:
        """The float32 matrix both svd fits factorise: 1 for every training pair."""
        m = self.split.train.matrix
        return sp.csr_matrix((np.ones_like(m.data), m.indices, m.indptr), shape=m.shape)

    @property
    def user_factors(self) -> np.ndarray:
        """The svd model's user factors ``x V``: what its scores are made of."""
        items = self.model.arrays["item_factors"]
        return np.asarray(self.train_binary @ items, dtype=np.float32)


_DATA: dict[str, ScaleData] = {}
#: Our top-10 lists and ALS item factors per size, to check the references agree.
OUR_LISTS: dict[str, np.ndarray] = {}
OUR_ALS_ITEMS: dict[str, np.ndarray] = {}
#: Run in a fresh process: a growthrec command, then its peak RSS (MiB) on the last line.
_MEASURED_COMMAND = (
    "import sys\n"
    "from benchmarks.bench_scale import peak_rss_mib\n"
    "from growthrec.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print(peak_rss_mib())\n"
    "sys.exit(code)\n"
)


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB.

    ``VmHWM`` on Linux: ``ru_maxrss`` would count the parent's memory too, since Linux carries
    it over ``fork`` and ``exec`` (a pytest process holding 20M rows of data, say).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@pytest.fixture(scope="module", params=_sizes())
def size(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def data(size: str) -> ScaleData:
    if size not in _DATA:
        _DATA.clear()  # one size in memory at a time
        shop = generate_shop(*SIZES[size], seed=SEED)
        user_ids, user_codes = factorize(shop.user_id)
        item_ids, item_codes = factorize(shop.item_id)
        users = IdMap(user_ids, np.arange(user_ids.size))
        items = IdMap(item_ids, np.arange(item_ids.size))
        timestamp = shop.timestamp.astype(np.float64)
        interactions = interactions_from_codes(
            user_codes, users, item_codes, items, shop.quantity, timestamp
        )
        split = split_leave_one_out(interactions, by="latest", seed=SEED)
        model = fit_model(split.train, "svd", {"factors": FACTORS}, seed=SEED)
        _DATA[size] = ScaleData(
            user_codes,
            item_codes,
            users,
            items,
            shop.quantity,
            timestamp,
            interactions,
            split,
            model,
        )
    return _DATA[size]


def peak_mib(function: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Peak memory allocated through numpy and Python during one call (tracemalloc), MiB.

    BLAS work buffers are not counted; the whole-process figure is the pipeline's peak RSS.
    """
    tracemalloc.start()
    try:
        function(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return round(peak / 2**20, 1)


def cpu_timed(benchmark, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, noting the median CPU seconds of its calls (all threads) in extra_info.

    Wall time is what the comparisons are about; CPU time shows the work done, which the
    other processes of a shared machine disturb less.
    """
    spent: list[float] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent.append(time.process_time() - start)
            benchmark.extra_info["cpu_seconds"] = round(float(np.median(spent)), 3)

    return timed


def note_context(benchmark, data: ScaleData) -> None:
    benchmark.extra_info["users"] = data.interactions.n_users
    benchmark.extra_info["items"] = data.interactions.n_items
    benchmark.extra_info["pairs"] = data.interactions.nnz
    benchmark.extra_info["load_average"] = round(os.getloadavg()[0], 2)


def implicit_model(data: ScaleData):
    """An implicit ALS model object carrying the svd model's factors (nothing is fitted)."""
    als = pytest.importorskip("implicit.cpu.als")
    model = als.AlternatingLeastSquares(factors=FACTORS, dtype=np.float32, random_state=SEED)
    model.user_factors = data.user_factors
    model.item_factors = data.model.arrays["item_factors"]
    return model


# ---------------------------------------------------------------------------------------------
# How time and memory grow: build, svd fit, top 10 of everybody, full evaluation.
# ---------------------------------------------------------------------------------------------
def test_build_matrix(benchmark, size, data) -> None:
    """Events (already coded) -> CSR matrix: duplicates summed, latest time per pair."""
    args = (data.user_codes, data.users, data.item_codes, data.items, data.quantity)
    kwargs = {"timestamps": data.timestamp}
    built = benchmark.pedantic(interactions_from_codes, args, kwargs, rounds=ROUNDS[size])
    assert built.nnz == data.interactions.nnz
    note_context(benchmark, data)
    benchmark.extra_info["rows"] = int(data.user_codes.size)
    benchmark.extra_info["peak_mib"] = peak_mib(interactions_from_codes, *args, **kwargs)


def test_svd_fit(benchmark, size, data) -> None:
    train = data.split.train
    params = {"factors": FACTORS}
    model = benchmark.pedantic(
        cpu_timed(benchmark, fit_model), (train, "svd", params), {"seed": SEED}, rounds=ROUNDS[size]
    )
    note_context(benchmark, data)
    benchmark.extra_info["peak_mib"] = peak_mib(fit_model, train, "svd", params, seed=SEED)
    record("svd fit vs TruncatedSVD", size, "ours", benchmark, kind="overhead", target="<= 1.10")
    np.testing.assert_array_equal(model.arrays["item_factors"], data.model.arrays["item_factors"])


def test_svd_fit_sklearn(benchmark, size, data) -> None:
    """scikit-learn's TruncatedSVD called directly: same float32 matrix, parameters, seed and
    BLAS threads (one) as the svd backend."""
    from sklearn.decomposition import TruncatedSVD

    matrix = data.train_binary
    seed = int(np.random.default_rng(SEED).integers(2**31 - 1))  # as fit_model draws it

    def fit() -> TruncatedSVD:
        svd = TruncatedSVD(FACTORS, algorithm="randomized", n_iter=5, random_state=seed)
        with threadpool_limits(1, "blas"):
            return svd.fit(matrix)

    svd = benchmark.pedantic(cpu_timed(benchmark, fit), rounds=ROUNDS[size])
    note_context(benchmark, data)
    record("svd fit vs TruncatedSVD", size, "theirs", benchmark)
    np.testing.assert_allclose(
        svd.components_.T, data.model.arrays["item_factors"], rtol=1e-5, atol=1e-6
    )


def test_top10_every_user(benchmark, size, data) -> None:
    users = np.arange(data.split.train.n_users)
    items, _ = benchmark.pedantic(
        cpu_timed(benchmark, recommend),
        (data.model, users, 10),
        {"n_threads": 0},
        rounds=ROUNDS[size],
    )
    assert items.shape == (users.size, 10)
    note_context(benchmark, data)
    benchmark.extra_info["threads"] = thread_count(0)
    benchmark.extra_info["peak_mib"] = peak_mib(recommend, data.model, users, 10, n_threads=0)
    record("top-10 of every user vs implicit", size, "ours", benchmark, kind="speedup")
    OUR_LISTS[size] = items


def test_top10_every_user_implicit(benchmark, size, data) -> None:
    """implicit's ``recommend`` for every user on the same factors, BLAS at one thread (as
    implicit asks: its own threads run the batches)."""
    model = implicit_model(data)
    train = data.split.train.matrix
    users = np.arange(train.shape[0])

    def run():
        with threadpool_limits(1, "blas"):
            return model.recommend(users, train, N=10, filter_already_liked_items=True)

    ids, _ = benchmark.pedantic(cpu_timed(benchmark, run), rounds=REFERENCE_ROUNDS[size])
    note_context(benchmark, data)
    ours = OUR_LISTS.get(size)
    if ours is None:
        ours, _ = recommend(data.model, users, 10, n_threads=0)
    # Lists differ only where implicit orders tied scores another way.
    same = float(np.mean(np.all(ours == ids, axis=1)))
    benchmark.extra_info["same_lists"] = same
    record("top-10 of every user vs implicit", size, "theirs", benchmark, target=">= 4")
    assert same > 0.999


def test_full_evaluation(benchmark, size, data) -> None:
    """Rank every item for every test user and compute all metrics at 10."""
    test = data.split.test
    n_users, metrics = benchmark.pedantic(
        cpu_timed(benchmark, evaluate_model),
        (data.model, test, [10]),
        {"n_threads": 0},
        rounds=ROUNDS[size],
    )
    note_context(benchmark, data)
    benchmark.extra_info["test_users"] = n_users
    benchmark.extra_info["ndcg@10"] = metrics[10]["ndcg"]
    benchmark.extra_info["peak_mib"] = peak_mib(evaluate_model, data.model, test, [10], n_threads=0)
    record("full evaluation vs implicit", size, "ours", benchmark, kind="speedup")


def test_full_evaluation_implicit(benchmark, size, data) -> None:
    """implicit's ``ranking_metrics_at_k`` on the same factors and split; same NDCG@10."""
    from implicit.evaluation import ranking_metrics_at_k

    model = implicit_model(data)
    train, test = data.split.train.matrix, data.split.test

    def run() -> dict[str, float]:
        with threadpool_limits(1, "blas"):
            return ranking_metrics_at_k(model, train, test, K=10, show_progress=False)

    theirs = benchmark.pedantic(cpu_timed(benchmark, run), rounds=REFERENCE_ROUNDS[size])
    _, ours = evaluate_model(data.model, test, [10], n_threads=0)
    note_context(benchmark, data)
    benchmark.extra_info["ndcg@10"] = theirs["ndcg"]
    benchmark.extra_info["ndcg@10_difference"] = abs(theirs["ndcg"] - ours[10]["ndcg"])
    record("full evaluation vs implicit", size, "theirs", benchmark, target=">= 5")
    assert ours[10]["ndcg"] == pytest.approx(theirs["ndcg"], abs=1e-6)


# ---------------------------------------------------------------------------------------------
# ALS through growthrec against implicit directly: same matrix, parameters, seed and threads.
# ---------------------------------------------------------------------------------------------
def test_als_fit(benchmark, size, data) -> None:
    pytest.importorskip("implicit")
    train = data.split.train
    model = benchmark.pedantic(
        cpu_timed(benchmark, fit_model),
        (train, "als", ALS_PARAMS),
        {"seed": SEED},
        rounds=ALS_ROUNDS[size],
    )
    note_context(benchmark, data)
    benchmark.extra_info["threads"] = thread_count(0)
    record("als fit vs implicit", size, "ours", benchmark, kind="overhead", target="<= 1.05")
    OUR_ALS_ITEMS[size] = model.arrays["item_factors"]


def test_als_fit_implicit(benchmark, size, data) -> None:
    als = pytest.importorskip("implicit.cpu.als")
    matrix = data.train_binary
    seed = int(np.random.default_rng(SEED).integers(2**31 - 1))  # as the backend draws it

    def fit():
        with threadpool_limits(1, "blas"):
            model = als.AlternatingLeastSquares(
                factors=FACTORS,
                regularization=ALS_PARAMS["regularization"],
                alpha=ALS_PARAMS["alpha"],
                dtype=np.float32,
                use_cg=True,
                iterations=ALS_PARAMS["iterations"],
                num_threads=thread_count(0),
                random_state=seed,
            )
            model.fit(matrix, show_progress=False)
        return model

    model = benchmark.pedantic(cpu_timed(benchmark, fit), rounds=ALS_ROUNDS[size])
    note_context(benchmark, data)
    record("als fit vs implicit", size, "theirs", benchmark)
    if size in OUR_ALS_ITEMS:
        np.testing.assert_allclose(model.item_factors, OUR_ALS_ITEMS[size], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The whole pipeline in a fresh process: file -> matrix -> split -> svd -> evaluation -> export.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shop_files(size: str, tmp_path_factory) -> dict[str, Path]:
    """The size's shop as growthrec generate writes it: Parquet and CSV (dates as text)."""
    from growthrec.cli.generate import write_shop

    folder = tmp_path_factory.mktemp(f"shop-{size}")
    shop = generate_shop(*SIZES[size], seed=SEED)
    files = {}
    for kind in ("parquet", "csv"):
        files[kind] = folder / f"transactions.{kind}"
        write_shop(shop, files[kind], folder / f"items.{kind}")
    return files


def run_pipeline(data: Path, output: Path, factors: int = FACTORS) -> dict[str, Any]:
    """Load, build, split (leave-one-out, latest), fit svd, evaluate (full ranking) and export
    the top 10 of every customer; step times in seconds and the process's peak RSS."""
    start = last = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(step: str) -> None:
        nonlocal last
        now = time.perf_counter()
        seconds[step] = round(now - last, 3)
        last = now

    events, _ = load_events(data)
    lap("load")
    interactions = interactions_from_events(events)
    del events
    lap("build")
    split = split_leave_one_out(interactions, by="latest", seed=SEED)
    del interactions
    lap("split")
    model = fit_model(split.train, "svd", {"factors": factors}, seed=SEED)
    lap("fit")
    n_test_users, metrics = evaluate_model(model, split.test, [10], n_threads=0)
    lap("evaluate")
    users = np.arange(model.train.n_users)
    rows = write_recommendations(model, users, output, 10, n_threads=0)
    lap("export")
    return {
        "seconds": seconds,
        "total_seconds": round(time.perf_counter() - start, 3),
        "peak_rss_mib": peak_rss_mib(),
        "users": int(users.size),
        "items": model.train.n_items,
        "test_users": n_test_users,
        "ndcg@10": metrics[10]["ndcg"],
        "exported_rows": rows,
    }


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_pipeline_fresh_process(benchmark, size, shop_files, kind, tmp_path) -> None:
    """Wall time (including Python start and imports) and peak RSS of the whole pipeline."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_scale",
        "--data",
        str(shop_files[kind]),
        "--output",
        str(tmp_path / "recs.parquet"),
    ]

    def run() -> dict[str, Any]:
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
        return json.loads(done.stdout)

    result = benchmark.pedantic(run, rounds=1)
    benchmark.extra_info.update(result)
    benchmark.extra_info["load_average"] = round(os.getloadavg()[0], 2)
    assert result["exported_rows"] == 10 * result["users"]


@pytest.mark.parametrize("kind", ["parquet"])
def test_cli_train_then_export(benchmark, size, shop_files, kind, tmp_path) -> None:
    """``growthrec train`` then ``growthrec export``, each in a fresh process: wall and peak RSS."""
    model = tmp_path / "svd.npz"
    commands = {
        "train": ["train", "--data", str(shop_files[kind]), "--factors", str(FACTORS)],
        "export": ["export", "--model", str(model), "--output", str(tmp_path / "recs.parquet")],
    }
    commands["train"] += ["--output", str(model)]
    measured: dict[str, float] = {}

    def run() -> None:
        for name, args in commands.items():
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _MEASURED_COMMAND, *args, "--json"],
                check=True,
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            measured[f"{name}_seconds"] = round(time.perf_counter() - start, 3)
            measured[f"{name}_peak_rss_mib"] = float(done.stdout.split()[-1])

    benchmark.pedantic(run, rounds=1)
    benchmark.extra_info.update(measured)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the scale pipeline once; print JSON.")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--factors", type=int, default=FACTORS)
    args = parser.parse_args(argv)
    print(json.dumps(run_pipeline(args.data, args.output, args.factors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
