"""Discovery of backends: entry-point plugins and the built-ins, all through one hook."""

from __future__ import annotations

import functools
import os

import attrs
import pluggy

from growthrec._version import __version__
from growthrec.backends import hookspecs
from growthrec.backends.contract import FACTOR_METHODS, Backend
from growthrec.errors import PluginError, UnknownBackendError

__all__ = [
    "BLOCK_ENV",
    "BUILTIN_MODULES",
    "ENTRY_POINT_GROUP",
    "Registration",
    "available_backends",
    "get_backend",
    "plugin_manager",
]

ENTRY_POINT_GROUP = "growthrec"
#: Comma-separated plugin (entry-point) names to skip, for debugging a broken plugin.
BLOCK_ENV = "GROWTHREC_BLOCK_PLUGINS"
#: growthrec's own backends; registered through the same hook as any third-party plugin.
BUILTIN_MODULES = (
    "growthrec.backends.svd",
    "growthrec.backends.popularity",
    "growthrec.backends.als",
    "growthrec.backends.bpr",
    "growthrec.backends.itemknn",
    "growthrec.backends.ease",
    "growthrec.backends.spark",
    "growthrec.backends.content",
    "growthrec.backends.rp3beta",
    "growthrec.backends.edlae",
    "growthrec.backends.ials",
    "growthrec.backends.sparse_ease",
    "growthrec.backends.hybrid",
    "growthrec.backends.blend",
)


@attrs.frozen
class Registration:
    """A backend and where it came from: the plugin's name and its distribution."""

    backend: Backend
    plugin: str
    distribution: str


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, with entry points and built-ins loaded (once, on first use)."""
    import importlib

    pm = pluggy.PluginManager("growthrec")
    pm.add_hookspecs(hookspecs)
    for name in filter(None, (n.strip() for n in os.environ.get(BLOCK_ENV, "").split(","))):
        pm.set_blocked(name)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:  # a plugin that fails to import must not look like a growthrec bug
        raise PluginError(
            f"a growthrec plugin failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    for module in BUILTIN_MODULES:
        if not pm.is_blocked(module):
            pm.register(importlib.import_module(module), name=module)
    _check_hooks(pm)
    return pm


def _check_hooks(pm: pluggy.PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r}: {exc}") from None


def _distributions(pm: pluggy.PluginManager) -> dict[int, str]:
    return {
        id(plugin): f"{dist.metadata['name']} {dist.version}"
        for plugin, dist in pm.list_plugin_distinfo()
    }


def available_backends(pm: pluggy.PluginManager | None = None) -> dict[str, Registration]:
    """Every registered backend by name, asking each plugin's ``register_backends`` in turn."""
    pm = pm or plugin_manager()
    _check_hooks(pm)
    distributions = _distributions(pm)
    found: dict[str, Registration] = {}
    # Call each implementation ourselves so every registration is tied to the plugin that made it.
    for impl in reversed(pm.hook.register_backends.get_hookimpls()):
        plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
        dist = distributions.get(id(impl.plugin), f"growthrec {__version__}")

        def register(backend: Backend, plugin: str = plugin, dist: str = dist) -> None:
            name = getattr(backend, "name", None)
            if not isinstance(backend, Backend) or not isinstance(name, str) or not name:
                raise PluginError(
                    f"plugin {plugin!r} registered {backend!r}, which is not a backend "
                    "(needs name, description, params, fit and score)"
                )
            has = [m for m in FACTOR_METHODS if callable(getattr(backend, m, None))]
            if len(has) == 1:
                lacks = next(m for m in FACTOR_METHODS if m not in has)
                raise PluginError(
                    f"plugin {plugin!r}: backend {name!r} has {has[0]} but not {lacks}; a "
                    "dot-product model needs both (or neither)"
                )
            if name in found:
                raise PluginError(
                    f"backend {name!r} is registered twice: by plugin {found[name].plugin!r} "
                    f"and by plugin {plugin!r}; uninstall one or block it with {BLOCK_ENV}"
                )
            found[name] = Registration(backend, plugin, dist)

        impl.function(register=register)
    return found


def get_backend(name: str, pm: pluggy.PluginManager | None = None) -> Backend:
    """The backend registered as ``name``."""
    backends = available_backends(pm)
    try:
        return backends[name].backend
    except KeyError:
        raise UnknownBackendError(
            f"unknown backend {name!r}; available: {', '.join(sorted(backends))} "
            "(see 'growthrec backends')"
        ) from None
