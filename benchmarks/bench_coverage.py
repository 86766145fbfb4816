"""What the coverage boosts cost on a saved model: building them, and a request afterwards.

The boosts are built once per model and setting, on the first list that asks (or at load with
``serve --warm``): every customer's top 200, then up to C / 0.02 rounds of re-ranking them
all. For each setting, on a freshly loaded model with BLAS on one thread: the first request
(the purchase vectors MMR and the DPP read are built beforehand, so it times the boosts alone),
and the median of the next ``--asked`` requests. At MovieLens-20M shape the first request is
timed by ``bench_rerank_pipeline``'s "first request" column.

    growthrec train --data .../online_retail.parquet --preset online-retail \\
        --model sparse_ease --param l2=50 --param neighbors=100 --output /tmp/or.npz
    python -m benchmarks.bench_coverage --model /tmp/or.npz
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.bench_rerank_pipeline import _timed
from growthrec.core.reranking import RerankSpec
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.rules import ListSpec
from growthrec.store.modelfile import load_model

SETTINGS = {
    "boosts 0.5": RerankSpec(coverage=0.5),
    "penalty 0.5 + boosts 0.6 + mmr-mean 0.35 by purchases": RerankSpec(
        "mmr", 0.35, 0.5, "purchases", aggregate="mean", coverage=0.6
    ),
}


def measure(path: Path, asked: int) -> dict[str, tuple[float, float]]:
    """Per setting: (first request s, median later request s), each on a fresh model."""
    out = {}
    with threadpool_limits(1):
        for name, rerank in SETTINGS.items():
            model = load_model(path)
            vectors = ListSpec(rerank=RerankSpec("mmr", 0.3, similarity="purchases"))
            recommend(model, np.zeros(1, np.int64), spec=vectors)  # the purchase vectors
            spec = ListSpec(rerank=rerank)
            first = _timed(lambda s=spec, m=model: recommend(m, np.zeros(1, np.int64), spec=s))
            users = np.linspace(0, model.train.n_users - 1, asked).astype(np.int64)
            later = [
                _timed(lambda u=u, s=spec, m=model: recommend(m, np.array([u]), spec=s))
                for u in users
            ]
            out[name] = (first, statistics.median(later))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model file")
    parser.add_argument("--asked", type=int, default=100, help="later requests timed")
    args = parser.parse_args()
    print("| setting | first request (s) | later request (ms) |")
    print("|---|---|---|")
    for name, (first, later) in measure(args.model, args.asked).items():
        print(f"| {name} | {first:.2f} | {later * 1e3:.2f} |")


if __name__ == "__main__":
    main()
