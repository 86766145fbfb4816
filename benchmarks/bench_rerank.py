"""Re-ranking speed: the top 10 from 200 candidates per user, one thread, every re-ranker.

Synthetic candidates at MovieLens-20M's catalogue (26,744 items, 64-factor rows, 20 categories
one per item, Zipf popularity, histories of ~130 items): for each re-ranker the time per user
over a batch of users, the time of one request (one user), and the total extrapolated to the
138,493 users of MovieLens-20M, beside the plain top 10 of the same candidates.

    python -m pytest benchmarks/bench_rerank.py             # 5,000 users per re-ranker
    python -m benchmarks.bench_rerank --users 138493        # the whole MovieLens-20M count
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.core.reranking import (
    Cap,
    RerankSpec,
    category_table,
    rerank,
    similarity_from_categories,
    similarity_from_vectors,
    user_category_distribution,
)

N_ITEMS = 26_744
ML20M_USERS = 138_493
CANDIDATES = 200
TOP = 10
N_CATEGORIES = 20
FACTORS = 64

#: name -> (spec, which tables it takes): the plain order first, every re-ranker after it.
CASES: dict[str, tuple[RerankSpec, tuple[str, ...]]] = {
    "plain top-10": (RerankSpec(), ()),
    "popularity penalty 0.1": (RerankSpec(popularity_penalty=0.1), ("popularity",)),
    "cap 2 per category": (RerankSpec(), ("cap",)),
    "mmr 0.3, categories": (RerankSpec(kind="mmr", strength=0.3), ("categories",)),
    "mmr 0.3, factors": (
        RerankSpec(kind="mmr", strength=0.3, similarity="factors"),
        ("factors",),
    ),
    "mmr 0.3 + popularity 0.1": (
        RerankSpec(kind="mmr", strength=0.3, popularity_penalty=0.1),
        ("categories", "popularity"),
    ),
    "dpp 0.3, categories": (RerankSpec(kind="dpp", strength=0.3), ("categories",)),
    "dpp 0.3, factors": (RerankSpec(kind="dpp", strength=0.3, similarity="factors"), ("factors",)),
    "dpp 0.3, window 5": (RerankSpec(kind="dpp", strength=0.3, window=5), ("categories",)),
    "calibration 0.3": (RerankSpec(kind="calibration", strength=0.3), ("calibration",)),
}


def make_data(n_users: int, seed: int = 0) -> dict[str, object]:
    """Candidates (no repeats), their scores and every table a re-ranker takes."""
    rng = np.random.default_rng(seed)
    popularity = np.minimum(rng.zipf(1.3, N_ITEMS), 100_000)
    # No repeats within a row: a random start and a stride coprime with the catalogue size,
    # through a random permutation of the items.
    order = rng.permutation(N_ITEMS)
    steps = rng.integers(0, N_ITEMS, (n_users, 1)) + 7 * np.arange(CANDIDATES)
    candidates = order[steps % N_ITEMS]
    scores = -np.sort(-rng.random((n_users, CANDIDATES)), axis=1).astype(np.float32)
    codes = rng.integers(0, N_CATEGORIES, N_ITEMS)
    categories = category_table(codes)
    history = sp.random(n_users, N_ITEMS, density=130 / N_ITEMS, format="csr", random_state=seed)
    return {
        "candidates": candidates,
        "scores": scores,
        "categories": similarity_from_categories(categories),
        "factors": similarity_from_vectors(
            rng.normal(size=(N_ITEMS, FACTORS)).astype(np.float32), "factors"
        ),
        "category_table": categories,
        "user_categories": user_category_distribution(history, categories),
        "popularity": popularity,
        "cap": [Cap(codes, 2, "category")],
    }


def rerank_call(data: dict[str, object], name: str, rows: slice) -> Callable[[], object]:
    """A no-argument call re-ranking ``rows`` of the data as case ``name``."""
    spec, uses = CASES[name]
    kwargs: dict[str, object] = {}
    if "categories" in uses:
        kwargs["similarity"] = data["categories"]
    if "factors" in uses:
        kwargs["similarity"] = data["factors"]
    if "popularity" in uses:
        kwargs["popularity"] = data["popularity"]
    if "cap" in uses:
        kwargs["caps"] = data["cap"]
    if "calibration" in uses:
        kwargs["categories"] = data["category_table"]
        kwargs["user_categories"] = data["user_categories"][rows]
    candidates, scores = data["candidates"][rows], data["scores"][rows]
    return lambda: rerank(candidates, scores, TOP, spec, **kwargs)


def measure(data: dict[str, object], n_users: int, repeats: int = 3) -> dict[str, dict]:
    """Per case: seconds per user over ``n_users`` (best of ``repeats``) and for one request."""
    out = {}
    with threadpool_limits(1):
        for name in CASES:
            batch = rerank_call(data, name, slice(0, n_users))
            best = min(_timed(batch) for _ in range(repeats))
            one = [rerank_call(data, name, slice(u, u + 1)) for u in range(50)]
            single = float(np.median([_timed(call) for call in one]))
            out[name] = {"per_user": best / n_users, "request": single}
    return out


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def report(results: dict[str, dict], n_users: int) -> str:
    """The figures as a Markdown table (µs per user, ML-20M total, ratio to plain, one request)."""
    plain = results["plain top-10"]["per_user"]
    lines = [
        f"re-ranked top-{TOP} from {CANDIDATES} candidates, {n_users:,} users, one thread",
        "",
        "| re-ranker | µs / user | 138,493 users (s) | x plain | one request (ms) |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['per_user'] * 1e6:.1f} | {r['per_user'] * ML20M_USERS:.2f} | "
            f"{r['per_user'] / plain:.1f} | {r['request'] * 1e3:.3f} |"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def bench_data() -> dict[str, object]:
    return make_data(5_000)


@pytest.mark.parametrize("name", list(CASES))
def test_rerank_speed(benchmark, bench_data, name):
    with threadpool_limits(1):
        result = benchmark.pedantic(
            rerank_call(bench_data, name, slice(0, 5_000)), rounds=3, iterations=1
        )
    assert result.items.shape == (5_000, TOP)
    assert (result.counts == TOP).all()
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["us_per_user"] = benchmark.stats.stats.median / 5_000 * 1e6


def test_one_request_under_a_millisecond(bench_data):
    with threadpool_limits(1):
        for name in CASES:
            call = rerank_call(bench_data, name, slice(7, 8))
            assert min(_timed(call) for _ in range(20)) < 1e-3, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = make_data(args.users)
    print(report(measure(data, args.users, args.repeats), args.users))


if __name__ == "__main__":
    main()
