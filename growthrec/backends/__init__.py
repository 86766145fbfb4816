"""Model backends behind one pluggy hook, ``register_backends(register)``."""

from __future__ import annotations

from growthrec.backends.contract import Arrays, Backend, Param, resolve_params
from growthrec.backends.hookspecs import hookimpl, hookspec
from growthrec.backends.registry import (
    ENTRY_POINT_GROUP,
    Registration,
    available_backends,
    get_backend,
    plugin_manager,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Arrays",
    "Backend",
    "Param",
    "Registration",
    "available_backends",
    "get_backend",
    "hookimpl",
    "hookspec",
    "plugin_manager",
    "resolve_params",
]
