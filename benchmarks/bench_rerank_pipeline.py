"""Re-ranked lists through the whole pipeline at MovieLens-20M's shape, against the plain top 10.

A synthetic shop of MovieLens-20M's shape (``generate_shop(138_493, 26_744, 20M rows)``, seed
0, as ``bench_scale`` builds it) and an svd model (64 factors) fitted on it with the shop's
categories. For each re-ranker: ``recommend(model, users, spec=ListSpec(n=10, rerank=...))``
(the top 200 candidates, then the re-ranking) against ``recommend(model, users, 10)`` (the
plain top 10), over a batch of users on one thread; and one request (one user): the whole
call, and its re-ranking alone (the call less the plain top 200 of that user); and the first
request, which builds the tables a case needs once per model (the coverage boosts rank every
customer's candidates up to C / 0.02 times). The plain top 200 alone shows what the candidates
cost: the pruned top-10 of a factor model skips most items, the top 200 cannot. The peer:
implicit's ``recommend`` (its C++ top-k over every score, one thread) on the very same factors
and purchases, top 10 and top 200, where implicit is installed.

    python -m benchmarks.bench_rerank_pipeline                 # 20,000 users
    python -m benchmarks.bench_rerank_pipeline --users 138493  # every user
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from growthrec.core.interactions import IdMap, factorize, interactions_from_codes
from growthrec.core.model import Model
from growthrec.core.reranking import RerankSpec
from growthrec.data.synthetic import generate_shop
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.rules import ListSpec

USERS, ITEMS, ROWS = 138_493, 26_744, 20_000_000
FACTORS = 64
TOP = 10

CASES: dict[str, ListSpec | None] = {
    "plain top-10": None,
    "plain top-200 (the candidates alone)": ListSpec(n=200),
    "popularity penalty 0.1": ListSpec(n=TOP, rerank=RerankSpec(popularity_penalty=0.1)),
    "mmr 0.3, categories": ListSpec(n=TOP, rerank=RerankSpec("mmr", 0.3)),
    "mmr 0.3 + popularity 0.1": ListSpec(n=TOP, rerank=RerankSpec("mmr", 0.3, 0.1)),
    "mmr 0.3, factors": ListSpec(n=TOP, rerank=RerankSpec("mmr", 0.3, similarity="factors")),
    "dpp 0.3, categories": ListSpec(n=TOP, rerank=RerankSpec("dpp", 0.3)),
    "calibration 0.3": ListSpec(n=TOP, rerank=RerankSpec("calibration", 0.3)),
    "mmr 0.3, categories, from the top 50": ListSpec(
        n=TOP, rerank=RerankSpec("mmr", 0.3), candidates=50
    ),
    "coverage 0.5": ListSpec(n=TOP, rerank=RerankSpec(coverage=0.5)),
    "mmr 0.3 + coverage 0.5": ListSpec(n=TOP, rerank=RerankSpec("mmr", 0.3, coverage=0.5)),
}


def build_model(seed: int = 0) -> Model:
    """The svd model of a MovieLens-20M-shape synthetic shop, with its item categories."""
    shop = generate_shop(USERS, ITEMS, ROWS / (USERS * ITEMS), seed=seed)
    user_ids, user_codes = factorize(shop.user_id)
    item_ids, item_codes = factorize(shop.item_id)
    users = IdMap(user_ids, np.arange(user_ids.size))
    items = IdMap(item_ids, np.arange(item_ids.size))
    data = interactions_from_codes(
        user_codes, users, item_codes, items, shop.quantity, shop.timestamp.astype(np.float64)
    )
    category = dict(zip(shop.catalog_item_id.tolist(), shop.catalog_category.tolist(), strict=True))
    attributes = {"category": np.array([category[i] for i in item_ids.tolist()], dtype=str)}
    return fit_model(data, "svd", {"factors": FACTORS}, seed=seed, item_attributes=attributes)


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(model: Model, n_users: int, repeats: int = 2) -> dict[str, dict[str, float]]:
    """Per case: seconds per user over ``n_users`` users (best of ``repeats``), the median
    single request and its re-ranking part (over 50 users), and the first request, which
    builds what the case needs once per model (similarity tables, coverage boosts)."""
    users = np.arange(min(n_users, model.train.n_users))
    singles = np.linspace(0, model.train.n_users - 1, 50).astype(np.int64)
    top200 = ListSpec(n=200)
    out: dict[str, dict[str, float]] = {}
    first: dict[str, float] = {}
    with threadpool_limits(1):
        for name, spec in CASES.items():  # build the prepared tables once: the first request
            first[name] = _timed(lambda spec=spec: recommend(model, singles[:1], TOP, spec=spec))
        for u in singles[1:5]:  # and warm them
            for spec in CASES.values():
                recommend(model, np.array([u]), TOP, spec=spec)
        base = {int(u): min(_timed(lambda u=u: recommend(model, np.array([u]), spec=top200))
                            for _ in range(3)) for u in singles}  # fmt: skip
        for name, spec in CASES.items():
            batch = min(
                _timed(lambda spec=spec: recommend(model, users, TOP, spec=spec))
                for _ in range(repeats)
            )
            request = [
                min(_timed(lambda u=u, s=spec: recommend(model, np.array([u]), TOP, spec=s))
                    for _ in range(3))
                for u in singles
            ]  # fmt: skip
            reranking = [r - base[int(u)] for r, u in zip(request, singles, strict=True)]
            out[name] = {
                "per_user": batch / users.size,
                "request": float(np.median(request)),
                "reranking": float(np.median(reranking)) if spec and spec.reorders else 0.0,
                "first": first[name],
            }
    return out


def implicit_peer(model: Model, n_users: int) -> dict[str, dict[str, float]]:
    """implicit's ``recommend`` on this model's factors (purchases filtered), one thread."""
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        return {}
    from growthrec.backends.contract import dot_product_factors
    from growthrec.backends.registry import get_backend

    item_factors, user_factors = dot_product_factors(get_backend(model.backend))
    users = np.arange(min(n_users, model.train.n_users))
    rows = model.train.matrix[users].tocsr()
    peer = AlternatingLeastSquares(factors=FACTORS, num_threads=1)
    peer.item_factors = np.ascontiguousarray(item_factors(model.arrays, model.params), np.float32)
    peer.user_factors = np.ascontiguousarray(
        user_factors(model.arrays, model.params, rows, users), np.float32
    )
    out = {}
    with threadpool_limits(1):
        peer.recommend(users[:1000], rows[:1000], N=TOP)  # warm up
        for n in (TOP, 200):
            seconds = _timed(lambda n=n: peer.recommend(users, rows, N=n))
            out[f"implicit recommend, top-{n} (same factors)"] = {
                "per_user": seconds / users.size,
                "request": float("nan"),
                "reranking": 0.0,
            }
    return out


def _ms(seconds: float) -> str:
    return "—" if np.isnan(seconds) else f"{seconds * 1e3:.2f}"


def report(results: dict[str, dict[str, float]], n_users: int) -> str:
    """The figures as Markdown: µs per user, x plain, the whole count, one request."""
    plain = results["plain top-10"]["per_user"]
    lines = [
        f"recommend() at MovieLens-20M shape (svd, {FACTORS} factors), top {TOP} re-ranked from "
        f"the top 200, {n_users:,} users, one thread",
        "",
        "| lists | µs / user | x plain top-10 | 138,493 users (s) | one request (ms) | "
        "its re-ranking (ms) | first request (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        first = r.get("first", float("nan"))
        lines.append(
            f"| {name} | {r['per_user'] * 1e6:.1f} | {r['per_user'] / plain:.2f} | "
            f"{r['per_user'] * USERS:.1f} | {_ms(r['request'])} | {_ms(r['reranking'])} | "
            f"{'—' if np.isnan(first) else f'{first:.2f}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    model = build_model()
    print(f"model built and fitted in {time.perf_counter() - start:.0f} s")
    results = measure(model, args.users, args.repeats) | implicit_peer(model, args.users)
    print(report(results, min(args.users, USERS)))


if __name__ == "__main__":
    main()
