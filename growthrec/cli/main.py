"""The ``growthrec`` command: parse, call the core and backends, print."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from growthrec._version import __version__
from growthrec.cli import (
    add_items,
    backends_command,
    compare,
    demo,
    evaluate,
    export,
    generate,
    models,
    recommend,
    retrain,
    schedule,
    serve,
    spark_train,
    tradeoff,
    train,
    tune,
)
from growthrec.cli.output import Output, printable
from growthrec.errors import GrowthrecError

__all__ = ["Terminated", "main"]

#: Signals that end a command by unwinding it (temporary files removed), exit 128 + number.
_TERMINATING = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: Exit status when stdout is a pipe whose reader went away (``| head``): 128 + SIGPIPE.
_EXIT_BROKEN_PIPE = 141

COMMANDS = (
    generate,
    train,
    spark_train,
    recommend,
    export,
    add_items,
    evaluate,
    compare,
    tune,
    tradeoff,
    retrain,
    models,
    schedule,
    serve,
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


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds the command like ``KeyboardInterrupt`` does.

    A ``BaseException`` so that no ``except Exception`` swallows it; ``atomic_write`` removes
    its temporary file on the way out.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # Once is enough: a second signal while unwinding must not cut the cleanup short.
    for sig in _TERMINATING:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise ``Terminated`` (unless they are ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; an embedding program keeps its own
        return
    previous = {}
    for sig in _TERMINATING:
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            previous[sig] = signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _error(message: str) -> None:
    """The one line on stderr a failed command prints; data in it cannot act on the terminal."""
    with contextlib.suppress(OSError, ValueError):
        print(f"error: {printable(message)}", file=sys.stderr)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush into a closed pipe is silent."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 done, 1 a data or model file problem (or a file that cannot be read or written), 2 a
    usage error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM; 129 for SIGHUP), 141 when
    the reader of stdout went away (``growthrec ... | head``; nothing printed).
    """
    try:
        with _signals_unwind():
            code = _run(argv)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return code
    except BrokenPipeError:
        _quiet_stdout()
        return _EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Terminated as exc:
        _error(f"terminated ({exc})")
        return 128 + exc.signum


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        _error(str(exc))
        return 2
    if args.command is None:
        parser.print_help()
        return 2
    out = Output(json_mode=getattr(args, "json", False))
    try:
        args.run(args, out)
    except GrowthrecError as exc:
        _error(str(exc))
        return exc.exit_code
    except BrokenPipeError:
        raise
    except OSError as exc:  # cannot write or read a path: disk full, permissions, a folder
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
