"""Timings of the seed workflow: generate, train svd, evaluate, top-10 for every user.

Run with ``python -m pytest benchmarks`` (or ``tox -e bench``); figures go in the README.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from benchmarks.conftest import SCALES
from growthrec.data.synthetic import generate_shop
from growthrec.evaluation.runs import evaluate_backend, evaluate_model
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.store.modelfile import save_model


def test_generate(benchmark, scale) -> None:
    shop = benchmark.pedantic(generate_shop, args=SCALES[scale], kwargs={"seed": 0}, rounds=3)
    benchmark.extra_info["rows"] = int(shop.user_id.size)


def test_generate_100k_users_20k_items_5m_rows(benchmark) -> None:
    shop = benchmark.pedantic(generate_shop, args=(100_000, 20_000, 0.0025), rounds=1)
    assert shop.user_id.size == 5_000_000


def test_train_svd_50(benchmark, interactions, tmp_path) -> None:
    model = benchmark.pedantic(
        fit_model, args=(interactions, "svd", {"factors": 50}), kwargs={"seed": 0}, rounds=5
    )
    path = save_model(model, tmp_path / "svd.npz")
    benchmark.extra_info["model_file_bytes"] = path.stat().st_size
    benchmark.extra_info["nnz"] = interactions.nnz


def test_top10_every_user(benchmark, interactions, all_users) -> None:
    model = fit_model(interactions, "svd", {"factors": 50}, seed=0)
    items, _ = benchmark.pedantic(recommend, args=(model, all_users, 10), rounds=5)
    assert items.shape == (interactions.n_users, 10)


def test_evaluate_leave_one_out_svd(benchmark, split) -> None:
    result = benchmark.pedantic(
        evaluate_backend, args=(split, "svd", {"factors": 50}), kwargs={"ks": (5, 10)}, rounds=3
    )
    benchmark.extra_info["hit_rate@5"] = result.metrics[5]["hit_rate"]
    benchmark.extra_info["ndcg@10"] = result.metrics[10]["ndcg"]


def test_rank_and_score_only(benchmark, split) -> None:
    """Evaluation without the fit: full ranking of every test user plus all metrics."""
    model = fit_model(split.train, "svd", {"factors": 50}, seed=0)
    n_users, _ = benchmark.pedantic(evaluate_model, args=(model, split.test, (5, 10)), rounds=5)
    assert n_users == np.count_nonzero(np.diff(split.test.indptr))


def test_train_command_whole_prototype(benchmark, tmp_path) -> None:
    """``growthrec train`` as a user runs it at the prototype's scale: imports, read, fit, write."""
    data = tmp_path / "transactions.csv"
    subprocess.run(
        [sys.executable, "-m", "growthrec", "generate", "--output", str(data)], check=True
    )
    command = [
        sys.executable,
        "-m",
        "growthrec",
        "train",
        "--data",
        str(data),
        "--factors",
        "50",
        "--output",
        str(tmp_path / "models"),
        "--json",
    ]
    benchmark.pedantic(
        subprocess.run, args=(command,), kwargs={"check": True, "capture_output": True}, rounds=3
    )
