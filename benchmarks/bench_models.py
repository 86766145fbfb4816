"""The models of issue 16 against today's best: per-customer NDCG@10, paired bootstrap, fit times.

Usage (from the repository root, with ../shared/data present):

    python benchmarks/bench_models.py compare RESULTS_DIR [CELL ...]  # from tuned params
    python benchmarks/bench_models.py tune-recency RESULTS_DIR [CELL ...]  # half-life, validation
    python benchmarks/bench_models.py tune-blend RESULTS_DIR [CELL ...]  # pairs, on validation
    python benchmarks/bench_models.py check                     # quick: defaults on both datasets
    python benchmarks/bench_models.py fit-time MODEL [k=v ...]  # one fit at MovieLens-20M shape
    python benchmarks/bench_models.py ials-vs-implicit          # accuracy and time, same data

``compare`` reads the ``<backend>.params.json`` files that ``growthrec tune --output DIR`` wrote
(``benchmarks/real_data_results.sh`` makes them), splits the data exactly as ``growthrec
compare`` does (the CLI's own loading and ``make_split``, seed 0), fits every backend on the
train part and scores every test customer's top 10 with ``growthrec.core.metrics.hit_matrix``;
per-customer NDCG@10 then gives a paired bootstrap interval (10,000 resamples of customers) of
the relative improvement of each backend over the best of today's backends.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

_MOVIELENS = [
    "--data",
    str(DATA / "ml-latest-small" / "ratings.csv"),
    "--preset",
    "movielens",
    "--min-weight",
    "4",
]
_ONLINE_RETAIL = [
    "--data",
    str(DATA / "online-retail" / "online_retail.parquet"),
    "--preset",
    "online-retail",
]
_RATIO = ["--protocol", "ratio", "--test-ratio", "0.2"]
_LATEST = ["--protocol", "leave-one-out", "--by", "latest"]
#: The four cells' data options, exactly as benchmarks/real_data_results.sh (the first two) and
#: benchmarks/real_data_cells.sh (all four) pass them; the key is the results subfolder.
DATASETS = {
    "movielens": _MOVIELENS + _RATIO,
    "online-retail": _ONLINE_RETAIL + _LATEST,
    "movielens-loo": _MOVIELENS + _LATEST,
    "online-retail-ratio": _ONLINE_RETAIL + _RATIO,
}
#: The issue's two cells of record (one protocol per dataset), for the quick checks.
MAIN_CELLS = ("movielens", "online-retail")
#: Today's backends (before issue 16) and the new ones.
TODAY = ("svd", "als", "bpr", "itemknn", "ease")
NEW = ("rp3beta", "edlae", "ials", "sparse_ease", "blend")
#: The weights ``tune-blend`` tries for each pair, and how many of the best tuned backends
#: (by validation NDCG@10) it pairs.
BLEND_WEIGHTS = "0.2,0.35,0.5,0.65,0.8"
BLEND_TOP = 3
#: The recency half-lives ``tune-recency`` tries for each tuned backend (0, off, is its file).
RECENCIES = (1.0, 2.0, 5.0, 10.0, 20.0)


def load_split(dataset: str, validation: bool = False):
    """The split ``growthrec compare`` (or, with ``validation``, ``tune``) makes, seed 0."""
    from growthrec.cli.evaluate import protocol_from
    from growthrec.cli.main import build_parser
    from growthrec.cli.options import load_data
    from growthrec.evaluation.protocols import make_split, make_validation_split

    args = build_parser().parse_args(["compare", "--models", "ease", *DATASETS[dataset]])
    loaded = load_data(args)
    protocol = protocol_from(args)
    split = make_validation_split if validation else make_split
    return split(loaded.events, protocol, 0)


def per_user_ndcg(model, test: sp.csr_matrix, k: int = 10) -> np.ndarray:
    """NDCG@k of every customer with held-out items, with growthrec's own ranking and hits."""
    from growthrec.core.metrics import hit_matrix
    from growthrec.pipeline.lists import recommend

    users = np.flatnonzero(np.diff(test.indptr))
    items, _ = recommend(model, users, k)
    hits = hit_matrix(items, test[users])
    relevant = np.diff(test[users].indptr)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(relevant, k) - 1]
    return (hits * discounts).sum(axis=1) / ideal


def fit_and_score(
    split, backend: str, params: Mapping[str, Any], recency: float = 0.0
) -> tuple[np.ndarray, float]:
    """Per-customer NDCG@10 on the split's test part, and the fit's seconds."""
    from growthrec.pipeline.fitting import fit_model

    start = time.perf_counter()
    model = fit_model(split.train, backend, params, seed=0, recency=recency)
    seconds = time.perf_counter() - start
    return per_user_ndcg(model, split.test), seconds


def paired_bootstrap(
    new: np.ndarray, base: np.ndarray, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Relative improvement of mean ``new`` over mean ``base`` and its 95% percentile interval,
    resampling customers (the same draw for both: paired)."""
    rng = np.random.default_rng(seed)
    n = new.size
    draws = rng.integers(0, n, size=(resamples, n))
    ratios = new[draws].mean(axis=1) / base[draws].mean(axis=1) - 1
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(new.mean() / base.mean() - 1), float(low), float(high)


def _tuned(results: Path, dataset: str, backend: str) -> dict[str, Any]:
    """A cell's tuned file of ``backend`` (``{}`` without one)."""
    path = results / dataset / f"{backend}.params.json"
    return json.loads(path.read_text()) if path.exists() else {}


def compare(
    results: Path, datasets: Sequence[str] = tuple(DATASETS), backends: Sequence[str] = TODAY + NEW
) -> None:
    """The four-cell table: every backend tuned, today's best, each new one with its interval.

    A cell whose folder exists compares only the backends tuned there (a ``params.json``).
    Each backend runs with its tuned recency; today's backends (the baseline: what the
    libraries give) also without it, and the baseline is the best of those."""
    for dataset in datasets:
        split = load_split(dataset)
        scores, seconds, tuned = {}, {}, {}
        chosen = list(backends)
        if (results / dataset).is_dir():  # only the backends tuned for this cell
            chosen = [b for b in chosen if (results / dataset / f"{b}.params.json").exists()]
        rows = []
        for backend in chosen:
            tuned[backend] = _tuned(results, dataset, backend)
            params, recency = tuned[backend].get("params", {}), tuned[backend].get("recency", 0.0)
            runs = [recency] if backend not in TODAY or recency == 0 else [0.0, recency]
            for value in runs:
                row = (backend, value)
                scores[row], seconds[row] = fit_and_score(split, backend, params, value)
                rows.append(row)
        plain = [r for r in rows if r[0] in TODAY and r[1] == 0]
        best_today = max(plain, key=lambda r: scores[r].mean())
        base = scores[best_today]
        print(f"\n{dataset}: {base.size} customers; today's best {best_today[0]} (no recency)")
        print("| backend | recency | params | NDCG@10 | vs today's best [95% CI] | fit s |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            rel, low, high = paired_bootstrap(scores[row], base)
            params = tuned[row[0]].get("params", {})
            shown = ", ".join(f"{k}={v}" for k, v in params.items() if k != "threads")
            print(
                f"| `{row[0]}` | {row[1]:g} | {shown} | {scores[row].mean():.4f} | "
                f"{rel:+.1%} [{low:+.1%}, {high:+.1%}] | {seconds[row]:.2f} |"
            )
        tuned_rows = [r for r in rows if r[1] == tuned[r[0]].get("recency", 0.0)]
        picked = max(tuned_rows, key=lambda r: tuned[r[0]].get("value", -1))
        new = [r for r in rows if r[0] in NEW]
        best_new = max(new, key=lambda r: scores[r].mean()) if new else None
        for label, row in (("best on validation", picked), ("best new on test", best_new)):
            if row is None:
                continue
            rel, low, high = paired_bootstrap(scores[row], base)
            print(
                f"{label}: {row[0]} (recency {row[1]:g}) {scores[row].mean():.4f} vs "
                f"{best_today[0]} {base.mean():.4f}: {rel:+.1%} [{low:+.1%}, {high:+.1%}]",
                flush=True,
            )
        same = [r for r in tuned_rows if r[0] in TODAY]
        if same:
            ref = max(same, key=lambda r: scores[r].mean())
            rel, low, high = paired_bootstrap(scores[picked], scores[ref])
            print(
                f"best on validation against today's best with its tuned recency, {ref[0]} "
                f"(recency {ref[1]:g}) {scores[ref].mean():.4f}: {rel:+.1%} [{low:+.1%}, "
                f"{high:+.1%}]",
                flush=True,
            )


def _tune_quietly(args: Sequence[str]) -> None:
    """``growthrec`` ARGS in this process, its output discarded; a failure stops the run."""
    from growthrec.cli.main import main as growthrec

    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        code = growthrec(list(args))
    if code:
        raise SystemExit(f"growthrec {' '.join(args)} exited {code}")


def _pairs(params: Mapping[str, Any]) -> str:
    """Tuned parameters as ``name=value,...`` (threads left to the machine)."""
    return ",".join(f"{k}={v}" for k, v in params.items() if k != "threads")


def tune_recency(results: Path, dataset: str, backends: Sequence[str] = TODAY + NEW) -> None:
    """For each backend tuned in the cell (at recency 0), evaluate its tuned parameters on the
    validation split at each of ``RECENCIES`` (``growthrec tune --param ... --recency R``) and
    keep the best half-life, 0 included, in its ``params.json``: the test split is never
    looked at. A cell without purchase times is left as it is."""
    folder = results / dataset
    for backend in backends:
        path = folder / f"{backend}.params.json"
        if backend == "blend" or not path.exists():
            continue
        record = json.loads(path.read_text())
        if "recency" not in record or record["recency"] == 0:
            record["recency"] = 0.0
        values = {0.0: record["value"]}
        fixed = [f"--param={k}={v}" for k, v in record["params"].items() if k != "threads"]
        for recency in RECENCIES:
            trial = folder / f"{backend}-recency-{recency:g}.params.json"
            _tune_quietly([
                "tune", *DATASETS[dataset], "--model", backend, *fixed,
                "--recency", str(recency), "--output", str(trial), "--json",
            ])  # fmt: skip
            values[recency] = json.loads(trial.read_text())["value"]
        best = max(values, key=lambda r: (values[r], -r))
        print(f"{dataset}: {backend} validation NDCG@10 by recency: "
              + ", ".join(f"{r:g}: {v:.4f}" for r, v in values.items())
              + f" -> {best:g}", flush=True)  # fmt: skip
        record["recency"], record["value"] = best, values[best]
        path.write_text(json.dumps(record, indent=2) + "\n")


def tune_blend(results: Path, dataset: str) -> None:
    """Tune ``blend`` of each pair of the cell's ``BLEND_TOP`` best tuned backends (validation
    NDCG@10 in their ``params.json``) over ``BLEND_WEIGHTS`` with ``growthrec tune``, and keep
    the pair and weight best on validation as ``blend.params.json``: the test split is never
    looked at. With recency (``tune-recency`` first) each pair is tried at either model's
    half-life."""
    folder = results / dataset
    tuned = {}
    for backend in TODAY + NEW:
        path = folder / f"{backend}.params.json"
        if backend != "blend" and path.exists():
            tuned[backend] = json.loads(path.read_text())
    best = sorted(tuned, key=lambda b: -tuned[b]["value"])[:BLEND_TOP]
    values = {}
    for first, second in itertools.combinations(best, 2):
        recencies = {tuned[name].get("recency", 0.0) for name in (first, second)}
        for recency in sorted(recencies):
            output = folder / f"blend-{first}-{second}-recency-{recency:g}.params.json"
            _tune_quietly([
                "tune", *DATASETS[dataset], "--model", "blend", "--grid", f"weight={BLEND_WEIGHTS}",
                "--param", f"first={first}",
                "--param", f"first_params={_pairs(tuned[first]['params'])}",
                "--param", f"second={second}",
                "--param", f"second_params={_pairs(tuned[second]['params'])}",
                "--recency", str(recency), "--output", str(output), "--json",
            ])  # fmt: skip
            record = json.loads(output.read_text())
            values[output] = record["value"]
            print(f"{dataset}: {first} + {second}, recency {recency:g}, weight "
                  f"{record['params']['weight']}: validation NDCG@10 {record['value']:.4f}",
                  flush=True)  # fmt: skip
    chosen = max(values, key=values.get)
    shutil.copyfile(chosen, folder / "blend.params.json")
    print(f"{dataset}: blend.params.json <- {chosen.name}")


def check() -> None:
    """Default parameters of today's best two and the new models, on both datasets (quick)."""
    for dataset in MAIN_CELLS:
        split = load_split(dataset)
        for backend in ("ease", *NEW):
            values, seconds = fit_and_score(split, backend, {})
            print(f"{dataset:14s} {backend:12s} NDCG@10 {values.mean():.4f}  fit {seconds:.2f} s")


def ml20m_shape(seed: int = 0) -> sp.csr_matrix:
    """The binary 138,493 x 26,744 matrix with 20M rows that bench_scale.py (and the README's
    MovieLens-20M-shape timings) use: ``generate_shop`` at that shape, seed 0."""
    from growthrec.core.interactions import build_interactions
    from growthrec.core.weighting import apply_weighting
    from growthrec.data.synthetic import generate_shop

    shop = generate_shop(138_493, 26_744, 20_000_000 / (138_493 * 26_744), seed=seed)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity)
    return apply_weighting(data.matrix, "binary")


def fit_time(backend: str, params: Mapping[str, str]) -> None:
    """One fit at MovieLens-20M shape: seconds and peak memory (ru_maxrss)."""
    import resource

    from growthrec.backends.contract import resolve_params
    from growthrec.backends.registry import get_backend

    cache = Path(tempfile.gettempdir()) / "growthrec-ml20m-shape.npz"
    if not cache.exists():  # made once in its own run: a fit's peak then excludes making it
        sp.save_npz(cache, ml20m_shape(), compressed=False)
        print(f"wrote {cache}; run again to time the fit")
        return
    matrix = sp.load_npz(cache).tocsr()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"matrix {matrix.shape[0]} x {matrix.shape[1]}, {matrix.nnz} entries; "
        f"peak RSS before the fit {before:.1f} GB",
        flush=True,
    )
    impl = get_backend(backend)
    resolved = resolve_params(impl, params)
    start = time.perf_counter()
    arrays = impl.fit(matrix, resolved, np.random.default_rng(0))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    stored = sum(a.nbytes for a in arrays.values()) / 1e9
    print(
        f"{backend} {dict(params)}: fit {seconds:.1f} s, peak RSS {peak:.1f} GB, "
        f"arrays {stored:.2f} GB"
    )


def ials_vs_implicit() -> None:
    """growthrec's iALS against implicit's ALS on the same split: NDCG@10 and fit seconds."""
    for dataset in MAIN_CELLS:
        split = load_split(dataset)
        for backend, params in (
            ("als", {"factors": 128, "regularization": 30.0, "alpha": 5.0, "iterations": 15}),
            ("ials", {"factors": 128, "iterations": 15}),
        ):
            values, seconds = fit_and_score(split, backend, params)
            print(f"{dataset:14s} {backend:5s} NDCG@10 {values.mean():.4f}  fit {seconds:.2f} s")


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["check"]
    if command == "compare":
        results = Path(rest[0])
        compare(results, rest[1:] or [d for d in DATASETS if (results / d).is_dir()])
    elif command == "tune-recency":
        results = Path(rest[0])
        for dataset in rest[1:] or [d for d in DATASETS if (results / d).is_dir()]:
            tune_recency(results, dataset)
    elif command == "tune-blend":
        results = Path(rest[0])
        for dataset in rest[1:] or [d for d in DATASETS if (results / d).is_dir()]:
            tune_blend(results, dataset)
    elif command == "check":
        check()
    elif command == "fit-time":
        fit_time(rest[0], dict(arg.split("=", 1) for arg in rest[1:]))
    elif command == "ials-vs-implicit":
        ials_vs_implicit()
    else:
        raise SystemExit(__doc__)
