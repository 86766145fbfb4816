"""The re-ranking trade-off on the shared real datasets: the README's "Trade-offs" figures.

Runs ``growthrec tradeoff`` with tuned EASE (the best backend on both sets, see "Results on
real data") on ml-latest-small (rating >= 4, ratio holdout) and Online Retail (leave-one-out
of the latest purchase), every re-ranker and popularity+mmr over strengths 0..1, each
strength chosen on the validation split. Writes ``tradeoff-<name>.png`` (the report's figure,
its colours reduced) and ``tradeoff-<name>.md`` (the chosen strengths' test figures) into
``--output``, and prints them; ``--reports DIR`` keeps the whole report folders (report.png,
report.html, report.json). About 1 minute for ml-latest-small, 12-16 for Online Retail on a
busy 2-core machine (its dpp by item features is the slow part).

    python benchmarks/tradeoff_real_data.py [--output benchmarks/results] [--only movielens]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from growthrec.cli.main import main as growthrec

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
STRENGTHS = "0,0.02,0.05,0.1,0.15,0.2,0.3,0.4,0.5,0.6,0.8,1"

#: name -> (growthrec options). EASE's l2 from 'growthrec tune' (benchmarks/real_data_results.sh).
RUNS = {
    "movielens": [
        "--data", str(DATA / "ml-latest-small" / "ratings.csv"),
        "--preset", "movielens", "--min-weight", "4",
        "--protocol", "ratio", "--test-ratio", "0.2",
        "--model", "ease", "--param", "l2=200",
        "--rerankers", "mmr,dpp,calibration,popularity,popularity+mmr,popularity=0.5+mmr",
    ],
    "online-retail": [
        "--data", str(DATA / "online-retail" / "online_retail.parquet"),
        "--preset", "online-retail",
        "--protocol", "leave-one-out", "--by", "latest",
        "--model", "ease", "--param", "l2=100",
        "--similarity", "features", "--features",
        "--rerankers", "mmr,dpp,popularity,popularity+mmr,popularity=0.5+mmr",
    ],
}  # fmt: skip


def markdown(payload: dict) -> str:
    """The chosen strengths' validation and test figures as a Markdown table."""
    metrics = payload["metrics"]
    absolute = ("gini", "long_tail")  # values: the plain long-tail share is often 0
    head = ["curve", "strength", "val ΔNDCG", "test NDCG@10", "ΔNDCG ± s.e.", "ΔRecall"]
    head += [m if m in absolute else f"Δ{m}" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    plain = payload["test"]["plain"]
    cells = ["plain list", "", "", f"{plain['ndcg']:.4f}", "", ""]
    cells += [f"{plain[m]:.3f}" if m in absolute else "" for m in metrics]
    lines.append("| " + " | ".join(cells) + " |")

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v * 100:+.1f}%"

    for c in payload["chosen"]:
        t = c["test"]
        cells = [
            c["curve"],
            f"{c['strength']:g}",
            pct(c["validation"]["changes"]["ndcg"]),
            f"{t['metrics']['ndcg']:.4f}",
            f"{pct(t['changes']['ndcg'])} ± {t['ndcg_change_se'] * 100:.1f}%",
            pct(t["changes"]["recall"]),
            *(f"{t['metrics'][m]:.3f}" if m in absolute else pct(t["changes"][m]) for m in metrics),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "plain list (test): "
        + ", ".join(f"{m}@10 {v:.4f}" for m, v in plain.items())
        + f"; {payload['test']['n_users']:,} customers (validation "
        f"{payload['validation']['n_users']:,})"
    )
    return "\n".join(lines)


def small_png(source: Path, target: Path) -> None:
    """``source`` with its colours reduced to 64 (a third of the bytes; lines and text keep)."""
    from PIL import Image

    image = Image.open(source).convert("RGB").quantize(64, method=Image.Quantize.MEDIANCUT)
    image.save(target, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--reports", type=Path, default=None, help="keep the full report folders here"
    )
    parser.add_argument("--only", choices=list(RUNS), default=None)
    parser.add_argument("--threads", default="2")
    parser.add_argument("--strengths", default=STRENGTHS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        reports = args.reports or Path(work)
        for name, options in RUNS.items():
            if args.only and name != args.only:
                continue
            folder = reports / f"tradeoff-{name}"
            start = time.perf_counter()
            argv = [
                "tradeoff", *options, "--strengths", args.strengths, "--k", "10",
                "--threads", args.threads, "--output", str(folder),
            ]  # fmt: skip
            code = growthrec(argv)
            if code:
                return code
            seconds = time.perf_counter() - start
            payload = json.loads((folder / "report.json").read_text())
            text = f"## {name} ({seconds:.0f} s)\n\n{markdown(payload)}\n"
            args.output.mkdir(parents=True, exist_ok=True)
            (args.output / f"tradeoff-{name}.md").write_text(text)
            print(text)
            small_png(folder / "report.png", args.output / f"tradeoff-{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
