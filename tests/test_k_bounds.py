"""Resource bounds of evaluation: any K, lists shorter than K, memory that does not grow with K."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from cli_helpers import run

import growthrec.evaluation.runs as evaluation_module
from growthrec.cli.main import main
from growthrec.core.interactions import build_interactions
from growthrec.core.metrics import (
    intra_list_diversity_at_k,
    novelty_at_k,
    ranking_metrics,
)
from growthrec.core.split import split_leave_one_out
from growthrec.evaluation.runs import clamp_ks, evaluate_model, item_vectors_for_diversity
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend

pytestmark = pytest.mark.usefixtures("plain_console")

N_ITEMS = 100
CLAMP_WARNING = (
    "warning: --k 100000: more than the 100 items in the catalogue, so computed at K=100 "
    "(a list cannot be longer)\n"
)


@pytest.fixture(scope="module")
def shop_csv(tmp_path_factory):
    """A generated shop of 300 customers and 100 products (with a catalogue)."""
    path = tmp_path_factory.mktemp("shop") / "transactions.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["generate", "--users", "300", "--items", str(N_ITEMS), "--density", "0.1"]
        assert main([*argv, "--seed", "0", "--output", str(path)]) == 0
    return path


def _evaluate(capsys, shop_csv, *ks):
    code, out, err = run(
        capsys, "evaluate", "--data", shop_csv, "--model", "svd", "--k", *ks, "--json"
    )
    assert code == 0, err
    return json.loads(out), err


# --- the command line: K above the catalogue is clamped, with a note --------------------------


def test_huge_k_is_clamped_with_a_warning_and_equals_k_of_the_catalogue(capsys, shop_csv):
    clamped, err = _evaluate(capsys, shop_csv, 10, 100_000)
    assert err == CLAMP_WARNING
    assert clamped["ks"] == [10, 100]
    assert clamped["ks_clamped"] == {"100000": 100}
    assert clamped["warnings"] == [CLAMP_WARNING.removeprefix("warning: ").strip()]
    exact, err = _evaluate(capsys, shop_csv, 10, 100)
    assert err == ""
    assert (exact["ks_clamped"], exact["warnings"]) == ({}, [])
    for got, want in zip(clamped["results"], exact["results"], strict=True):
        assert got["backend"] == want["backend"]
        assert got["metrics"] == want["metrics"]
    svd = clamped["results"][0]["metrics"]["100"]
    # Every customer's held-out item is somewhere in a list of every item they did not buy.
    assert svd["hit_rate"] == svd["recall"] == 1.0
    assert svd["precision"] == pytest.approx(0.01, abs=1e-12)  # one hit over K = 100
    assert svd["coverage"] == 1.0


def test_huge_k_runs_within_a_memory_bound(shop_csv, tmp_path):
    # The same command under a 3 GiB address-space limit: before, diversity alone asked for
    # 100000 x 100000 per customer and the kernel killed the process at 24 GB.
    script = textwrap.dedent(
        f"""
        import resource, sys
        limit = 3 * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from growthrec.cli.main import main
        sys.exit(main(["evaluate", "--data", {str(shop_csv)!r}, "--k", "5", "100000",
                       "--threads", "1", "--json"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == CLAMP_WARNING
    assert json.loads(done.stdout)["ks"] == [5, 100]


def test_tune_with_k_above_the_catalogue(capsys, shop_csv, tmp_path):
    code, out, err = run(
        capsys,
        "tune",
        "--data",
        shop_csv,
        "--model",
        "svd",
        "--grid",
        "factors=4",
        "--at",
        100_000,
        "--k",
        5,
        "--output",
        tmp_path,
        "--json",
    )
    assert code == 0, err
    assert err == CLAMP_WARNING
    payload = json.loads(out)
    assert payload["metric"] == "ndcg@100"
    (trial,) = payload["trials"]
    assert sorted(trial["metrics"]) == ["100", "5"]


def test_clamp_ks():
    assert clamp_ks([10, 100_000], 100) == ((10, 100), (100_000,))
    assert clamp_ks([100, 100_000, 5], 100) == ((5, 100), (100_000,))
    assert clamp_ks([3], 100) == ((3,), ())


# --- the library: lists shorter than K, padding, memory ------------------------------------


@pytest.fixture(scope="module")
def greedy_shop():
    """Ten items; customer "all-but-2" bought eight of them, the others two or three each."""
    users = ["all-but-2"] * 8 + ["a", "a", "b", "b", "b", "c", "c", "d", "d", "e", "e"]
    items = [0, 1, 2, 3, 4, 5, 6, 7, 0, 8, 1, 2, 9, 3, 8, 4, 9, 5, 6]
    return build_interactions(users, items)


def test_lists_shorter_than_k_are_padded_with_minus_one(greedy_shop):
    model = fit_model(greedy_shop, "popularity")
    user = greedy_shop.users.index(["all-but-2"])
    items, scores = recommend(model, user, k=10)
    assert items.shape == (1, 10)
    # Only the two items not bought remain (8 and 9, each bought twice), then padding.
    assert sorted(greedy_shop.items.external(items[0, :2]).tolist()) == [8, 9]
    assert items[0, 2:].tolist() == [-1] * 8
    assert np.isneginf(scores[0, 2:]).all()


def test_padding_is_ignored_by_coverage_novelty_and_diversity():
    # Two users: one list of 2 real items padded to 6, one of 3 real items padded to 6.
    recommended = np.array([[0, 1, -1, -1, -1, -1], [2, 3, 4, -1, -1, -1]])
    truth = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]]))
    counts = np.array([4, 2, 1, 1, 0])
    categories = np.array([0, 1, 1, 1, 2])
    at_6 = ranking_metrics(
        recommended, truth, [3, 6], 5, item_counts=counts, n_users=4, categories=categories
    )
    # Coverage: items 0-4 all appear, the -1s are not an item: 5 / 5.
    assert at_6[6]["coverage"] == 1.0
    # Novelty, bits per real item: info = log2(4 / max(c, 1)) = [0, 1, 2, 2, 2];
    # user 0: (0 + 1) / 2; user 1: (2 + 2 + 2) / 3; mean (0.5 + 2) / 2 = 1.25.
    assert at_6[6]["novelty"] == pytest.approx(1.25, abs=1e-12)
    # Diversity over real pairs only: user 0 pair (0,1): 1; user 1 pairs (2,3):0 (2,4):1
    # (3,4):1 -> 2/3; mean (1 + 2/3) / 2 = 5/6.
    assert at_6[6]["diversity"] == pytest.approx(5 / 6, abs=1e-12)
    # Lists no longer than 3: K = 6 says the same as K = 3, except precision (over K).
    for name in ("hit_rate", "recall", "ndcg", "map", "mrr", "coverage", "novelty", "diversity"):
        assert at_6[6][name] == pytest.approx(at_6[3][name], abs=1e-12), name
    # Hits: user 0 at rank 1 (item 0), user 1 at rank 3 (item 4).
    assert at_6[6]["precision"] == pytest.approx((1 / 6 + 1 / 6) / 2, abs=1e-12)
    assert at_6[3]["precision"] == pytest.approx((1 / 3 + 1 / 3) / 2, abs=1e-12)
    assert at_6[6]["mrr"] == pytest.approx((1 + 1 / 3) / 2, abs=1e-12)


def test_diversity_and_novelty_at_a_huge_k_stay_small_in_memory():
    rng = np.random.default_rng(0)
    n_items, depth = 40, 50_000
    short = np.stack([rng.permutation(n_items)[:30] for _ in range(20)])
    padded = np.full((20, depth), -1, dtype=np.int64)
    padded[:, :30] = short
    vectors = rng.standard_normal((n_items, 8))
    categories = rng.integers(0, 4, n_items)
    counts = rng.integers(0, 50, n_items)
    tracemalloc.start()
    try:
        by_vector = intra_list_diversity_at_k(padded, depth, item_vectors=vectors)
        by_category = intra_list_diversity_at_k(padded, depth, categories=categories)
        novelty = novelty_at_k(padded, depth, counts, 50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A K x K array for one list would be 50000^2 bytes = 2.3 GiB; the pair sums need
    # a few lists of K x 8 floats at a time.
    assert peak < 200 * 2**20, peak
    assert by_vector == pytest.approx(intra_list_diversity_at_k(short, 30, item_vectors=vectors))
    assert by_category == pytest.approx(intra_list_diversity_at_k(short, 30, categories=categories))
    assert novelty == pytest.approx(novelty_at_k(short, 30, counts, 50))


@pytest.fixture(scope="module")
def evaluated_split(small_shop):
    split = split_leave_one_out(small_shop, by="latest", seed=0)
    return split, fit_model(split.train, "svd", {"factors": 8}, seed=0)


def test_evaluate_model_clamps_k_to_the_catalogue(evaluated_split):
    split, model = evaluated_split
    n_items = model.train.n_items  # 40
    vectors = item_vectors_for_diversity(split.train, seed=0)
    n_users, huge = evaluate_model(model, split.test, [5, 10**9], item_vectors=vectors)
    _, exact = evaluate_model(model, split.test, [5, n_items], item_vectors=vectors)
    assert sorted(huge) == [5, n_items]
    assert huge == exact
    assert n_users == split.n_test_users == 147  # customers with two items or more


def test_evaluation_in_small_user_batches_equals_one_batch(evaluated_split, monkeypatch):
    split, model = evaluated_split
    vectors = item_vectors_for_diversity(split.train, seed=0)
    _, whole = evaluate_model(model, split.test, [1, 5, 10], item_vectors=vectors)
    _, sampled_whole = evaluate_model(model, split.test, [5], sampled_negatives=7, seed=2)
    # 64 bytes per list slot: 10 * 64 * 7 bytes is 7 users per batch at K = 10.
    monkeypatch.setattr(evaluation_module, "_EVALUATION_BATCH_BYTES", 10 * 64 * 7)
    _, batched = evaluate_model(model, split.test, [1, 5, 10], item_vectors=vectors)
    _, sampled_batched = evaluate_model(model, split.test, [5], sampled_negatives=7, seed=2)
    for k in (1, 5, 10):
        assert batched[k] == pytest.approx(whole[k], abs=1e-12)
    assert sampled_batched[5] == pytest.approx(sampled_whole[5], abs=1e-12)
