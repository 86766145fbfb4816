"""What a warm start saves an ``als`` retrain: sweeps and seconds, at the same NDCG@10.

Run: ``python benchmarks/warm_start.py [--shape ml-1m|ml-20m]``. A synthetic shop of the
shape's customers, items and density (``growthrec.data.synthetic``) is cut by time: the champion
is fitted on the first 85% of the events (15 sweeps, cold); the retrain gets the first 95%; the
last 5% (what customers bought that they had not before) is the test. The retrain is fitted
cold with 15 sweeps, and warm from the champion's factors (``warm_start_factors``, ids matched)
with fewer; the table gives each fit's seconds and NDCG@10 (the ``judge`` rule's ranking).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from growthrec.core.interactions import interactions_from_codes
from growthrec.data.synthetic import generate_shop
from growthrec.evaluation.bootstrap import ndcg_per_user
from growthrec.evaluation.retraining import split_at, warm_start_factors
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend

SHAPES = {"ml-1m": (6040, 3706, 0.045), "ml-20m": (138_493, 26_744, 0.0054)}
PARAMS = {"factors": 64, "regularization": 0.01, "iterations": 15}


def _ndcg(model, history, holdout) -> float:
    import scipy.sparse as sp

    n_items = history.n_items
    pairs = np.unique(holdout.user_codes.astype(np.int64) * n_items + holdout.item_codes)
    users, items = pairs // n_items, pairs % n_items
    fresh = history.matrix[users, items].A1 == 0
    users, items = users[fresh], items[fresh]
    customers = np.unique(users)
    customers = customers[np.diff(history.matrix.indptr)[customers] > 0]
    keep = np.isin(users, customers)
    truth = sp.csr_matrix(
        (np.ones(keep.sum()), (np.searchsorted(customers, users[keep]), items[keep])),
        shape=(customers.size, n_items),
    )
    lists, _ = recommend(model, customers, 10, n_threads=0)
    return float(ndcg_per_user(lists, truth, 10).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="ml-1m")
    parser.add_argument("--warm", default="2,3,5,8", help="warm sweeps to try")
    args = parser.parse_args()
    users, items, density = SHAPES[args.shape]
    shop = generate_shop(users, items, density, seed=0)
    from growthrec.core.interactions import Events, IdMap

    user_ids, user_codes = np.unique(shop.user_id, return_inverse=True)
    item_ids, item_codes = np.unique(shop.item_id, return_inverse=True)
    events = Events(
        user_codes,
        item_codes,
        IdMap.from_ids(user_ids),
        IdMap.from_ids(item_ids),
        None,
        shop.timestamp.astype(np.float64),
    )
    t85, t95 = np.quantile(events.timestamps, [0.85, 0.95])
    old = events.select(events.timestamps < t85)
    old_data = interactions_from_codes(old.user_codes, old.users, old.item_codes, old.items)
    print(f"{args.shape}: {users:,} x {items:,}, {len(events):,} events", flush=True)
    champion = fit_model(old_data, "als", PARAMS, seed=0)
    new, test = split_at(events.select(events.timestamps < np.inf), t95)
    rows = []
    started = time.perf_counter()
    cold = fit_model(new, "als", PARAMS, seed=0)
    rows.append(("cold", 15, time.perf_counter() - started, _ndcg(cold, new, test)))
    print(rows[-1], flush=True)
    for sweeps in [int(n) for n in args.warm.split(",")]:
        started = time.perf_counter()
        start = warm_start_factors(champion, new, seed=0)
        warm = fit_model(new, "als", {**PARAMS, "iterations": sweeps}, seed=0, start=start)
        rows.append(("warm", sweeps, time.perf_counter() - started, _ndcg(warm, new, test)))
        print(rows[-1], flush=True)
        started = time.perf_counter()
        short = fit_model(new, "als", {**PARAMS, "iterations": sweeps}, seed=0)
        rows.append(("cold", sweeps, time.perf_counter() - started, _ndcg(short, new, test)))
        print(rows[-1], flush=True)
    base = rows[0][3]
    print("\n| start | sweeps | seconds | NDCG@10 | vs cold 15 sweeps |\n|---|---|---|---|---|")
    for kind, sweeps, seconds, ndcg in rows:
        print(f"| {kind} | {sweeps} | {seconds:.2f} | {ndcg:.4f} | {ndcg / base - 1:+.1%} |")


if __name__ == "__main__":
    main()
