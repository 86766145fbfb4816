"""How the command line shows things: one console, one table style, JSON, progress bars.

Text that comes from data (ids, catalogue text, file names, a user's argument) never acts on
the terminal: tables, titles and progress lines pass it through ``data_text``, which shows rich
markup such as ``[red]`` literally and control characters (ANSI escapes, bells, newlines) as
visible ``\\x1b``-style escapes. A message written as rich markup wraps each piece of data in
``data_text``; an error line on stderr goes through ``printable``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import numbers
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["Output", "data_text", "human_bytes", "printable"]

#: Characters that move the cursor, recolour or retitle a terminal, or reorder text: C0 and C1
#: controls, DEL, line/paragraph separators and the bidirectional embeddings and overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
#: A whole number as a table shows it: ``12``, ``-3.5``, ``1,234``, ``4.0060%``, ``1e-05``.
_NUMBER = re.compile(r"[+-]?(?:\d[\d,]*)?\.?\d+(?:[eE][+-]?\d+)?%?")


def printable(text: str) -> str:
    """``text`` with each control character shown as an escape: ``\\x1b``, ``\\n``, ``\\u202e``."""
    return _CONTROL.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def data_text(value: Any) -> str:
    """``value`` as rich markup that shows exactly its text: markup escaped, controls visible."""
    return escape(printable(str(value)))


class _Console(Console):
    """rich's console, but a closed stdout pipe (``| head``) is left to ``main`` to handle."""

    def on_broken_pipe(self) -> None:
        # rich would exit 1 (a data error's code); main() exits 141 (128 + SIGPIPE) quietly.
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


class _Steps:
    """A progress display of named steps; a no-op when progress is off."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("starting", total=total) if progress else None

    def step(self, description: str) -> None:
        """Mark the previous step done and show ``description`` (plain text) as the current one."""
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[0]
            if task.description != "starting":
                self._progress.advance(self._task)
            self._progress.update(self._task, description=data_text(description))

    def done(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[0].total)


@attrs.define
class Output:
    """Where a command's results go: rich tables for people, or JSON for scripts (``--json``)."""

    json_mode: bool = False
    console: Console = attrs.field(
        factory=lambda: _Console(file=sys.stdout, highlight=False, emoji=False)
    )

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        title: str | None = None,
        numeric: Sequence[str] = (),
    ) -> Table:
        """The one table style of the program (numeric columns right-aligned).

        Every header, cell and the title are data (shown literally). Text folds to fit the
        width; a number never does: its column is at least as wide as its widest number (and
        as its header's widest word with a digit).
        """
        table = Table(
            title=None if title is None else data_text(title),
            box=box.SIMPLE_HEAVY,
            title_justify="left",
            title_style="bold",
        )
        cells = [[_cell(v) for v in row] for row in rows]
        for index, column in enumerate(columns):
            widths = [_widest_number(row[index]) for row in cells if index < len(row)]
            # a header word with a digit ("ndcg@10") folded would read as another ("ndcg@1")
            widths += [len(w) for w in column.split() if any(c.isdigit() for c in w)]
            widest = max(widths, default=0)
            table.add_column(
                data_text(column),
                justify="right" if column in numeric else "left",
                overflow="fold",
                min_width=widest or None,
            )
        for row in cells:
            table.add_row(
                *("\n".join(data_text(line) for line in text.split(_LINE)) for text in row)
            )
        return table

    def print(self, *renderables: Any) -> None:
        """Show renderables to a person; silent in JSON mode.

        A table whose numbers need more than the terminal's width is printed wider (the
        terminal wraps the line) rather than cropped: no digit is ever lost or split.
        A ``str`` is rich markup: wrap any data in it with ``data_text``.
        """
        if not self.json_mode:
            self.console.print(*renderables, crop=False)

    def emit_json(self, payload: Any) -> None:
        """Print the machine-readable result (only in JSON mode)."""
        if self.json_mode:
            self.console.file.write(json.dumps(payload, indent=2, default=_jsonable) + "\n")

    @contextlib.contextmanager
    def steps(self, total: int) -> Iterator[_Steps]:
        """A progress bar over ``total`` steps, shown only on a terminal and never with --json."""
        if self.json_mode or not self.console.is_terminal:
            yield _Steps(None, total)
            return
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            steps = _Steps(progress, total)
            yield steps
            steps.done()


#: Joins the lines of a cell given as a list: a character no text from data can hold.
_LINE = "\x00"


def _cell(value: Any) -> str:
    """Cell text (plain, not yet markup): floats with four decimals, a list one line per value
    (each shown literally), the rest as ``str``."""
    if isinstance(value, list):
        return _LINE.join(printable(str(v)).replace(_LINE, "") for v in value)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"{value:.4f}"
    return str(value).replace(_LINE, "\\x00")


def _widest_number(text: str) -> int:
    """Width of the widest number among the words of ``text`` (0 if it has none)."""
    words = (word.strip("()[]{};:") for word in text.split())
    return max((len(word) for word in words if _NUMBER.fullmatch(word)), default=0)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
