"""What recency weights cost at MovieLens-20M's shape: the weights, and lists ranked with them.

The svd model of ``bench_rerank_pipeline`` (a synthetic shop of MovieLens-20M's shape with
purchase times, 64 factors). Measured on one thread: building the weights once per model
(``recency_decay``: one sort of the 20M training pairs), then the plain top 10 for a batch of
customers without recency and with it (each customer's decayed row folded in, instead of the
factors learned for them), and one request of each.

    python -m benchmarks.bench_recency             # 20,000 customers
"""

from __future__ import annotations

import argparse
import time

import attrs
import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.bench_rerank_pipeline import _timed, build_model
from growthrec.core.weighting import recency_decay
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.prepared import prepare

TOP = 10
HALF_LIFE = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    plain = build_model()
    recent = attrs.evolve(plain, recency=HALF_LIFE)
    train = plain.train
    users = np.arange(min(args.users, train.n_users))
    singles = np.linspace(0, train.n_users - 1, 50).astype(np.int64)
    with threadpool_limits(1):
        start = time.perf_counter()
        recency_decay(train.matrix, train.timestamps, HALF_LIFE)
        weights = time.perf_counter() - start
        for model in (plain, recent):
            prepare(model)
        print(
            f"{train.n_users:,} x {train.n_items:,}, {train.nnz:,} pairs; recency weights "
            f"{weights:.2f} s, {train.nnz * 4 / 2**20:.0f} MiB"
        )
        for name, model in (("plain top-10", plain), (f"recency {HALF_LIFE:g} top-10", recent)):
            batch = min(
                _timed(lambda m=model: recommend(m, users, TOP)) for _ in range(2)
            )  # fmt: skip
            request = np.median([
                min(_timed(lambda m=model, u=u: recommend(m, np.array([u]), TOP))
                    for _ in range(3))
                for u in singles
            ])  # fmt: skip
            print(
                f"{name}: {batch / users.size * 1e6:.1f} us a customer over {users.size:,}; "
                f"one request {request * 1e3:.2f} ms"
            )


if __name__ == "__main__":
    main()
