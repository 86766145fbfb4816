"""The parameters file ``growthrec tune`` writes: the backend, its best parameters, and the
fingerprint and weighting of the data they were tuned on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from growthrec.errors import DataError

__all__ = ["read_tuned", "tuned_fingerprint", "tuned_path", "tuned_recency", "tuned_weighting"]


def tuned_path(output: Path | str, backend: str) -> Path:
    """``output`` itself when it names a .json file, else ``output/<backend>.params.json``."""
    output = Path(output)
    return output if output.suffix == ".json" else output / f"{backend}.params.json"


def read_tuned(path: Path | str, backend: str | None = None) -> tuple[str, dict[str, Any]]:
    """The backend and parameters a 'tune' run wrote (a file, or a folder of such files)."""
    source = Path(path)
    if source.is_dir() and backend is not None:
        source = tuned_path(source, backend)
    try:
        content = json.loads(source.read_text())
        params = content["params"]
        named = content["backend"]
    except FileNotFoundError:
        raise DataError(f"{source}: no such parameters file (run 'growthrec tune')") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{source}: not a parameters file written by 'growthrec tune' ({exc})"
        ) from None
    if backend is not None and named != backend:
        raise DataError(f"{source}: holds parameters of backend {named!r}, not {backend!r}")
    return named, dict(params)


def tuned_fingerprint(path: Path | str) -> str | None:
    """The data fingerprint a 'tune' run recorded (None for an older or hand-written file)."""
    try:
        value = json.loads(Path(path).read_text()).get("data_fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def tuned_weighting(path: Path | str) -> str | None:
    """The weighting a 'tune' run used (None for an older or hand-written file)."""
    try:
        return json.loads(Path(path).read_text()).get("weighting")
    except (OSError, ValueError, AttributeError):
        return None


def tuned_recency(path: Path | str) -> float | None:
    """The recency half-life a 'tune' run used (None for an older or hand-written file)."""
    try:
        value = json.loads(Path(path).read_text()).get("recency")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
