"""add-items at MovieLens-20M's item count: 1,000 new products into a 26,744-item svd model.

The model is fitted once on a synthetic shop with MovieLens-20M's number of items (fewer
customers: 20,000, and 2M purchases) and product features (brand, category, price); then
1,000 new products (new SKUs with the features of existing ones) are added. Timed: the
in-memory ``add_items`` (the target: under one second), writing the model file, and the whole
``growthrec add-items`` command (load, add, write), each the median of a few rounds.

    python -m benchmarks.bench_add_items            # prints the times as JSON
    python -m pytest benchmarks/bench_add_items.py  # the same, as pytest-benchmark rounds
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from growthrec.cli.main import main as cli
from growthrec.core.features import fit_features
from growthrec.core.interactions import build_interactions
from growthrec.core.model import Model
from growthrec.data.files import write_table
from growthrec.data.synthetic import generate_shop
from growthrec.pipeline.catalog import add_items
from growthrec.pipeline.fitting import fit_model
from growthrec.store.modelfile import save_model

N_USERS, N_ITEMS, N_ROWS = 20_000, 26_744, 2_000_000
N_NEW = 1_000
FACTORS = 64
ROUNDS = 5
FEATURES = (("brand", "category"), ("category", "category"), ("price", "numeric"))


def build_model() -> Model:
    """svd (64 factors) with brand, category and price features on the synthetic shop."""
    shop = generate_shop(N_USERS, N_ITEMS, N_ROWS / (N_USERS * N_ITEMS), seed=0)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity)
    position = {item: n for n, item in enumerate(shop.catalog_item_id.tolist())}
    order = np.array([position[i] for i in data.items.ids.tolist()])
    columns = {
        "brand": shop.catalog_brand[order],
        "category": shop.catalog_category[order],
        "price": np.char.mod("%.2f", shop.catalog_price[order]),
    }
    features = fit_features(FEATURES, columns, data.n_items)
    return fit_model(
        data,
        "svd",
        {"factors": FACTORS},
        seed=0,
        item_attributes=columns,
        item_features=features,
    )


def new_products(model: Model, n: int = N_NEW) -> pa.Table:
    """``n`` new SKUs, each with the features of an existing product."""
    rng = np.random.default_rng(1)
    like = rng.integers(0, model.train.n_items, n)
    attributes = model.item_attributes
    return pa.table(
        {
            "item_id": [f"NEW{k:05d}" for k in range(n)],
            **{c: attributes[c][like] for c in ("brand", "category", "price")},
        }
    )


def _median(run: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _quiet(run: Callable[..., object], *args: object) -> object:
    with contextlib.redirect_stdout(io.StringIO()):
        return run(*args)


def measure(model: Model, folder: Path) -> dict[str, Any]:
    """Median seconds of add_items, of saving the result, and of the whole command."""
    table = new_products(model)
    added = add_items(model, table)
    assert added.train.n_items == model.train.n_items + N_NEW
    model_file = save_model(model, folder / "model.npz")
    catalog = write_table(
        {k: table[k].to_numpy(zero_copy_only=False) for k in table.column_names}, folder / "new.csv"
    )
    output = folder / "out.npz"
    argv = [
        "add-items",
        "--model",
        str(model_file),
        "--catalog",
        str(catalog),
        "--output",
        str(output),
    ]
    return {
        "items": model.train.n_items,
        "users": model.train.n_users,
        "interactions": model.train.nnz,
        "new_items": N_NEW,
        "add_items_seconds": round(_median(lambda: add_items(model, table)), 4),
        "save_seconds": round(_median(lambda: save_model(added, folder / "saved.npz")), 4),
        "command_seconds": round(_median(lambda: _quiet(cli, [*argv, "--json"]), rounds=3), 4),
        "model_file_bytes": model_file.stat().st_size,
    }


@pytest.fixture(scope="module")
def model() -> Model:
    return build_model()


def test_add_1000_items_into_a_27k_item_svd_model(model, benchmark, capsys):
    table = new_products(model)
    result = benchmark.pedantic(add_items, args=(model, table), rounds=ROUNDS, iterations=1)
    assert result.train.n_items == N_ITEMS + N_NEW
    assert benchmark.stats.stats.median < 1.0


def test_add_items_command(model, benchmark, tmp_path, capsys):
    figures = benchmark.pedantic(measure, args=(model, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    capsys.readouterr()
    with capsys.disabled():
        print(json.dumps(figures))


def _main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    start = time.perf_counter()
    model = build_model()
    fitted = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        figures = measure(model, Path(folder))
    print(json.dumps({**figures, "fit_seconds": round(fitted, 2)}, indent=2))


if __name__ == "__main__":
    _main()
