"""growthrec: product recommendations for shops from purchase history alone."""

from __future__ import annotations

__version__ = "0.1.0"

from growthrec.backends.contract import Backend, Param
from growthrec.backends.hookspecs import hookimpl
from growthrec.errors import (
    DataError,
    GrowthrecError,
    ModelFileError,
    ParameterError,
    PluginError,
    UnknownBackendError,
    UnknownIdError,
)

__all__ = [
    "Backend",
    "DataError",
    "GrowthrecError",
    "ModelFileError",
    "Param",
    "ParameterError",
    "PluginError",
    "UnknownBackendError",
    "UnknownIdError",
    "__version__",
    "hookimpl",
]
