"""Which svd default ranks better on real data: plain projection or L2-normalised factors?

Run: ``python benchmarks/svd_normalize.py`` (needs ../shared/data); prints a Markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from growthrec.core.interactions import Interactions, build_interactions
from growthrec.core.split import split_leave_one_out, split_ratio
from growthrec.evaluation import evaluate_backend
from growthrec.tables import Columns, read_interactions

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def movielens_small() -> Interactions:
    """ml-latest-small, every rating an interaction."""
    return read_interactions(
        SHARED / "ml-latest-small" / "ratings.csv",
        Columns(user="userId", item="movieId", weight="rating", time="timestamp"),
    )


def online_retail() -> Interactions:
    """UCI Online Retail without missing customers, cancellations, non-positive quantity/price."""
    table = pq.read_table(SHARED / "online-retail" / "online_retail.parquet")
    keep = pc.and_(
        pc.and_(
            pc.is_valid(table["CustomerID"]), pc.invert(pc.starts_with(table["InvoiceNo"], "C"))
        ),
        pc.and_(pc.greater(table["Quantity"], 0), pc.greater(table["UnitPrice"], 0)),
    )
    table = table.filter(keep)
    seconds = pc.cast(pc.cast(table["InvoiceDate"], pa.timestamp("s")), pa.int64()).to_numpy()
    return build_interactions(
        table["CustomerID"].to_numpy(),
        np.asarray(table["StockCode"].to_pylist(), dtype=str),
        table["Quantity"].to_numpy(),
        seconds,
    )


def main() -> int:
    if not SHARED.is_dir():
        print(f"{SHARED} is absent", file=sys.stderr)
        return 1
    cases = [
        ("ml-latest-small", "ratio 0.2", split_ratio(movielens_small(), seed=0)),
        (
            "Online Retail",
            "leave-one-out latest",
            split_leave_one_out(online_retail(), by="latest", seed=0),
        ),
    ]
    print(
        "| dataset | protocol | factors | NDCG@10 plain | NDCG@10 normalised "
        "| coverage@10 plain | coverage@10 normalised |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, protocol, split in cases:
        for factors in (20, 50, 100):
            plain, norm = (
                evaluate_backend(
                    split, "svd", {"factors": factors, "normalize": n}, ks=[10]
                ).metrics[10]
                for n in (False, True)
            )
            print(
                f"| {name} | {protocol} | {factors} | {plain['ndcg']:.3f} | {norm['ndcg']:.3f} "
                f"| {plain['coverage']:.3f} | {norm['coverage']:.3f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
