"""Atomic file writes: write beside the target, then ``os.replace``, so no half-written file.

Permissions are those an ordinary ``open(path, "w")`` gives: a new file gets ``0o666`` minus
the umask, and a file being replaced keeps its mode (as ``cp`` onto an existing file does).
The temporary file is removed on any exception, including ``KeyboardInterrupt`` and the
exception the command line raises on SIGTERM; only an uncatchable kill (SIGKILL, power loss)
can leave a hidden ``.<name>.<random>.tmp`` behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from growthrec.errors import GrowthrecError

__all__ = ["OutputExistsError", "atomic_write", "refuse_unnamed_files", "temporary_name"]

#: Permission bits of a new file before the umask, as ``open()`` uses.
_NEW_FILE_MODE = 0o666


class OutputExistsError(GrowthrecError):
    """A command would replace a file the user did not name on the command line."""


def temporary_name(target: Path) -> Path:
    """A fresh hidden name beside ``target``: ``.<name>.<random>.tmp``."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def _create_exclusive(target: Path) -> tuple[int, Path]:
    """Create a new temporary file beside ``target``; the kernel applies the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = temporary_name(target)
        try:
            return os.open(tmp, flags, _NEW_FILE_MODE), tmp
        except FileExistsError:  # 32 random bits collided: draw again
            continue


def _existing_mode(target: Path) -> int | None:
    """Permission bits of the regular file ``target`` replaces, or None if there is none."""
    try:
        info = target.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` only if the block completes."""
    target = Path(path)
    if target.is_dir():  # say so now: os.replace would name the temporary file instead
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    keep_mode = _existing_mode(target)
    fd, tmp = _create_exclusive(target)
    try:
        if keep_mode is not None and hasattr(os, "fchmod"):  # no fchmod on older Windows
            os.fchmod(fd, keep_mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def refuse_unnamed_files(files: Mapping[Path, str], *, force: bool) -> None:
    """Raise ``OutputExistsError`` for the first of ``files`` that exists, unless ``force``.

    ``files`` maps each file a command would write without the user having named it (a
    catalogue beside ``--output``, a default path) to the option that would name it (or "").
    Call it before writing anything, so that a refusal writes nothing at all.
    """
    if force:
        return
    for path, option in files.items():
        if os.path.lexists(path):
            name = f"name it with {option} {path} or " if option else ""
            raise OutputExistsError(
                f"{path}: exists and was not named on the command line; {name}pass --force "
                "to replace it"
            )
