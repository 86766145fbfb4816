"""The pluggy markers of the ``growthrec`` namespace and the hooks a plugin may implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from growthrec.backends.contract import Backend

__all__ = ["hookimpl", "hookspec", "register_backends"]

hookspec = pluggy.HookspecMarker("growthrec")
hookimpl = pluggy.HookimplMarker("growthrec")


@hookspec
def register_backends(register: Callable[[Backend], None]) -> None:
    """Hand every backend this plugin provides to ``register``, once each.

    :param register: call it with a backend object (see ``growthrec.Backend``); a name that
        another plugin already registered is an error naming both plugins.
    """
