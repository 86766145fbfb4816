"""Where models live on disk: the model file (no pickle) and atomic writes."""

from __future__ import annotations

from growthrec.store.atomic import (
    OutputExistsError,
    atomic_write,
    refuse_unnamed_files,
    temporary_name,
)
from growthrec.store.modelfile import FORMAT_NAME, FORMAT_VERSION, load_model, save_model

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "OutputExistsError",
    "atomic_write",
    "load_model",
    "refuse_unnamed_files",
    "save_model",
    "temporary_name",
]
