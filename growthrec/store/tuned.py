"""The parameters file ``growthrec tune`` writes: the backend, its best parameters, and the
weighting and recency they were tuned with, and the fingerprint of the data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from growthrec.errors import DataError

__all__ = ["Tuned", "read_tuned", "tuned_path"]


def tuned_path(output: Path | str, backend: str) -> Path:
    """``output`` itself when it names a .json file, else ``output/<backend>.params.json``."""
    output = Path(output)
    return output if output.suffix == ".json" else output / f"{backend}.params.json"


@attrs.frozen
class Tuned:
    """What a 'tune' run wrote: the backend, its best parameters, and (``None`` in an older or
    hand-written file) the weighting, recency half-life and data fingerprint it was tuned with."""

    backend: str
    params: dict[str, Any]
    weighting: str | None = None
    recency: float | None = None
    fingerprint: str | None = None


def read_tuned(path: Path | str, backend: str | None = None) -> Tuned:
    """The parameters file a 'tune' run wrote (a file, or a folder of such files), read once."""
    source = Path(path)
    if source.is_dir() and backend is not None:
        source = tuned_path(source, backend)
    try:
        content = json.loads(source.read_text())
        params = dict(content["params"])
        named = content["backend"]
    except FileNotFoundError:
        raise DataError(f"{source}: no such parameters file (run 'growthrec tune')") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{source}: not a parameters file written by 'growthrec tune' ({exc})"
        ) from None
    if backend is not None and named != backend:
        raise DataError(f"{source}: holds parameters of backend {named!r}, not {backend!r}")
    weighting, recency = content.get("weighting"), content.get("recency")
    fingerprint = content.get("data_fingerprint")
    return Tuned(
        named,
        params,
        weighting if isinstance(weighting, str) else None,
        float(recency)
        if isinstance(recency, (int, float)) and not isinstance(recency, bool)
        else None,
        fingerprint if isinstance(fingerprint, str) else None,
    )
