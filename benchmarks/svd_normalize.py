"""Which svd default ranks better on real data: plain projection or L2-normalised factors?

Run: ``python benchmarks/svd_normalize.py`` (needs ../shared/data); prints a Markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from growthrec.core.interactions import Interactions, interactions_from_events
from growthrec.core.split import split_leave_one_out, split_ratio
from growthrec.data.loading import load_events
from growthrec.data.presets import cleaning_for, get_preset
from growthrec.evaluation.runs import evaluate_backend

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load(preset_name: str, relative: str) -> Interactions:
    """A shared dataset through its preset, with the default cleaning."""
    preset = get_preset(preset_name)
    events, _ = load_events(SHARED / relative, preset.columns, cleaning_for(preset))
    return interactions_from_events(events)


def main() -> int:
    if not SHARED.is_dir():
        print(f"{SHARED} is absent", file=sys.stderr)
        return 1
    cases = [
        (
            "ml-latest-small",
            "ratio 0.2",
            split_ratio(load("movielens", "ml-latest-small/ratings.csv"), seed=0),
        ),
        (
            "Online Retail",
            "leave-one-out latest",
            split_leave_one_out(
                load("online-retail", "online-retail/online_retail.parquet"), by="latest", seed=0
            ),
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
