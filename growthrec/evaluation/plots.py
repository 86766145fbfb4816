"""Figures and the report of a trade-off sweep, made from its result value alone.

``plot_tradeoff(result)`` draws accuracy (NDCG@K, Recall@K; rows) against each
beyond-accuracy metric (columns), one curve per re-ranker, the plain list, each curve's knee
(Kneedle, hollow circle) and the strength chosen on validation (star). ``write_report`` writes
``report.png``, ``report.json`` and a self-contained ``report.html`` (the tables, the PNG
embedded as base64) into a folder, each file atomically. matplotlib (``pip install
"growthrec[plots]"``) is imported only inside these functions, on its Agg canvas, never
through pyplot, so no global backend is changed.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from growthrec.errors import GrowthrecError, ParameterError
from growthrec.evaluation.tradeoff import ACCURACY, LOWER_IS_BETTER, Choice, Tradeoff
from growthrec.store.atomic import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "METRIC_LABELS",
    "PlotsUnavailableError",
    "TradeoffReport",
    "check_plots_available",
    "chosen_rows",
    "figure_png",
    "plot_tradeoff",
    "report_html",
    "sweep_rows",
    "write_report",
]

METRIC_LABELS = {
    "ndcg": "NDCG",
    "recall": "Recall",
    "coverage": "coverage",
    "diversity": "intra-list diversity",
    "gini": "Gini of exposure (lower: fairer)",
    "long_tail": "long-tail share",
    "novelty": "novelty (bits)",
    "miscalibration": "miscalibration (KL, lower: closer)",
}
_SHORT = {
    "coverage": "cov",
    "diversity": "div",
    "long_tail": "tail",
    "novelty": "nov",
    "miscalibration": "miscal",
}
_INSTALL = 'pip install "growthrec[plots]"'


class PlotsUnavailableError(GrowthrecError):
    """matplotlib, which the figures need, is not installed."""


def check_plots_available() -> None:
    """Fail early, in one line, when matplotlib is missing (before any long computation)."""
    _figure_class()


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailableError(
            f"the trade-off figure needs matplotlib, which is not installed: {_INSTALL}"
        ) from None
    return Figure


def plot_tradeoff(result: Tradeoff, split: str = "test") -> Figure:
    """Accuracy against every beyond-accuracy metric of ``split``'s sweep, one curve per
    re-ranker; the knee and the strength chosen on validation marked."""
    figure_class = _figure_class()
    sweep = result.sweep(split)
    metrics = list(result.metrics)
    n_cols = len(metrics)
    fig = figure_class(figsize=(3.1 * n_cols, 7.0), dpi=110, layout="constrained")
    axes = fig.subplots(len(ACCURACY), n_cols, squeeze=False)
    chosen = {c.curve: c.strength for c in result.chosen}
    colours = [f"C{n}" for n in range(len(result.curves))]
    for row, accuracy in enumerate(ACCURACY):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            for curve, colour in zip(result.curves, colours, strict=True):
                points = sweep.curve(curve)
                x = [p.metrics[metric] for p in points]
                y = [p.metrics[accuracy] for p in points]
                if accuracy == "ndcg":
                    errors = [p.ndcg_change_se * sweep.plain["ndcg"] for p in points]
                    ax.errorbar(
                        x,
                        y,
                        yerr=errors,
                        color=colour,
                        marker="o",
                        ms=3,
                        lw=1.3,
                        capsize=0,
                        elinewidth=0.8,
                        label=curve,
                    )
                else:
                    ax.plot(x, y, color=colour, marker="o", ms=3, lw=1.3, label=curve)
                knee = sweep.knees.get(curve, {}).get(metric)
                if knee is not None:
                    at = sweep.at(curve, knee)
                    ax.plot(
                        at.metrics[metric],
                        at.metrics[accuracy],
                        "o",
                        ms=10,
                        mfc="none",
                        mec=colour,
                        mew=1.6,
                    )
                if curve in chosen:
                    at = sweep.at(curve, chosen[curve])
                    ax.plot(
                        at.metrics[metric],
                        at.metrics[accuracy],
                        "*",
                        ms=13,
                        color=colour,
                        mec="black",
                        mew=0.6,
                        zorder=5,
                    )
            ax.plot(
                sweep.plain[metric],
                sweep.plain[accuracy],
                "s",
                ms=7,
                color="black",
                zorder=6,
                label="plain list" if (row, col) == (0, 0) else None,
            )
            if accuracy == "ndcg":
                limit = sweep.plain["ndcg"] * (1 - result.max_ndcg_loss)
                ax.axhline(limit, color="grey", lw=0.8, ls=":")
            if metric in LOWER_IS_BETTER:
                ax.invert_xaxis()  # better to the right on every panel
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
            if row == len(ACCURACY) - 1:
                ax.set_xlabel(f"{METRIC_LABELS[metric]}@{result.k}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{METRIC_LABELS[accuracy]}@{result.k}", fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9, frameon=False
    )
    fig.suptitle(
        f"{result.backend} on the {split} split ({sweep.n_users:,} customers): accuracy against "
        f"beyond-accuracy, each re-ranker over strengths {_strengths_text(result.strengths)}.\n"
        f"Better is up and right; ★ strength chosen on validation (most {result.choose_by} "
        f"within {result.max_ndcg_loss:.0%} NDCG loss, dotted), ○ knee (Kneedle), "
        "bars ±1 paired s.e.",
        fontsize=10,
    )
    return fig


def _strengths_text(strengths: Sequence[float]) -> str:
    return (
        f"{min(strengths):g}..{max(strengths):g}"
        if len(strengths) > 4
        else ", ".join(f"{s:g}" for s in strengths)
    )


def _percent(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value * 100:+.1f}%"


#: Shown as values, not changes: the plain list's long-tail share is often 0, and a Gini of
#: exposure near 1 moves by fractions of a percent.
_ABSOLUTE = ("gini", "long_tail")


def chosen_rows(result: Tradeoff) -> tuple[list[str], list[list[str]]]:
    """The chosen strengths' table: the plain list first, then per curve the strength (s), its
    NDCG change on validation, and its test figures (changes relative to the plain list,
    Gini and long-tail share as values)."""
    metrics = list(result.metrics)
    header = [
        "curve",
        "s",
        "val ΔNDCG",
        f"NDCG@{result.k}",
        "ΔNDCG±se",
        "Δrecall",
        *(_SHORT.get(m, m) if m in _ABSOLUTE else f"Δ{_SHORT.get(m, m)}" for m in metrics),
    ]
    plain = result.test.plain
    rows = [
        [
            "plain",
            "",
            "",
            f"{plain['ndcg']:.4f}",
            "",
            "",
            *(f"{plain[m]:.3f}" if m in _ABSOLUTE else "" for m in metrics),
        ]
    ]
    rows += [_chosen_row(c, metrics) for c in result.chosen]
    return header, rows


def _chosen_row(choice: Choice, metrics: Sequence[str]) -> list[str]:
    test = choice.test
    return [
        choice.curve,
        f"{choice.strength:g}" + ("" if choice.within_limit else " (none within the limit)"),
        _percent(choice.validation.ndcg_change),
        f"{test.metrics['ndcg']:.4f}",
        f"{_percent(test.ndcg_change)}±{test.ndcg_change_se * 100:.1f}",
        _percent(test.changes["recall"]),
        *(
            f"{test.metrics[m]:.3f}" if m in _ABSOLUTE else _percent(test.changes[m])
            for m in metrics
        ),
    ]


def sweep_rows(result: Tradeoff, split: str = "test") -> tuple[list[str], list[list[str]]]:
    """Every point of ``split``'s sweep: the values at K and the NDCG change with its s.e."""
    sweep = result.sweep(split)
    metrics = ["ndcg", "recall", *result.metrics]
    header = ["re-ranker", "strength", *(f"{m}@{result.k}" for m in metrics), "NDCG Δ ± s.e."]
    rows = []
    for curve in result.curves:
        for p in sweep.curve(curve):
            knee = [m for m, s in sweep.knees.get(curve, {}).items() if s == p.strength]
            label = f"{p.strength:g}" + (f" (knee: {', '.join(knee)})" if knee else "")
            rows.append(
                [
                    curve,
                    label,
                    *(f"{p.metrics[m]:.4f}" for m in metrics),
                    f"{_percent(p.ndcg_change)} ± {p.ndcg_change_se * 100:.1f}%",
                ]
            )
    return header, rows


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(result: Tradeoff, png: bytes, title: str = "growthrec trade-off report") -> str:
    """A self-contained page: the chosen strengths, the figure (base64) and the test sweep."""
    image = base64.b64encode(png).decode("ascii")
    params = ", ".join(f"{k}={v}" for k, v in result.params.items()) or "defaults"
    test, validation = result.test, result.validation
    intro = (
        f"Backend <b>{html.escape(result.backend)}</b> ({html.escape(params)}), top "
        f"{result.k} re-ranked from each customer's top {result.candidates}, similarity "
        f"{html.escape(result.similarity)}; diversity compares items by "
        f"{html.escape(test.diversity_basis)}. Validation split: {validation.n_users:,} customers "
        f"(carved from the test split's train part); test split "
        f"{html.escape(test.protocol)}: {test.n_users:,} customers. Each strength is chosen on "
        f"validation: the largest {html.escape(result.choose_by)} gain losing at most "
        f"{result.max_ndcg_loss:.0%} of NDCG@{result.k}; the test figures of that strength are "
        "reported. Δ is the change relative to the plain list; ± is one paired standard error "
        "of the NDCG change (per-customer NDCG, the same customers). The knee is the Kneedle "
        "point of each curve (NDCG loss against the metric's gain, both scaled to [0, 1])."
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1900px;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{intro}</p>"
        "<h2>Strengths chosen on validation, measured on test</h2>"
        f"{_html_table(*chosen_rows(result))}"
        f'<h2>The curves (test split)</h2><img alt="trade-off curves" '
        f'src="data:image/png;base64,{image}">'
        "<h2>Every strength (test split)</h2>"
        f"{_html_table(*sweep_rows(result, 'test'))}"
        "<h2>Every strength (validation split, where strengths are chosen)</h2>"
        f"{_html_table(*sweep_rows(result, 'validation'))}"
        "</body></html>\n"
    )


@attrs.frozen
class TradeoffReport:
    """The files ``write_report`` wrote."""

    png: Path
    html: Path
    json: Path


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_report(
    result: Tradeoff, directory: str | Path, *, extra: dict[str, Any] | None = None
) -> TradeoffReport:
    """``report.png``, ``report.html`` and ``report.json`` (the result, with ``extra`` keys)
    in ``directory`` (made if missing), each written atomically."""
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"--output {folder}: is a file; give a folder for the report")
    png = figure_png(plot_tradeoff(result))
    folder.mkdir(parents=True, exist_ok=True)
    paths = TradeoffReport(folder / "report.png", folder / "report.html", folder / "report.json")
    with atomic_write(paths.png) as handle:
        handle.write(png)
    with atomic_write(paths.html) as handle:
        handle.write(report_html(result, png).encode("utf-8"))
    payload = {**(extra or {}), **result.as_dict()}
    with atomic_write(paths.json) as handle:
        handle.write((json.dumps(payload, indent=2, allow_nan=False) + "\n").encode())
    return paths
