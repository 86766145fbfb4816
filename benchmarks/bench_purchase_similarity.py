"""What ``--similarity purchases`` costs: building its item vectors, and one request's re-ranking.

``vectors``: the truncated SVD (32 dims, one BLAS thread) of the binary 138,493 x 26,744
MovieLens-20M-shape matrix with 20M entries (``bench_models.ml20m_shape``, cached in
``$TMPDIR/growthrec-ml20m-shape.npz``; made on the first run, timed on the next), then the unit
rows MMR and the DPP read: seconds and peak memory (VmHWM, reset after loading) above the
loaded matrix. The pipeline builds this once per model (the first list that asks), then keeps
it.

``request``: a saved model (e.g. Online Retail's tuned sparse_ease) with BLAS on one thread:
one customer's top 10 re-ranked by purchases from the top 200 (MMR 0.3, mmr-mean 0.3, DPP 0.3),
the whole call and its re-ranking alone (the call less the plain top 200 of that customer),
median over ``--asked`` customers, and every customer's lists.

    python -m benchmarks.bench_purchase_similarity vectors
    growthrec train --data .../online_retail.parquet --preset online-retail \\
        --model sparse_ease --param l2=50 --param neighbors=100 --param dropout=0.0 \\
        --output /tmp/or.npz
    python -m benchmarks.bench_purchase_similarity request --model /tmp/or.npz
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from growthrec.core.interactions import interactions_from_matrix
from growthrec.core.item_vectors import item_vectors_for_diversity
from growthrec.core.reranking import RerankSpec, similarity_from_vectors
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.rules import ListSpec
from growthrec.store.modelfile import load_model

CACHE = Path(tempfile.gettempdir()) / "growthrec-ml20m-shape.npz"


def cases(similarity: str = "purchases") -> dict[str, RerankSpec]:
    """The re-rankers a request is timed with, comparing items by ``similarity``."""
    return {
        "mmr 0.3": RerankSpec("mmr", 0.3, similarity=similarity),
        "mmr-mean 0.3": RerankSpec("mmr", 0.3, similarity=similarity, aggregate="mean"),
        "dpp 0.3": RerankSpec("dpp", 0.3, similarity=similarity),
    }


def _status_gb(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (the peak) of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _reset_peak() -> None:
    """Start the peak (VmHWM) afresh, so it is the SVD's and not the loading's."""
    Path("/proc/self/clear_refs").write_text("5")


def vectors() -> None:
    """Seconds and peak memory of the purchase vectors at MovieLens-20M shape."""
    if not CACHE.exists():
        from benchmarks.bench_models import ml20m_shape

        sp.save_npz(CACHE, ml20m_shape(), compressed=False)
        print(f"wrote {CACHE}; run again to time the vectors")
        return
    matrix = sp.load_npz(CACHE).tocsr()
    train = interactions_from_matrix(matrix)
    del matrix
    _reset_peak()
    before = _status_gb("VmRSS")
    print(f"matrix {train.n_users} x {train.n_items}, {train.matrix.nnz} entries; "
          f"RSS before {before:.2f} GB", flush=True)  # fmt: skip
    start = time.perf_counter()
    item_vectors = item_vectors_for_diversity(train, seed=0)
    svd = time.perf_counter() - start
    table = similarity_from_vectors(item_vectors, "purchase vectors")
    total = time.perf_counter() - start
    after = _status_gb("VmHWM")
    print(
        f"svd {svd:.1f} s, with the unit rows {total:.1f} s; vectors {item_vectors.shape} "
        f"({table.table.nbytes / 2**20:.1f} MB); peak RSS {after:.2f} GB "
        f"(+{(after - before) * 1024:.0f} MB over the loaded matrix)"
    )


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def request(model_path: Path, asked: int, similarity: str = "purchases") -> None:
    """One customer's re-ranking (by purchases, or ``similarity``), and every customer's
    lists, on one thread."""
    model = load_model(model_path)
    n_users = model.train.n_users
    users = np.random.default_rng(0).choice(n_users, size=min(asked, n_users), replace=False)
    candidates = ListSpec(n=200)
    with threadpool_limits(1):
        start = time.perf_counter()
        recommend(model, users[:1], spec=ListSpec(n=10, rerank=cases(similarity)["mmr 0.3"]))
        print(f"first list (builds the {similarity} table): {time.perf_counter() - start:.2f} s")
        plain = [_timed(lambda u=u: recommend(model, [u], spec=candidates)) for u in users]
        print(f"plain top 200, one request: {statistics.median(plain) * 1e3:.2f} ms (median)")
        every = np.arange(n_users)
        t = _timed(lambda: recommend(model, every, 10))
        print(f"plain top 10, all {n_users:,} customers: {t:.2f} s")
        for name, spec in cases(similarity).items():
            listed = ListSpec(n=10, rerank=spec)
            calls = [_timed(lambda u=u, s=listed: recommend(model, [u], spec=s)) for u in users]
            own = [c - p for c, p in zip(calls, plain, strict=True)]
            t = _timed(lambda listed=listed: recommend(model, every, spec=listed))
            print(
                f"{name} by {similarity}: one request {statistics.median(calls) * 1e3:.2f} ms, "
                f"its re-ranking {statistics.median(own) * 1e3:.2f} ms (medians); "
                f"all {n_users:,} customers' lists {t:.2f} s"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["vectors", "request"])
    parser.add_argument("--model", type=Path, default=None, help="model file (request)")
    parser.add_argument("--asked", type=int, default=300, help="customers asked in turn")
    parser.add_argument(
        "--similarity", default="purchases", help="request: what items are compared by"
    )
    args = parser.parse_args()
    if args.part == "vectors":
        vectors()
    elif args.model is None:
        parser.error("request needs --model FILE")
    else:
        request(args.model, args.asked, args.similarity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
