"""The re-ranking trade-off on the shared real datasets: the README's "Trade-offs" figures.

Runs ``growthrec tradeoff`` with the best tuned backend of each set (see "Results on real
data": edlae on ml-latest-small, sparse_ease on Online Retail) on ml-latest-small (rating >= 4,
ratio holdout) and Online Retail (leave-one-out of the latest purchase): every re-ranker, MMR
in both forms (``mmr`` penalises the largest similarity to the items chosen, ``mmr-mean`` the
mean) and their compositions with the popularity penalty, over strengths 0..1, each strength
chosen on the validation split. Three rules pick a strength per curve, all on validation:
the most coverage (the command's own choice), the most diversity, each losing at most 3% of
NDCG@10, and the issue's joint target (the most diversity among the points that also widen
coverage by at least +60%). Writes ``tradeoff-<name>.png`` (the report's figure, its colours
reduced) and ``tradeoff-<name>.md`` (the chosen strengths' test figures) into ``--output``,
and prints them; ``--reports DIR`` keeps the whole report folders (report.png, report.html,
report.json). About 3 minutes for ml-latest-small, 18 for Online Retail (its dpp by item
features is the slow part) and 2 for ``online-retail-factors`` on a busy 2-core machine. That
run is a diagnostic, not the best backend: tuned iALS, so that MMR can compare items by
purchases (the model's factors), as diversity on Online Retail is measured (SVD item vectors).
``online-retail-purchases`` keeps the best backend and compares items by those very SVD item
vectors (``--similarity purchases``), so the re-rankers diversify by the metric's own ruler.

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
STRENGTHS = "0,0.02,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.5,0.6,0.7,0.8,1"
#: The issue's targets, checked on the test figures of the strengths chosen on validation.
MAX_NDCG_LOSS = 0.03
MIN_COVERAGE_GAIN = 0.60
MIN_DIVERSITY_GAIN = 0.15

#: Each set's data and protocol, as the issue names them: ml-latest-small rating >= 4 with the
#: ratio holdout, Online Retail with leave-one-out of the latest purchase.
MOVIELENS = [
    "--data", str(DATA / "ml-latest-small" / "ratings.csv"),
    "--preset", "movielens", "--min-weight", "4",
    "--protocol", "ratio", "--test-ratio", "0.2",
]  # fmt: skip
ONLINE_RETAIL = [
    "--data", str(DATA / "online-retail" / "online_retail.parquet"),
    "--preset", "online-retail",
    "--protocol", "leave-one-out", "--by", "latest",
]  # fmt: skip
#: Each set's best backend since issue 16 (benchmarks/results/real_data_cells.md): the
#: validation-tuned blend, with recency where validation chose it.
MOVIELENS_BLEND = [
    *MOVIELENS,
    "--model", "blend", "--param", "first=ials",
    "--param", "first_params=factors=128,regularization=0.01,unobserved_weight=0.3,nu=1",
    "--param", "second=sparse_ease", "--param", "second_params=l2=50,neighbors=50,dropout=0.2",
    "--param", "weight=0.65",
]  # fmt: skip
ONLINE_RETAIL_BLEND = [
    *ONLINE_RETAIL,
    "--model", "blend", "--param", "first=sparse_ease",
    "--param", "first_params=l2=50,neighbors=100,dropout=0.0",
    "--param", "second=edlae", "--param", "second_params=dropout=0.25,l2=100,variant=dlae",
    "--param", "weight=0.35", "--recency", "1",
]  # fmt: skip

#: name -> (growthrec options). Tuned parameters from 'growthrec tune' (real_data_results.sh).
RUNS = {
    "movielens": [
        *MOVIELENS,
        "--model", "edlae", "--param", "dropout=0.5", "--param", "l2=200",
        "--param", "variant=dlae",
        "--rerankers", "mmr,mmr-mean,dpp,calibration,popularity,popularity+mmr-mean,"
        "popularity=0.5+mmr,popularity=0.5+mmr-mean,popularity=0.8+mmr-mean",
    ],
    "online-retail": [
        *ONLINE_RETAIL,
        "--model", "sparse_ease", "--param", "l2=50", "--param", "neighbors=100",
        "--param", "dropout=0.0",
        "--similarity", "features", "--features",
        "--rerankers", "mmr,mmr-mean,dpp,popularity,popularity+mmr-mean,"
        "popularity=0.5+mmr,popularity=0.5+mmr-mean,popularity=0.8+mmr-mean",
    ],
    # A diagnostic, not the best backend: diversity on Online Retail is measured on SVD item
    # vectors of the purchases, and MMR above compares Descriptions. Tuned iALS has item
    # factors, so MMR can compare items by purchases too, as the ruler does.
    "online-retail-factors": [
        *ONLINE_RETAIL,
        "--model", "ials", "--param", "factors=256", "--param", "regularization=0.003",
        "--param", "unobserved_weight=0.3", "--param", "nu=1.0",
        "--similarity", "factors",
        "--rerankers", "mmr,mmr-mean,popularity,popularity=0.8+mmr-mean",
    ],
    # The best backend again, with MMR and the DPP comparing items by purchases: the SVD item
    # vectors intra-list diversity is measured on (--similarity purchases), not Descriptions.
    # The penalty 0.9 is the smallest whose validation points reach +60% coverage within 3%.
    "online-retail-purchases": [
        *ONLINE_RETAIL,
        "--model", "sparse_ease", "--param", "l2=50", "--param", "neighbors=100",
        "--param", "dropout=0.0",
        "--similarity", "purchases",
        "--rerankers", "mmr,mmr-mean,dpp,popularity+mmr-mean,popularity=0.5+mmr-mean,"
        "popularity=0.8+mmr-mean,popularity=0.9+mmr-mean",
    ],
    # ml-latest-small's best backend since the blend (issue 16): tuned ials and sparse_ease.
    "movielens-blend": [
        *MOVIELENS_BLEND,
        "--rerankers", "mmr,mmr-mean,dpp,popularity,popularity+mmr-mean,"
        "popularity=0.5+mmr-mean,popularity=0.8+mmr-mean",
    ],
    # Coverage boosts (--coverage) with each set's best backend since issue 16, recency too
    # where validation chose it: curves with the boosts fixed at 0.3 or 0.6, MMR swept.
    "online-retail-coverage": [
        *ONLINE_RETAIL_BLEND,
        "--similarity", "purchases",
        "--rerankers", "coverage,mmr-mean,popularity,popularity=0.5+mmr-mean,coverage=0.3+mmr-mean,"
        "coverage=0.6+mmr-mean,popularity=0.5+coverage=0.3+mmr-mean,"
        "popularity=0.5+coverage=0.6+mmr-mean",
    ],
    "movielens-coverage": [
        *MOVIELENS_BLEND,
        "--rerankers", "coverage,mmr-mean,coverage=0.3+mmr-mean,coverage=0.6+mmr-mean,"
        "popularity=0.5+coverage=0.3+mmr-mean,popularity=0.5+coverage=0.6+mmr-mean",
    ],
}  # fmt: skip


def _points(payload: dict, split: str) -> dict[str, list[dict]]:
    """Each curve's points on ``split``, by strength."""
    out: dict[str, list[dict]] = {}
    for point in payload[split]["points"]:
        out.setdefault(point["curve"], []).append(point)
    return {c: sorted(p, key=lambda p: p["strength"]) for c, p in out.items()}


def _choose(points: list[dict], by: str, min_coverage: float | None = None) -> dict | None:
    """The validation point with the largest ``by`` gain losing at most ``MAX_NDCG_LOSS`` of
    NDCG (and, given ``min_coverage``, widening coverage by at least that); the smallest
    strength on a tie, as ``choose_strengths`` does; None when no point qualifies."""
    allowed = [
        p
        for p in points
        if p["changes"]["ndcg"] >= -MAX_NDCG_LOSS - 1e-12
        and (min_coverage is None or (p["changes"]["coverage"] or 0.0) >= min_coverage)
    ]
    if not allowed:
        return None
    return max(allowed, key=lambda p: ((p["changes"][by] or 0.0), -p["strength"]))


def chosen_rows(payload: dict) -> list[tuple[str, str, dict, dict]]:
    """(curve, rule, validation point, test point) per curve: the most coverage (the
    command's own choice) for the popularity penalty and calibration, the most diversity for
    the curves with MMR or the DPP, and the joint target's choice wherever a point qualifies
    (one row with both names when the two rules pick the same strength)."""
    validation, test = _points(payload, "validation"), _points(payload, "test")
    by_coverage = {c["curve"]: c for c in payload["chosen"]}
    rows = []
    for curve, points in validation.items():
        if not any(part in curve for part in ("mmr", "dpp")):
            choice = by_coverage[curve]
            rows.append((curve, "coverage", choice["validation"], choice["test"]))
            continue
        found = {
            "diversity": _choose(points, "diversity"),
            "target": _choose(points, "diversity", MIN_COVERAGE_GAIN),
        }
        if found["target"] is not None and found["target"] is found["diversity"]:
            found = {"diversity, target": found["diversity"]}
        for rule, point in found.items():
            if point is not None:
                at = next(p for p in test[curve] if p["strength"] == point["strength"])
                rows.append((curve, rule, point, at))
    return rows


def target_across_curves(payload: dict) -> tuple[str, dict, dict] | None:
    """The joint target's choice over every curve and strength at once, on validation: the
    most diversity among the points that widen coverage by ``MIN_COVERAGE_GAIN`` within
    ``MAX_NDCG_LOSS``; (curve, validation point, test point), or None when none qualifies."""
    validation, test = _points(payload, "validation"), _points(payload, "test")
    found = [
        (curve, point)
        for curve, points in validation.items()
        if (point := _choose(points, "diversity", MIN_COVERAGE_GAIN)) is not None
    ]
    if not found:
        return None
    curve, point = max(found, key=lambda c: c[1]["changes"]["diversity"] or 0.0)
    at = next(p for p in test[curve] if p["strength"] == point["strength"])
    return curve, point, at


def meets_target(test_point: dict) -> bool:
    """Whether a test point meets the issue's joint target."""
    c = test_point["changes"]
    return (
        c["ndcg"] >= -MAX_NDCG_LOSS
        and (c["coverage"] or 0.0) >= MIN_COVERAGE_GAIN
        and (c["diversity"] or 0.0) >= MIN_DIVERSITY_GAIN
    )


def markdown(payload: dict) -> str:
    """The chosen strengths' validation and test figures as a Markdown table."""
    metrics = payload["metrics"]
    absolute = ("gini", "long_tail")  # values: the plain long-tail share is often 0
    head = ["curve", "chosen by", "strength", "val ΔNDCG", "val Δdiv", "test NDCG@10"]
    head += ["ΔNDCG ± s.e.", "ΔRecall"]
    head += [m if m in absolute else f"Δ{m}" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    plain = payload["test"]["plain"]
    cells = ["plain list", "", "", "", "", f"{plain['ndcg']:.4f}", "", ""]
    cells += [f"{plain[m]:.3f}" if m in absolute else "" for m in metrics]
    lines.append("| " + " | ".join(cells) + " |")

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v * 100:+.1f}%"

    for curve, rule, val, t in chosen_rows(payload):
        cells = [
            curve,
            rule + (" ✓" if "target" in rule and meets_target(t) else ""),
            f"{val['strength']:g}",
            pct(val["changes"]["ndcg"]),
            pct(val["changes"]["diversity"]),
            f"{t['metrics']['ndcg']:.4f}",
            f"{pct(t['changes']['ndcg'])} ± {t['ndcg_change_se'] * 100:.1f}%",
            pct(t["changes"]["recall"]),
            *(f"{t['metrics'][m]:.3f}" if m in absolute else pct(t["changes"][m]) for m in metrics),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"chosen by, on validation, losing at most {MAX_NDCG_LOSS:.0%} of NDCG@10: coverage "
        "(the most coverage: the penalty and calibration), diversity (the most diversity: "
        "curves with MMR or the DPP), target (the most diversity among the points that also "
        f"widen coverage by at least {MIN_COVERAGE_GAIN:+.0%}; ✓ where its test figures meet "
        f"the issue's target, {MIN_DIVERSITY_GAIN:+.0%} diversity too; left out where no point "
        "qualifies)."
    )
    across = target_across_curves(payload)
    lines.append("")
    if across is None:
        lines.append("target across every curve (validation): no point qualifies.")
    else:
        curve, val, t = across
        c = t["changes"]
        lines.append(
            f"target across every curve, chosen on validation: {curve} at {val['strength']:g} "
            f"(validation {pct(val['changes']['ndcg'])} NDCG, "
            f"{pct(val['changes']['coverage'])} coverage, {pct(val['changes']['diversity'])} "
            f"diversity); test {pct(c['ndcg'])} ± {t['ndcg_change_se'] * 100:.1f}% NDCG, "
            f"{pct(c['coverage'])} coverage, {pct(c['diversity'])} diversity: "
            + ("meets the target." if meets_target(t) else "misses the target.")
        )
    lines.append("")
    lines.append(
        "plain list (test): "
        + ", ".join(f"{m}@10 {v:.4f}" for m, v in plain.items())
        + f"; {payload['test']['n_users']:,} customers (validation "
        f"{payload['validation']['n_users']:,}); diversity by "
        f"{payload['test']['diversity_basis']}, MMR and the DPP by {payload['similarity']}"
    )
    lines.append("")
    lines.append(curves_markdown(payload))
    return "\n".join(lines)


def curves_markdown(payload: dict) -> str:
    """The penalty's and every MMR curve's test ΔNDCG ± s.e., Δdiversity and Δcoverage by
    strength, validation ΔNDCG in brackets: what composing adds, point by point."""
    validation, test = _points(payload, "validation"), _points(payload, "test")
    curves = [c for c in test if "mmr" in c or c in ("popularity", "coverage")]
    lines = [
        "test ΔNDCG ± s.e. / Δdiversity / Δcoverage (validation ΔNDCG) by strength:",
        "",
        "| strength | " + " | ".join(curves) + " |",
        "|" + "---|" * (len(curves) + 1),
    ]
    strengths = sorted({p["strength"] for c in curves for p in test[c]})
    for s in strengths:
        cells = [f"{s:g}"]
        for c in curves:
            t = next((p for p in test[c] if p["strength"] == s), None)
            v = next((p for p in validation[c] if p["strength"] == s), None)
            if t is None or v is None:
                cells.append("")
                continue
            ch = t["changes"]
            cells.append(
                f"{ch['ndcg'] * 100:+.1f} ± {t['ndcg_change_se'] * 100:.1f} / "
                f"{(ch['diversity'] or 0) * 100:+.1f} / {(ch['coverage'] or 0) * 100:+.0f} "
                f"({v['changes']['ndcg'] * 100:+.1f})"
            )
        lines.append("| " + " | ".join(cells) + " |")
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
