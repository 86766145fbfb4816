"""The sequential search (tune --budget), default search spaces, and compare --tune."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from cli_helpers import assert_error, run, run_json
from test_json_contract import check

from growthrec.backends.contract import Param, default_space
from growthrec.backends.registry import available_backends, get_backend, plugin_manager
from growthrec.cli.main import main
from growthrec.core.interactions import Events, IdMap
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ParameterError
from growthrec.evaluation.comparison import evaluate_per_customer, paired_difference
from growthrec.evaluation.protocols import Protocol, make_split, make_validation_split
from growthrec.evaluation.tuning import (
    SearchSpace,
    SearchUnavailableError,
    default_search_space,
    sequential_search,
)

pytest.importorskip("optuna")

#: Every fit of the peaked backend: (x, iterations).
FITS: list[tuple[float, int]] = []
PEAK = 3.0


class _Peaked:
    """A fake backend whose accuracy peaks at x = PEAK: co-bought items blended with noise.

    The weight of the real signal is exp(-(ln x - ln PEAK)² / 2), scaled by the share of its
    9 iterations fitted, so a short fit looks worse in proportion (something to prune on).
    """

    name = "peaked"
    description = "test backend with a known optimum"
    params = (
        Param("x", 1.0, "where the accuracy peaks", minimum=1e-6, search=(0.01, 100.0), log=True),
        Param("iterations", 9, "iterations", minimum=1, fidelity=True),
    )

    def fit(self, matrix, params, rng):
        FITS.append((params["x"], params["iterations"]))
        binary = (matrix > 0).astype(np.float32)
        gram = (binary.T @ binary).toarray()
        np.fill_diagonal(gram, 0)
        return {"gram": gram.astype(np.float32)}

    def score(self, arrays, params, rows, users):
        weight = np.exp(-((np.log(params["x"]) - np.log(PEAK)) ** 2) / 2)
        weight *= min(params["iterations"], 9) / 9
        signal = np.asarray(sp.csr_matrix(rows) @ arrays["gram"], dtype=np.float64)
        signal /= max(signal.max(), 1.0)
        n_items = arrays["gram"].shape[0]
        # fixed noise per (customer row, item): the same for every fit
        noise = np.sin(np.outer(users + 2.0, np.arange(1, n_items + 1)) * 12.9898) * 43758.5453
        noise -= np.floor(noise)
        return (weight * signal + (1 - weight) * noise).astype(np.float32)


class _Plugin:
    from growthrec import hookimpl

    @hookimpl
    def register_backends(self, register):
        register(_Peaked())


@pytest.fixture
def peaked() -> Iterator[str]:
    pm = plugin_manager()
    plugin = _Plugin()
    pm.register(plugin, name="peaked-test-plugin")
    FITS.clear()
    try:
        yield "peaked"
    finally:
        pm.unregister(plugin)


@pytest.fixture(scope="module")
def events() -> Events:
    made = generate_shop(300, 40, 0.1, seed=2)
    users = np.unique(made.user_id)
    items = np.unique(made.item_id)
    return Events(
        np.searchsorted(users, made.user_id),
        np.searchsorted(items, made.item_id),
        IdMap(users, np.arange(users.size)),
        IdMap(items, np.arange(items.size)),
        made.quantity.astype(np.float32),
        made.timestamp.astype(np.float64),
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """data/transactions.csv: 60 customers x 15 products (as test_json_contract's)."""
    path = tmp_path_factory.mktemp("shop") / "data" / "transactions.csv"
    argv = ["generate", "--users", "60", "--items", "15", "--density", "0.3", "--seed", "2"]
    assert main([*argv, "--output", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def validation(events):
    return make_validation_split(events, Protocol(), seed=0)


def _search(split, backend="peaked", **options):
    space = default_search_space(get_backend(backend))
    return sequential_search(split, backend, space, **{"budget": 12, **options})


# search spaces declared on the Params


def test_default_spaces_hold_their_defaults():
    spaces = {
        name: default_space(r.backend)
        for name, r in available_backends().items()
        if default_space(r.backend)
    }
    assert {"svd", "als", "bpr", "itemknn", "ease", "content"} <= set(spaces)
    assert spaces["ease"]["l2"].log and spaces["als"]["regularization"].log
    for params in spaces.values():
        for p in params.values():
            if p.type in (int, float):
                assert p.search[0] <= p.default <= p.search[1], p
            else:
                assert p.default in p.search, p
    assert default_search_space(get_backend("popularity")) == SearchSpace()


@pytest.mark.parametrize(
    ("param", "problem"),
    [
        (lambda: Param("l2", 1.0, search=(0.0, 10.0), log=True), "must start above 0"),
        (lambda: Param("l2", 1.0, search=(10.0, 1.0)), "low must be below high"),
        (lambda: Param("l2", 1.0, search=(1.0, 2.0, 3.0)), r"is \(low, high\)"),
        (lambda: Param("l2", 1.0, search=(-1.0, 1.0), minimum=0), "must be at least 0"),
        (lambda: Param("n", 5, fidelity=True, search=None, log=True), "log needs a search"),
        (lambda: Param("rate", 0.5, fidelity=True), "an int parameter"),
        (lambda: Param("kind", "a", choices=("a", "b"), search=("a", "c")), "choose one of a, b"),
    ],
)
def test_a_bad_search_declaration_is_refused_at_import(param, problem):
    with pytest.raises(ValueError, match=problem):
        param()


# the sequential search


def test_search_finds_the_known_optimum_within_the_budget(peaked, validation):
    search = _search(validation, budget=20, prune=False)
    assert search.method == "tpe"
    assert len(search.history) == 20
    assert len(FITS) == sum(t.state == "complete" for t in search.history)
    best = search.ranked("ndcg", 10)[0]
    # the search space spans 0.01..100 (four decades); the best lands near 3
    assert 1.5 <= best.params["x"] <= 6.0, best.params
    peak = evaluate_per_customer(validation, "peaked", {"x": PEAK})[0].metrics[10]["ndcg"]
    assert best.score("ndcg", 10) >= 0.97 * peak


def test_same_seed_same_trials_other_seed_other_trials(peaked, validation):
    first = [(t.params["x"], t.value, t.state) for t in _search(validation, seed=3).history]
    again = [(t.params["x"], t.value, t.state) for t in _search(validation, seed=3).history]
    other = [(t.params["x"], t.value, t.state) for t in _search(validation, seed=4).history]
    assert first == again
    assert first != other


def test_hopeless_trials_are_pruned_after_a_third_of_their_iterations(peaked, validation):
    search = _search(validation, budget=25, seed=0)
    assert search.pruning == "median after 5 finished trials, at a third of iterations"
    pruned = [t for t in search.history if t.state == "pruned"]
    assert 1 <= len(pruned) < 25
    assert search.n_pruned == len(pruned)
    full = {x for x, iterations in FITS if iterations == 9}
    for t in pruned:
        assert t.value is None and t.evaluation is None
        assert t.pruned_at[0] == 3
        assert t.params["x"] not in full  # never fitted in full
    assert all(t.number >= 5 for t in pruned)  # not before 5 trials finished
    # a pruned trial was behind: its early score is below the best early score of a finisher
    best_early = max(t.value for t in search.history if t.state == "complete")
    assert all(t.pruned_at[1] < best_early for t in pruned)
    assert not any(t.state == "pruned" for t in _search(validation, prune=False).history)


def test_a_small_space_of_choices_is_tried_whole(validation):
    space = SearchSpace({"factors": (2, 4, 8)})
    search = sequential_search(validation, "svd", space, budget=10)
    assert search.method == "grid"
    assert [t.params["factors"] for t in search.history] == [2, 4, 8]


def test_fixed_parameters_stay_fixed(peaked, validation):
    space = default_search_space(get_backend("itemknn"))
    search = sequential_search(
        validation, "itemknn", space, budget=4, fixed={"similarity": "bm25"}, seed=1
    )
    assert {t.params["similarity"] for t in search.history} == {"bm25"}


def test_nothing_to_search_is_one_line(validation):
    with pytest.raises(ParameterError, match="popularity: nothing to search"):
        sequential_search(validation, "popularity", SearchSpace(), budget=5)


def test_without_optuna_the_search_says_how_to_install_it(monkeypatch, validation, peaked):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    with pytest.raises(SearchUnavailableError, match=r'pip install "growthrec\[tune\]"'):
        _search(validation)


# the paired interval


def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true = 0.05
    covered = 0
    for repeat in range(200):
        a = rng.beta(2, 5, size=300)
        b = np.clip(a - true + rng.normal(0, 0.1, size=300), -1, 2)
        result = paired_difference(("a", a), ("b", b), n_resamples=400, seed=repeat)
        assert result.low < result.difference < result.high
        covered += result.low <= true <= result.high
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_per_customer_ndcg_averages_to_the_evaluated_ndcg(events):
    split = make_split(events, Protocol(), seed=0)
    evaluation, ndcg = evaluate_per_customer(split, "itemknn", {"neighbors": 10}, ks=(5, 10))
    assert ndcg.shape == (evaluation.n_users,)
    assert ndcg.mean() == pytest.approx(evaluation.metrics[10]["ndcg"], abs=1e-12)


# the command line


def test_tune_budget_needs_no_grid(shop, tmp_path, capsys):
    payload = run_json(
        capsys, "tune", "--data", shop, "--model", "als", "--budget", 6, "--output", tmp_path
    )
    check("tune", payload)
    search = payload["search"]
    assert search["method"] == "tpe" and search["budget"] == 6
    assert [t["number"] for t in search["history"]] == list(range(6))
    complete = [t for t in search["history"] if t["state"] == "complete"]
    assert len(payload["trials"]) == len(complete) == 6 - search["n_pruned"]
    best = max(complete, key=lambda t: t["value"])
    assert payload["best"] == {"params": best["params"], "value": best["value"]}
    assert json.loads((tmp_path / "als.params.json").read_text())["params"] == best["params"]
    assert len({t["params"]["factors"] for t in search["history"]}) > 1  # it searched


def test_tune_grid_and_trials_still_work(shop, tmp_path, capsys):
    grid = run_json(capsys, "tune", "--data", shop, "--grid", "factors=2,3", "--output", tmp_path)
    assert grid["search"]["method"] == "grid"
    assert [t["params"]["factors"] for t in grid["search"]["history"]] == [2, 3]
    drawn = run_json(
        capsys, "tune", "--data", shop, "--model", "ease", "--trials", 3, "--output", tmp_path
    )
    check("tune", drawn)
    assert drawn["search"]["method"] == "random" and drawn["search"]["budget"] is None
    assert all(1.0 <= t["params"]["l2"] <= 20000.0 for t in drawn["search"]["history"])


def test_tune_without_optuna_is_one_line(shop, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    err = assert_error(capsys, 1, "tune", "--data", shop, "--budget", 3, "--output", tmp_path)
    assert err == (
        "error: the sequential search (--budget) needs optuna, which is not installed: "
        'pip install "growthrec[tune]"'
    )
    assert not (tmp_path / "svd.params.json").exists()


def test_budget_and_trials_together_is_a_usage_error(shop, capsys):
    err = assert_error(capsys, 2, "tune", "--data", shop, "--budget", 3, "--trials", 3)
    assert "--budget" in err and "--trials" in err


def test_compare_tune_names_the_winner_and_its_interval(shop, capsys, plain_console):
    argv = ["compare", "--data", shop, "--models", "ease,itemknn,popularity", "--tune"]
    payload = run_json(capsys, *argv, "--budget", 4, "--k", 5, 10)
    check("compare", payload)
    ndcg = {r["backend"]: r["metrics"]["10"]["ndcg"] for r in payload["results"]}
    ranking = payload["comparison"]["ranking"]
    assert ranking == sorted(ndcg, key=lambda n: -ndcg[n])
    paired = payload["comparison"]["paired"]
    assert (paired["winner"], paired["runner_up"]) == tuple(ranking[:2])
    assert paired["difference"] == pytest.approx(ndcg[ranking[0]] - ndcg[ranking[1]], abs=1e-9)
    assert paired["low"] <= paired["difference"] <= paired["high"]
    assert paired["n_customers"] == payload["split"]["n_test_users"]
    tuned = {b["backend"]: b for b in payload["tuning"]["backends"]}
    assert tuned["popularity"]["search"] is None
    assert len(tuned["ease"]["search"]["history"]) == 4
    assert payload["results"][0]["params"]["l2"] == tuned["ease"]["params"]["l2"]
    code, out, _ = run(capsys, *argv, "--budget", 4, "--k", 5, 10)
    assert code == 0
    text = " ".join(out.split())  # a long line may wrap
    line = text[text.index("Winner on test:") :]
    assert f"Winner on test: {ranking[0]}, NDCG@10 {ndcg[ranking[0]]:.4f}" in line
    assert f"{paired['low']:+.4f} to {paired['high']:+.4f}" in line
    assert line.endswith("not a clear win") == (paired["low"] <= 0)


def test_compare_tune_keeps_param_values_fixed(shop, capsys):
    argv = ["compare", "--data", shop, "--models", "itemknn", "--tune", "--budget", 3]
    payload = run_json(capsys, *argv, "--param", "itemknn.similarity=bm25")
    history = payload["tuning"]["backends"][0]["search"]["history"]
    assert {t["params"]["similarity"] for t in history} == {"bm25"}
    assert payload["comparison"]["paired"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "3"], "--budget 3: the trials of --tune; add --tune"),
        (["--tune", "--tuned", "x"], "--tune and --tuned: give one"),
        (["--tune", "--protocol", "cold-items"], "--tune with --protocol cold-items"),
    ],
)
def test_compare_tune_misuse_is_one_line(shop, capsys, extra, message):
    err = assert_error(capsys, 2, "compare", "--data", shop, "--models", "svd", *extra)
    assert message in err


def test_a_setting_proposed_again_reuses_the_first_result(validation):
    space = SearchSpace({"factors": (2, 4, 8), "normalize": (False, True)})  # 6 settings
    search = sequential_search(validation, "svd", space, budget=5, seed=0)
    assert search.method == "tpe" and len(search.history) == 5
    repeats = [t for t in search.history if t.state == "repeat"]
    assert repeats  # 5 draws among 6 settings: this seed draws one twice
    for t in repeats:
        first = search.history[t.repeat_of]
        assert first.state == "complete" and first.number < t.number
        assert (t.params, t.value, t.seconds) == (first.params, first.value, 0.0)
    assert len(search.ranked("ndcg", 10)) == 5 - len(repeats)
