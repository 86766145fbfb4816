"""Online Retail replayed month by month through ``growthrec retrain``, and sabotaged retrains.

Run: ``python benchmarks/retrain_replay.py [--data PATH] [--output DIR]`` (needs the ``als``
and ``plots`` extras). For each month t (Dec 2010 is month 1), the store is retrained on the
export of months 1..t (``growthrec retrain --store S --data months_1_t.parquet``, the preset
``online-retail``, as a scheduler would run it); the champion that results and the model frozen
at month 1 are then scored on month t+1: NDCG@10 over the customers both know, ranking the
whole catalogue minus what each customer bought before (``judge`` of
``growthrec.evaluation.retraining``, the same rule retrain itself uses). Before each real
retrain, two sabotaged exports of the same months run against a copy of the store: 60% of
month t's orders (invoices) dropped, and month t's item ids shuffled; the table says what
refused each, and that the champion did not change.

Writes ``retrain_replay.png`` (atomically) and ``retrain_replay.md`` into ``--output``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from growthrec.cli.main import main as growthrec
from growthrec.data.loading import load_events
from growthrec.data.presets import cleaning_for, get_preset
from growthrec.evaluation.retraining import Thresholds, judge, split_at
from growthrec.store.atomic import atomic_write
from growthrec.store.modelfile import load_model
from growthrec.store.versions import champion_path, read_manifest

DATA = Path("/work/shared/data/online-retail/online_retail.parquet")
FIRST = ["--preset", "online-retail", "--model", "als", "--param", "iterations=15"]


def _run(*argv: object) -> dict:
    """``growthrec ... --json`` in-process; its decision."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = growthrec([str(a) for a in argv] + ["--json"])
    if code != 0:
        raise SystemExit(f"growthrec {' '.join(map(str, argv))}: exit {code}")
    return json.loads(buffer.getvalue())


def _months(raw: pd.DataFrame) -> list[pd.Timestamp]:
    starts = pd.to_datetime(raw["InvoiceDate"]).dt.to_period("M").dt.start_time
    return sorted(starts.unique())


def _sabotaged(raw: pd.DataFrame, month: pd.Timestamp, how: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.to_datetime(raw["InvoiceDate"])
    inside = (times >= month).to_numpy()
    out = raw.copy()
    if how == "dropped":
        invoices = out.loc[inside, "InvoiceNo"].unique()
        lost = set(rng.choice(invoices, size=int(0.6 * invoices.size), replace=False))
        return out[~(inside & out["InvoiceNo"].isin(lost).to_numpy())]
    codes = out["StockCode"].unique()
    shuffled = dict(zip(codes, rng.permutation(codes), strict=True))
    out.loc[inside, "StockCode"] = out.loc[inside, "StockCode"].map(shuffled)
    return out


def replay(data: Path, work: Path) -> dict:
    """Every month's retrain, its sabotaged twins, and both models' NDCG@10 on the next month."""
    raw = pd.read_parquet(data)
    times = pd.to_datetime(raw["InvoiceDate"])
    months = _months(raw)
    preset = get_preset("online-retail")
    everything, _ = load_events(data, preset.columns, cleaning_for(preset))
    store = work / "store"
    rows, sabotage = [], []
    frozen = None
    for t in range(1, len(months)):  # retrain on months 1..t, score month t+1
        end = following = months[t]
        export = work / f"months_1_{t}.parquet"
        raw[(times < end).to_numpy()].to_parquet(export)
        started = time.perf_counter()
        if t == 1:
            decision = _run("retrain", "--store", store, "--data", export, *FIRST)
            frozen = load_model(champion_path(store))
        else:
            for how in ("dropped", "shuffled"):
                copy = work / f"store_{how}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(store, copy)
                bad = work / f"months_1_{t}_{how}.parquet"
                _sabotaged(raw[(times < end).to_numpy()], months[t - 1], how, t).to_parquet(bad)
                before = read_manifest(copy)["aliases"]["champion"]
                result = _run("retrain", "--store", copy, "--data", bad)
                failed = [c["name"] for c in result["checks"] if not c["passed"]]
                sabotage.append(
                    {
                        "month": str(months[t - 1].date())[:7],
                        "sabotage": how,
                        "outcome": result["outcome"],
                        "refused_by": ", ".join(failed) or result["reason"].split(":")[0],
                        "champion_kept": read_manifest(copy)["aliases"]["champion"] == before,
                    }
                )
            decision = _run("retrain", "--store", store, "--data", export)
        seconds = time.perf_counter() - started
        champion = load_model(champion_path(store))
        after = months[t + 1].timestamp() if t + 1 < len(months) else np.inf
        history, holdout = split_at(
            everything.select(everything.timestamps < after), end.timestamp()
        )
        scored = judge(champion, frozen, history, holdout, Thresholds(min_holdout_customers=1))
        figures = scored.figures
        rows.append(
            {
                "data until": str((following - pd.Timedelta(days=1)).date()),
                "scored on": str(following.date())[:7],
                "outcome": decision["outcome"],
                "champion": read_manifest(store)["aliases"]["champion"],
                "retrained NDCG@10": figures["ndcg"]["champion"],
                "frozen NDCG@10": figures["ndcg"]["challenger"],
                "customers": figures["judged_customers"],
                "no list (frozen)": figures["empty_lists"]["challenger"],
                "retrain s": round(seconds, 1),
            }
        )
        print(rows[-1], file=sys.stderr)
    return {"months": rows, "sabotage": sabotage, "versions": len(read_manifest(store)["versions"])}


def plot_replay(result: dict):
    """NDCG@10 of the retrained champion and of the frozen model, month by month."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = [row["scored on"] for row in result["months"]]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    ax.plot(
        months,
        [r["retrained NDCG@10"] for r in result["months"]],
        "o-",
        label="retrained monthly (champion)",
    )
    ax.plot(
        months,
        [r["frozen NDCG@10"] for r in result["months"]],
        "s--",
        label="frozen at month 1 (Dec 2010)",
    )
    ax.set_xlabel("month scored (the month after the data ends)")
    ax.set_ylabel("NDCG@10 (customers both models know)")
    ax.set_title("Online Retail, als: retrained champion against a frozen model")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _markdown(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"{v:.4f}" if isinstance(v, float) and v < 1 else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        result = replay(args.data, Path(work))
    args.output.mkdir(parents=True, exist_ok=True)
    fig = plot_replay(result)
    with atomic_write(args.output / "retrain_replay.png") as handle:
        fig.savefig(handle, format="png")
    text = (
        "## Month by month\n\n"
        + _markdown(result["months"])
        + "\n\n## Sabotaged retrains\n\n"
        + _markdown(result["sabotage"])
        + "\n"
    )
    with atomic_write(args.output / "retrain_replay.md") as handle:
        handle.write(text.encode())
    print(text)


if __name__ == "__main__":
    main()
