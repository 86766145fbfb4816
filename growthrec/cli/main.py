"""The ``growthrec`` command: parse, call the core and backends, print."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from growthrec import __version__
from growthrec.cli import (
    backends_command,
    demo,
    evaluate,
    export,
    generate,
    recommend,
    spark_train,
    train,
    tune,
)
from growthrec.cli.output import Output
from growthrec.errors import GrowthrecError

__all__ = ["main"]

COMMANDS = (
    generate,
    train,
    spark_train,
    recommend,
    export,
    evaluate,
    tune,
    backends_command,
    demo,
)


class _UsageError(Exception):
    """argparse found the command line malformed."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2, like every other user mistake."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="growthrec",
        description="Product recommendations from purchase history (implicit feedback).",
    )
    parser.add_argument("--version", action="version", version=f"growthrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 data error, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 2
    out = Output(json_mode=getattr(args, "json", False))
    try:
        args.run(args, out)
    except GrowthrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # cannot write or read a path: disk full, permissions, a folder
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
