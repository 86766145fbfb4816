"""Cold start on real data, against the baselines the issue names; the README's tables.

Cold-items protocol (the newest 20% of the bought items held out entirely, seed 0) on
ml-latest-small (ratings >= 4; genres:multi + title:text) and Online Retail (Description:text
+ UnitPrice:numeric), full ranking, NDCG@10 on the three tasks (cold, overall, warm):

* popularity within category: a cold item scored by the customer's share of purchases in its
  category times the category's share of all purchases (an item in several categories: the
  mean over them). ml-latest-small: the genres. Online Retail has no category column, so the
  candidates are the first word of the Description, its last word (the product's kind: BAG,
  HOLDER, MUG...) and the UnitPrice bucket; the one best on the validation split is used;
* the content profile of the issue's prior: the customer's share of each category, summed
  over the item's categories (the same categories as above);
* LightFM (WARP loss) with the same item features as raw 0/1 indicators, not L1-normalised,
  with or without a per-item identity feature, tuned on the validation split (components,
  epochs, identity). A benchmark-only dependency: ``pip install --no-build-isolation
  lightfm`` (1.17's setup.py assigns to ``__builtins__``, which fails under current pip:
  patch it to ``import builtins; builtins.__LIGHTFM_SETUP__ = True``). Skipped if absent;
* growthrec's models with the same features (defaults): svd, als, ease, itemknn, content,
  and svd and als without features (the warm task's reference). The best on the validation
  split's cold task is marked.

Cold customers on Online Retail (the newest 20% of customers, their Country, and their first
purchase where they have one): svd and als against popularity within the customer's country.

``--scale``: the feature map's fit time at MovieLens-20M shape (synthetic: 138,493 x 26,744,
20M rows; a genres-like multi-valued column, brand, category, a 5,000-word title vocabulary)
against the svd fit it is added to.

    python -m benchmarks.bench_coldstart                 # both datasets (a few minutes)
    python -m benchmarks.bench_coldstart --dataset movielens
    python -m benchmarks.bench_coldstart --scale         # MovieLens-20M shape (2 GiB, minutes)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from growthrec.cli.main import build_parser
from growthrec.cli.options import LoadedData, load_data
from growthrec.core.features import Features
from growthrec.core.metrics import MetricTotals
from growthrec.core.ranking import top_k_batched
from growthrec.core.split import Split
from growthrec.evaluation.protocols import Protocol, make_split, make_validation_split
from growthrec.evaluation.runs import evaluate_backend

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {
    "movielens": [
        "--data",
        str(DATA / "ml-latest-small" / "ratings.csv"),
        "--preset",
        "movielens",
        "--min-weight",
        "4",
    ],
    "online-retail": [
        "--data",
        str(DATA / "online-retail" / "online_retail.parquet"),
        "--preset",
        "online-retail",
    ],
}
K = 10
TASKS = ("cold", "overall", "warm")
GROWTHREC = ("svd", "als", "ease", "itemknn", "content")
#: The hybrid at its defaults (content weights chosen on both datasets' validation splits), on
#: each base model.
HYBRIDS = (("hybrid", {}), ("hybrid", {"base": "als", "factors": 64}))
WITHOUT_FEATURES = ("svd", "als")
LIGHTFM_GRID = [
    {"no_components": c, "epochs": e, "identity": i}
    for c in (32, 64)
    for e in (10, 30)
    for i in (False, True)
]
#: A function from training row indices to their scores of every item.
Scorer = Callable[[np.ndarray], np.ndarray]


def load(name: str) -> LoadedData:
    """The dataset with its preset's features, read as ``growthrec evaluate --features`` does."""
    args = build_parser().parse_args(["evaluate", *DATASETS[name], "--features"])
    return load_data(args)


# ranking any scores like the protocol's tasks


def _columns(test: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    out = sp.csr_matrix(test.multiply(keep.astype(np.float32)[None, :]), dtype=np.float32)
    out.eliminate_zeros()
    return out


def task_items(split: Split) -> dict[str, np.ndarray | None]:
    """What each task ranks among: the held-out items, every item, the items bought in train."""
    n_items = split.train.n_items
    seen = np.bincount(split.train.matrix.indices, minlength=n_items) > 0
    return {"cold": np.asarray(split.cold_items, dtype=bool), "overall": None, "warm": seen}


def score_tasks(split: Split, scorer: Scorer, tasks: Sequence[str] = TASKS) -> dict[str, float]:
    """NDCG@10 of ``scorer``'s full ranking on each task, as ``evaluate_tasks`` computes it."""
    train = split.train.matrix
    n_items = train.shape[1]
    out = {}
    for name, keep in task_items(split).items():
        if name not in tasks:
            continue
        truth = split.test if keep is None else _columns(split.test, keep)
        users = np.flatnonzero(np.diff(truth.indptr))
        items, _ = top_k_batched(
            lambda a, b, users=users: scorer(users[a:b]),
            users.size,
            n_items,
            K,
            exclude_rows=train[users],
            allow_items=None if keep is None else np.flatnonzero(keep),
        )
        totals = MetricTotals((K,), n_items)
        totals.add(items, truth[users])
        out[name] = float(totals.result()[K]["ndcg"])
    return out


# the baselines


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """1 where ``matrix`` is nonzero, float32."""
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m


def one_hot(values: Sequence[str]) -> sp.csr_matrix:
    """Items x distinct values, 1 where the item has the value ("" is no value)."""
    values = np.asarray(values, dtype=str)
    names, codes = np.unique(values, return_inverse=True)
    keep = values != ""
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (np.flatnonzero(keep), codes[keep])),
        shape=(values.size, names.size),
    )


def multi_hot(values: Sequence[str], separator: str = "|") -> sp.csr_matrix:
    """Items x distinct parts of ``"a|b"`` values."""
    parts = [[p for p in str(v).split(separator) if p] for v in values]
    names = sorted({p for ps in parts for p in ps})
    index = {p: n for n, p in enumerate(names)}
    rows = np.repeat(np.arange(len(parts)), [len(ps) for ps in parts])
    cols = np.array([index[p] for ps in parts for p in ps], dtype=np.int64)
    return sp.csr_matrix(
        (np.ones(rows.size, np.float32), (rows, cols)), shape=(len(parts), len(names))
    )


def feature_block(features: Features, column: str) -> sp.csr_matrix:
    """The block of ``features`` that encodes ``column``, as 0/1."""
    start = 0
    for spec in features.specs:
        stop = start + spec.vocabulary.size
        if spec.column == column:
            return binary(features.matrix[:, start:stop])
        start = stop
    raise KeyError(column)


def category_shares(train: sp.csr_matrix, categories: sp.csr_matrix) -> sp.csr_matrix:
    """Each customer's share of purchases in each category (rows sum to 1 over purchases)."""
    bought = binary(train)
    counts = np.maximum(np.asarray(bought.sum(axis=1)).ravel(), 1.0)
    return sp.csr_matrix(sp.diags(1.0 / counts) @ (bought @ categories))


def popularity_within_category(train: sp.csr_matrix, categories: sp.csr_matrix) -> Scorer:
    """Score = mean over the item's categories of (customer's share x category's share)."""
    shares = category_shares(train, categories)
    totals = np.asarray((binary(train) @ categories).sum(axis=0)).ravel()
    popularity = totals / max(totals.sum(), 1.0)
    per_item = np.maximum(np.asarray(categories.sum(axis=1)).ravel(), 1.0)
    mean = sp.csr_matrix(sp.diags(1.0 / per_item) @ categories)
    weighted = sp.csr_matrix(shares.multiply(popularity[None, :]))
    return lambda users: np.asarray((weighted[users] @ mean.T).toarray(), dtype=np.float32)


def content_profile(train: sp.csr_matrix, categories: sp.csr_matrix) -> Scorer:
    """The issue's prior: the customer's share of each category, summed over the item's."""
    shares = category_shares(train, categories)
    return lambda users: np.asarray((shares[users] @ categories.T).toarray(), dtype=np.float32)


def online_retail_categories(loaded: LoadedData) -> dict[str, sp.csr_matrix]:
    """Candidate categories for Online Retail: first and last Description word, price bucket."""
    words = [str(d).split() for d in loaded.attributes["Description"]]
    return {
        "Description's first word": one_hot([w[0] if w else "" for w in words]),
        "Description's last word": one_hot([w[-1] if w else "" for w in words]),
        "UnitPrice bucket": feature_block(loaded.item_features, "UnitPrice"),
    }


def movielens_categories(loaded: LoadedData) -> dict[str, sp.csr_matrix]:
    return {"genres": multi_hot(loaded.attributes["category"])}


# LightFM


def lightfm_scorer(
    train: sp.csr_matrix, features: Features, params: Mapping[str, Any], seed: int = 0
) -> Scorer:
    """LightFM (WARP) fitted on ``train`` with raw 0/1 item features (and an identity column
    per item when ``params["identity"]``); scores from its representations."""
    from lightfm import LightFM

    item_features = binary(features.matrix)
    if params["identity"]:
        identity = sp.identity(train.shape[1], dtype=np.float32, format="csr")
        item_features = sp.hstack([identity, item_features], format="csr")
    model = LightFM(
        no_components=params["no_components"], loss="warp", learning_rate=0.05, random_state=seed
    )
    model.fit(
        binary(train).tocoo(),
        item_features=item_features,
        epochs=params["epochs"],
        num_threads=2,
    )
    item_bias, item_vectors = model.get_item_representations(item_features)
    _, user_vectors = model.get_user_representations()
    return lambda users: (user_vectors[users] @ item_vectors.T + item_bias[None, :]).astype(
        np.float32
    )


def have_lightfm() -> bool:
    try:
        import lightfm  # noqa: F401
    except ImportError:
        return False
    return True


# the tables


def growthrec_tasks(
    split: Split,
    backend: str,
    features: Features | None,
    tasks: Sequence[str] = TASKS,
    params: Mapping[str, Any] | None = None,
) -> tuple[dict[str, float], float]:
    """growthrec's NDCG@10 on each task through the protocol itself, and the fit seconds."""
    result = evaluate_backend(split, backend, params, ks=(K,), seed=0, item_features=features)
    values = {name: float(t.metrics[K]["ndcg"]) for name, t in result.tasks.items()}
    return {name: values[name] for name in tasks}, result.fit_seconds


def cold_items_rows(name: str, baselines: bool = True) -> list[dict[str, Any]]:
    """Every method's validation cold task and test tasks on dataset ``name`` (without the
    popularity, content-profile and LightFM rows unless ``baselines``)."""
    loaded = load(name)
    events, features = loaded.events, loaded.item_features
    protocol = Protocol("cold-items", test_fraction=0.2)
    split = make_split(events, protocol, seed=0, item_features=features)
    valid = make_validation_split(events, protocol, seed=0, item_features=features)
    rows: list[dict[str, Any]] = []

    def add(method: str, valid_cold: float, test: Mapping[str, float], **extra: Any) -> None:
        rows.append({"method": method, "validation cold": valid_cold, **test, **extra})
        print(json.dumps({"dataset": name, **rows[-1]}), flush=True)

    if baselines:
        add_baselines(add, name, loaded, split, valid)
    for backend in GROWTHREC:
        valid_cold = growthrec_tasks(valid, backend, features, ("cold",))[0]["cold"]
        test, seconds = growthrec_tasks(split, backend, features)
        add(f"growthrec {backend} + features", valid_cold, test, fit_seconds=round(seconds, 2))
    for backend, params in HYBRIDS:
        valid_cold = growthrec_tasks(valid, backend, features, ("cold",), params)[0]["cold"]
        test, seconds = growthrec_tasks(split, backend, features, TASKS, params)
        shown = "".join(f", {k}={v}" for k, v in params.items())
        add(
            f"growthrec {backend}{shown} + features",
            valid_cold,
            test,
            fit_seconds=round(seconds, 2),
        )
    for backend in WITHOUT_FEATURES:
        test, seconds = growthrec_tasks(split, backend, None)
        add(f"growthrec {backend}, no features", float("nan"), test, fit_seconds=round(seconds, 2))
    ours = [r for r in rows if r["method"].startswith("growthrec") and "+ features" in r["method"]]
    max(ours, key=lambda r: r["validation cold"])["method"] += " (validation's pick)"
    return rows


def add_baselines(
    add: Callable[..., None],
    name: str,
    loaded: LoadedData,
    split: Split,
    valid: Split,
) -> None:
    """The rows of popularity within category, the content profile and LightFM."""
    features, train = loaded.item_features, split.train.matrix
    categories = (movielens_categories if name == "movielens" else online_retail_categories)(loaded)
    valid_pop = {
        what: score_tasks(valid, popularity_within_category(valid.train.matrix, c), ("cold",))
        for what, c in categories.items()
    }
    best = max(valid_pop, key=lambda what: valid_pop[what]["cold"])
    chosen = categories[best]
    add(
        f"popularity within category ({best})",
        valid_pop[best]["cold"],
        score_tasks(split, popularity_within_category(train, chosen)),
        others={w: round(v["cold"], 4) for w, v in valid_pop.items()},
    )
    add(
        f"content profile, the issue's prior ({best} shares)",
        score_tasks(valid, content_profile(valid.train.matrix, chosen), ("cold",))["cold"],
        score_tasks(split, content_profile(train, chosen)),
    )
    if have_lightfm():
        tried = []
        for params in LIGHTFM_GRID:
            scorer = lightfm_scorer(valid.train.matrix, features, params)
            tried.append((score_tasks(valid, scorer, ("cold",))["cold"], params))
        valid_cold, params = max(tried, key=lambda t: t[0])
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        add(
            f"LightFM WARP, raw 0/1 features ({shown})",
            valid_cold,
            score_tasks(split, lightfm_scorer(train, features, params)),
        )
    else:
        print("lightfm is not installed: its row is left out", flush=True)


def cold_users_rows() -> list[dict[str, Any]]:
    """Online Retail's new customers: svd and als from Country (and their first purchase)
    against popularity within their country."""
    loaded = load("online-retail")
    protocol = Protocol("cold-users", test_fraction=0.2, first_purchase=True)
    split = make_split(
        loaded.events,
        protocol,
        seed=0,
        item_features=loaded.item_features,
        user_features=loaded.user_features,
    )
    train = split.train.matrix
    countries = binary(loaded.user_features.matrix)
    bought = binary(train)
    # distinct buyers of each item among each country's training customers
    by_country = np.asarray((countries.T @ bought).toarray(), dtype=np.float32)
    users = np.flatnonzero(np.diff(split.test.indptr))
    rows = []
    for task, exclude in (("both", split.first_purchases), ("features", None)):
        items, _ = top_k_batched(
            lambda a, b: np.asarray(countries[users[a:b]] @ by_country, dtype=np.float32),
            users.size,
            train.shape[1],
            K,
            exclude_rows=None if exclude is None else exclude[users],
        )
        totals = MetricTotals((K,), train.shape[1])
        totals.add(items, split.test[users])
        rows.append(
            {
                "method": "popularity within country",
                "task": task,
                "ndcg": totals.result()[K]["ndcg"],
            }
        )
    for backend in ("svd", "als"):
        result = evaluate_backend(
            split,
            backend,
            ks=(K,),
            seed=0,
            item_features=loaded.item_features,
            user_features=loaded.user_features,
        )
        for task, values in result.tasks.items():
            rows.append(
                {
                    "method": f"growthrec {backend}",
                    "task": task,
                    "ndcg": float(values.metrics[K]["ndcg"]),
                }
            )
    for row in rows:
        print(json.dumps({"dataset": "online-retail cold users", **row}), flush=True)
    return rows


def scale_rows(rounds: int = 3) -> list[dict[str, Any]]:
    """The feature map's fit time at MovieLens-20M shape beside the svd fit it is added to:
    the map alone (``fit_coldstart``: the ridge map, the mapped and blended factors, the
    stored rows of items nobody bought) timed apart, as the two fits' difference drowns in
    the noise of a shared machine; each the best of ``rounds``."""
    from growthrec.backends.registry import get_backend
    from growthrec.core.coldstart import ColdStart
    from growthrec.core.features import fit_features
    from growthrec.core.interactions import build_interactions
    from growthrec.data.synthetic import generate_shop
    from growthrec.pipeline.coldstart import fit_coldstart
    from growthrec.pipeline.fitting import fit_model

    n_users, n_items, n_rows = 138_493, 26_744, 20_000_000
    shop = generate_shop(n_users, n_items, n_rows / (n_users * n_items), seed=0)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity)
    del shop
    rng = np.random.default_rng(0)
    vocabulary = np.array([f"w{k}" for k in range(20_000)])
    zipf = 1.0 / np.arange(1, vocabulary.size + 1)
    titles = [
        " ".join(rng.choice(vocabulary, rng.integers(2, 7), p=zipf / zipf.sum()))
        for _ in range(n_items)
    ]
    genres = [
        "|".join(rng.choice([f"g{k}" for k in range(20)], rng.integers(1, 4), replace=False))
        for _ in range(n_items)
    ]
    columns = {
        "genres": np.array(genres),
        "title": np.array(titles),
        "brand": rng.choice([f"b{k}" for k in range(500)], n_items),
        "category": rng.choice([f"c{k}" for k in range(50)], n_items),
    }
    kinds = (
        ("genres", "multi"),
        ("title", "text"),
        ("brand", "category"),
        ("category", "category"),
    )
    features = fit_features(kinds, columns, n_items)
    impl = get_backend("svd")
    fits, maps = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        model = fit_model(data, "svd", {"factors": 64}, seed=0)
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        fit_coldstart(
            impl, model.arrays, model.params, data.matrix, "binary", features, None, ColdStart()
        )
        maps.append(time.perf_counter() - start)
    fit, added = min(fits), min(maps)
    row = {
        "shape": f"{n_users:,} x {n_items:,}, {n_rows:,} rows ({data.nnz:,} pairs)",
        "features": f"{features.n_features:,} ({features.matrix.nnz:,} nonzeros)",
        "svd fit, 64 factors (s)": round(fit, 2),
        "feature map (s)": round(added, 2),
        "map / fit": f"{added / fit:.1%}",
    }
    print(json.dumps(row), flush=True)
    return [row]


def markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A README table: one line per row, numbers to 4 places."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "–" if np.isnan(value) else f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    parser.add_argument("--scale", action="store_true", help="only the MovieLens-20M-shape timing")
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="growthrec's models only (no popularity, content profile, LightFM, cold customers)",
    )
    args = parser.parse_args(argv)
    if args.scale:
        rows = scale_rows()
        print(markdown(rows, list(rows[0])))
        return
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    tables = {}
    for name in names:
        tables[name] = cold_items_rows(name, not args.no_baselines)
    users = cold_users_rows() if "online-retail" in names and not args.no_baselines else []
    for name, rows in tables.items():
        print(f"\n{name}, cold-items protocol, NDCG@10 (full ranking, seed 0)\n")
        print(markdown(rows, ["method", "validation cold", *TASKS]))
    if users:
        print("\nonline-retail, cold customers (Country; first purchase where they have one)\n")
        print(markdown(users, ["method", "task", "ndcg"]))


if __name__ == "__main__":
    main()


def test_scorers_match_the_protocol_on_a_small_shop() -> None:
    """The baselines' ranking helper gives a growthrec model's NDCG@10 exactly as the protocol's
    ``evaluate_tasks`` does, on every task (so the table compares like with like)."""
    from growthrec.core.features import fit_features
    from growthrec.core.interactions import Events, IdMap
    from growthrec.data.synthetic import generate_shop
    from growthrec.pipeline.fitting import fit_model
    from growthrec.pipeline.scores import scores

    shop = generate_shop(300, 60, 0.08, seed=2)
    users = IdMap.from_ids(np.unique(shop.user_id))
    items = IdMap.from_ids(np.unique(shop.item_id))
    events = Events(
        users.index(shop.user_id), items.index(shop.item_id), users, items, None, shop.timestamp
    )
    position = {item: n for n, item in enumerate(shop.catalog_item_id.tolist())}
    order = np.array([position[i] for i in items.ids.tolist()])
    line = {"line": shop.catalog_line[order]}
    features = fit_features((("line", "category"),), line, len(items))
    split = make_split(events, Protocol("cold-items"), seed=0, item_features=features)
    model = fit_model(split.train, "content", seed=0, item_features=features)
    ours = score_tasks(split, lambda rows: scores(model, rows))
    protocol = evaluate_backend(split, "content", ks=(K,), seed=0, item_features=features)
    for task in TASKS:
        assert ours[task] == protocol.tasks[task].metrics[K]["ndcg"]
        assert 0 < ours[task] < 1
