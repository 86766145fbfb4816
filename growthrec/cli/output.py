"""How the command line shows things: one console, one table style, JSON, progress bars."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["Output", "human_bytes"]


class _Steps:
    """A progress display of named steps; a no-op when progress is off."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("starting", total=total) if progress else None

    def step(self, description: str) -> None:
        """Mark the previous step done and show ``description`` as the current one."""
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[0]
            if task.description != "starting":
                self._progress.advance(self._task)
            self._progress.update(self._task, description=description)

    def done(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[0].total)


@attrs.define
class Output:
    """Where a command's results go: rich tables for people, or JSON for scripts (``--json``)."""

    json_mode: bool = False
    console: Console = attrs.field(factory=lambda: Console(file=sys.stdout, highlight=False))

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        title: str | None = None,
        numeric: Sequence[str] = (),
    ) -> Table:
        """The one table style of the program (numeric columns right-aligned)."""
        table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", title_style="bold")
        for column in columns:
            table.add_column(
                escape(column), justify="right" if column in numeric else "left", overflow="fold"
            )
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        return table

    def print(self, *renderables: Any) -> None:
        """Show renderables to a person; silent in JSON mode."""
        if not self.json_mode:
            self.console.print(*renderables)

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


def _cell(value: Any) -> str:
    """Cell text; data is escaped so ``[als]`` in a value is not taken for rich markup."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape(str(value))


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
