"""Warnings for a person on stderr: one plain line each, never mixed into results or --json."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from growthrec.cli.output import printable

__all__ = ["named", "warn"]


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr (plain text: ids from data are never markup)."""
    print(f"warning: {printable(message)}", file=sys.stderr)


def named(ids: Sequence[object], limit: int = 10) -> str:
    """``a, b, c`` for a message: the first ``limit`` ids, then how many more."""
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
