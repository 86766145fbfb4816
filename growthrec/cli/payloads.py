"""The shared objects of every command's ``--json`` output (the vocabulary of ``schemas/``).

One builder per concept, so ``train``, ``evaluate``, ``recommend`` and the rest say the same
thing the same way: ``data`` (what was read), ``model`` (a model file), a written file, a split,
and recommendation rows whose ids are always strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from growthrec.core.interactions import Interactions
from growthrec.core.model import Model
from growthrec.core.split import Split
from growthrec.data.loading import LoadReport
from growthrec.spark import SparkLoadReport

__all__ = [
    "FALLBACK_POPULAR",
    "data_payload",
    "fallback_rows",
    "file_payload",
    "model_payload",
    "recommendation_rows",
    "split_payload",
]

#: The ``source`` of a list of best sellers given for a customer or basket the model cannot score.
FALLBACK_POPULAR = "fallback:popular"


def data_payload(
    report: LoadReport | SparkLoadReport, train: Interactions | None = None
) -> dict[str, Any]:
    """The ``data`` object: what was read, what each cleaning rule dropped, what is left.

    ``train`` (the whole matrix, when the command built one) adds ``n_interactions`` and
    ``density``.
    """
    payload: dict[str, Any]
    if isinstance(report, SparkLoadReport):
        payload = {"paths": list(report.paths), "format": report.file_format}
    else:
        payload = {"path": report.path}
    payload.update(
        {
            "rows_read": report.rows_read,
            "rows_kept": report.rows_kept,
            "dropped": dict(report.dropped),
            "n_users": report.n_users,
            "n_items": report.n_items,
        }
    )
    if isinstance(report, SparkLoadReport):
        payload["n_interactions"] = report.n_pairs
    else:
        payload["fingerprint"] = report.fingerprint
    payload["weight_column"] = report.weight_column
    payload["time_column"] = report.time_column
    if train is not None:
        payload["n_interactions"] = train.nnz
        payload["density"] = train.density
    return payload


def file_payload(
    path: Path | str,
    *,
    format: str | None = None,
    rows: int | None = None,
    columns: list[str] | None = None,
) -> dict[str, Any]:
    """A file a command wrote or read: its path, and format, rows, bytes and columns if known."""
    payload: dict[str, Any] = {"path": str(path)}
    if format is not None:
        payload["format"] = format
    if rows is not None:
        payload["rows"] = int(rows)
    if Path(path).is_file():
        payload["bytes"] = Path(path).stat().st_size
    if columns is not None:
        payload["columns"] = list(columns)
    return payload


def model_payload(model: Model, path: Path | str) -> dict[str, Any]:
    """The ``model`` object: the model file and what it was fitted with."""
    return {
        **file_payload(path),
        "backend": model.backend,
        "params": dict(model.params),
        "weighting": model.weighting,
        "recency": model.recency,
        "seed": model.seed,
    }


def split_payload(split: Split) -> dict[str, Any]:
    """The ``split`` object: the protocol and how many customers each part holds."""
    return {
        "protocol": split.protocol,
        "n_test_users": split.n_test_users,
        "n_train_only_users": split.n_train_only,
        "counts": dict(split.counts),
    }


def recommendation_rows(
    model: Model, items: np.ndarray, scores: np.ndarray
) -> list[dict[str, Any]]:
    """One ranked list as ``{rank, item, score, attributes}`` rows; -1 padding is left out."""
    keep = items >= 0
    ids = model.train.items.external(items[keep])
    return [
        {
            "rank": rank,
            "item": str(item_id),
            "score": round(float(score), 6),
            "attributes": {k: str(v[index]) for k, v in model.item_attributes.items()},
        }
        for rank, (index, item_id, score) in enumerate(
            zip(items[keep], ids, scores[keep], strict=True), start=1
        )
    ]


def fallback_rows(model: Model, items: np.ndarray, buyers: np.ndarray) -> list[dict[str, Any]]:
    """Best-seller rows: ``score`` is the share of training customers who bought the item.

    The raw count is kept as ``buyers``, so the score reads like a model's (in [0, 1]).
    """
    customers = max(model.train.n_users, 1)
    rows = recommendation_rows(model, items, np.asarray(buyers, dtype=np.float64) / customers)
    counts = np.asarray(buyers)[np.asarray(items) >= 0]
    return [
        {**{k: row[k] for k in ("rank", "item", "score")}, "buyers": int(count), **row}
        for row, count in zip(rows, counts, strict=True)
    ]
