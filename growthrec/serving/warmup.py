"""Warm-up lists: list settings the service ranks on every model it loads, before serving it.

Some settings build a table once per model on their first list: the coverage boosts rank every
customer's candidates (28-50 s at MovieLens-20M's shape), MMR by purchases builds the item
vectors (4.7 s). Without a warm-up the first request that asks pays for it. ``serve --warm
FILE`` names such settings; each model loaded (at start and on every swap) ranks its first
customer under each of them after the smoke test, so the tables are built before the model
serves, and a setting the new model cannot take refuses the model as the smoke test does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from growthrec.core.model import Model
from growthrec.errors import GrowthrecError, ParameterError
from growthrec.pipeline.lists import recommend
from growthrec.serving.answers import request_spec
from growthrec.serving.schemas import ListOptions

__all__ = ["read_warm_lists", "warm_up"]

_EXAMPLE = '[{"n": 10, "rerank": {"kind": "mmr", "strength": 0.3, "coverage": 0.5}}]'


def read_warm_lists(path: Path) -> tuple[ListOptions, ...]:
    """The list settings of a warm-up file: a JSON array of the list options of
    ``POST /v1/recommendations`` (no ``customer``); each mistake one line naming the entry."""
    where = f"--warm {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ParameterError(f"{where}: cannot be read ({reason})") from None
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"{where}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(entries, list) or not entries:
        raise ParameterError(
            f"{where}: expected a JSON array of list settings (the body of POST "
            f"/v1/recommendations without customer), e.g. {_EXAMPLE}"
        )
    lists = []
    for i, entry in enumerate(entries):
        try:
            lists.append(ListOptions.model_validate(entry))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "entry"
            raise ParameterError(f"{where}: entry {i}: {field}: {error['msg']}") from None
    return tuple(lists)


def warm_up(model: Model, lists: Sequence[ListOptions]) -> None:
    """Rank the first training customer under each of ``lists``: what each setting builds
    once per model is built now. A setting this model cannot take is one error naming it."""
    first = np.zeros(1, dtype=np.int64)
    for i, options in enumerate(lists):
        try:
            spec, _ = request_spec(model, options)
            recommend(model, first, spec=spec)
        except GrowthrecError as exc:
            raise ParameterError(f"warm-up list {i}: {exc}") from None
