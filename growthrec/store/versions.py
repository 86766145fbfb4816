"""The model store: a directory of versioned model files, a manifest, and the champion alias.

Layout of a store directory::

    STORE/manifest.json        the one source of truth (JSON, replaced atomically)
    STORE/versions/v0001.npz   model files, one per version, never rewritten
    STORE/.lock                held (``fcntl.flock``) by whoever changes the store

The manifest records every version (backend, parameters, weighting, seed, how its data was
read, the data's fingerprint and date range, the metrics it was judged on, and a history of
when and why it was created, promoted, rejected or rolled back), every retrain's decision,
and two aliases: ``champion`` (the version served) and ``challenger`` (the last one judged).

Consistency: a version file is written (atomically) before the manifest names it, and the
manifest is replaced in one ``os.replace``, so a reader sees either the old store or the new
one, never a mix. A crash between the two steps leaves a version file the manifest does not
name: the champion is unchanged and ``orphan_versions`` reports the file (``growthrec models
list`` shows it). Changes hold an exclusive lock, so two retrains never interleave; readers
take no lock.

For a server (``growthrec.serving``): ``champion_path(store)`` is the model file to serve, and
``manifest_stamp(store)`` is a cheap ``os.stat`` of the manifest (inode, mtime in ns, size)
that changes whenever the manifest is replaced; poll it and call ``champion_path`` again when
it differs. ``champion_id(store)`` names the version, for logs and headers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from growthrec.core.model import Model
from growthrec.errors import GrowthrecError
from growthrec.store.atomic import atomic_write
from growthrec.store.modelfile import save_model

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "EXIT_STORE_BUSY",
    "MANIFEST",
    "STORE_FORMAT",
    "StoreBusyError",
    "StoreError",
    "champion_entry",
    "champion_id",
    "champion_path",
    "find_version",
    "lock_store",
    "manifest_stamp",
    "missing_versions",
    "new_manifest",
    "next_version_id",
    "now_iso",
    "orphan_versions",
    "promote_version",
    "read_manifest",
    "record_decision",
    "rollback_champion",
    "version_entry",
    "version_path",
    "write_manifest",
    "write_version",
]

STORE_FORMAT = "growthrec-store"
STORE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
VERSIONS = "versions"
CHAMPION = "champion"
CHALLENGER = "challenger"
#: Exit status when the store is locked by another change: EX_TEMPFAIL, "try again later".
EXIT_STORE_BUSY = 75
_VERSION_ID = re.compile(r"^v(\d{4,})$")


class StoreError(GrowthrecError):
    """The store directory is missing, not a store, damaged, or asked for a version it lacks."""


class StoreBusyError(StoreError):
    """Another process holds the store's lock (a retrain, a promote or a rollback)."""

    exit_code = EXIT_STORE_BUSY


def now_iso() -> str:
    """The current UTC time as ISO 8601 to the second, as the manifest records times."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def version_path(store: Path | str, version: str) -> Path:
    """Where version ``version``'s model file lives."""
    return Path(store) / VERSIONS / f"{version}.npz"


def new_manifest() -> dict[str, Any]:
    """An empty store's manifest: no version, no champion."""
    return {
        "format": STORE_FORMAT,
        "format_version": STORE_FORMAT_VERSION,
        "aliases": {CHAMPION: None, CHALLENGER: None},
        "versions": [],
        #: Every version that became champion, in order; a rollback pops the last one.
        "champions": [],
        "decisions": [],
    }


def read_manifest(store: Path | str) -> dict[str, Any]:
    """The store's manifest, checked; a missing or damaged one is one ``StoreError``."""
    path = Path(store) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(
            f"{store}: not a model store (no {MANIFEST}); create one with 'growthrec retrain "
            "--store DIR --data FILE --model NAME'"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: unreadable store manifest ({exc})") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise StoreError(f"{path}: damaged store manifest ({problem})")
    return manifest


def _manifest_problem(manifest: object) -> str | None:
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        return f"format is not {STORE_FORMAT!r}"
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > STORE_FORMAT_VERSION:
        return f"format_version {version!r} is not one this growthrec reads"
    if not all(isinstance(manifest.get(k), list) for k in ("versions", "champions", "decisions")):
        return "versions, champions and decisions must be lists"
    aliases = manifest.get("aliases")
    if not isinstance(aliases, dict):
        return "aliases must be a mapping"
    ids = {entry.get("id") for entry in manifest["versions"] if isinstance(entry, dict)}
    for alias in (CHAMPION, CHALLENGER):
        if aliases.get(alias) is not None and aliases[alias] not in ids:
            return f"alias {alias} names {aliases[alias]!r}, which is not a version"
    return None


def write_manifest(store: Path | str, manifest: Mapping[str, Any]) -> None:
    """Replace the manifest atomically (readers see the old one or this one, never a mix)."""
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    with atomic_write(Path(store) / MANIFEST) as handle:
        handle.write(text.encode("utf-8"))


def manifest_stamp(store: Path | str) -> tuple[int, int, int]:
    """(inode, mtime ns, size) of the manifest: changes whenever the store changes; cheap."""
    info = os.stat(Path(store) / MANIFEST)
    return info.st_ino, info.st_mtime_ns, info.st_size


def champion_entry(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The champion's version entry, or None in a store without one."""
    return find_version(manifest, manifest["aliases"].get(CHAMPION))


def find_version(manifest: Mapping[str, Any], version: str | None) -> dict[str, Any] | None:
    """The entry of ``version``, or None."""
    return next((e for e in manifest["versions"] if e["id"] == version), None)


def champion_id(store: Path | str) -> str | None:
    """The champion's version id, or None while the store has none."""
    return read_manifest(store)["aliases"].get(CHAMPION)


def champion_path(store: Path | str) -> Path:
    """The model file of the store's champion: what a server serves."""
    version = champion_id(store)
    if version is None:
        raise StoreError(f"{store}: the store has no champion yet (run 'growthrec retrain')")
    return version_path(store, version)


def _stored_ids(store: Path) -> set[str]:
    folder = store / VERSIONS
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob("v*.npz") if _VERSION_ID.match(p.stem)}


def orphan_versions(store: Path | str, manifest: Mapping[str, Any]) -> list[str]:
    """Version files the manifest does not name (a change stopped before recording them)."""
    named = {entry["id"] for entry in manifest["versions"]}
    return sorted(_stored_ids(Path(store)) - named)


def missing_versions(store: Path | str, manifest: Mapping[str, Any]) -> list[str]:
    """Versions the manifest names whose model file is gone (deleted by hand)."""
    present = _stored_ids(Path(store))
    return [entry["id"] for entry in manifest["versions"] if entry["id"] not in present]


def next_version_id(store: Path | str, manifest: Mapping[str, Any]) -> str:
    """A version id above every recorded one and every file on disk (orphans included)."""
    used = {entry["id"] for entry in manifest["versions"]} | _stored_ids(Path(store))
    numbers = [int(m.group(1)) for v in used if (m := _VERSION_ID.match(v))]
    return f"v{max(numbers, default=0) + 1:04d}"


def version_entry(
    version: str, model: Model, *, recipe: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any]:
    """A new version's manifest entry: what was fitted, on what data, read how."""
    return {
        "id": version,
        "file": f"{VERSIONS}/{version}.npz",
        "created": now_iso(),
        "backend": model.backend,
        "params": dict(model.params),
        "weighting": model.weighting,
        "seed": model.seed,
        "recipe": dict(recipe),
        "data": dict(data),
        "metrics": None,
        "history": [],
    }


def write_version(store: Path | str, version: str, model: Model) -> Path:
    """Write the model file of a new version (atomically); the manifest does not name it yet."""
    path = version_path(store, version)
    if path.exists():
        raise StoreError(f"{path}: version {version} exists already; versions are never rewritten")
    return save_model(model, path)


def _event(entry: dict[str, Any], action: str, reason: str) -> None:
    entry["history"].append({"at": now_iso(), "action": action, "reason": reason})


def promote_version(manifest: dict[str, Any], version: str, reason: str) -> dict[str, Any]:
    """Make ``version`` the champion in ``manifest`` (in memory), recording why."""
    entry = find_version(manifest, version)
    if entry is None:
        known = ", ".join(e["id"] for e in manifest["versions"]) or "none"
        raise StoreError(f"no version {version!r} in the store (versions: {known})")
    previous = find_version(manifest, manifest["aliases"].get(CHAMPION))
    if previous is entry:
        raise StoreError(f"{version} is the champion already")
    if previous is not None:
        _event(previous, "retired", f"replaced by {version}")
    _event(entry, "promoted", reason)
    manifest["aliases"][CHAMPION] = version
    manifest["champions"].append(version)
    return entry


def rollback_champion(manifest: dict[str, Any], reason: str) -> dict[str, Any]:
    """Make the champion before the current one the champion again (in memory)."""
    current = manifest["aliases"].get(CHAMPION)
    if current is None:
        raise StoreError("the store has no champion to roll back")
    stack = manifest["champions"]
    if len(stack) < 2:
        raise StoreError(f"{current} is the store's first champion: nothing to roll back to")
    stack.pop()
    earlier = stack[-1]
    _event(find_version(manifest, current), "rolled back", reason)
    _event(find_version(manifest, earlier), "restored", f"rollback from {current}: {reason}")
    manifest["aliases"][CHAMPION] = earlier
    return find_version(manifest, earlier)


def record_decision(manifest: dict[str, Any], decision: Mapping[str, Any]) -> None:
    """Append a retrain's decision (in memory; ``write_manifest`` stores it)."""
    manifest["decisions"].append(dict(decision))


@contextlib.contextmanager
def lock_store(store: Path | str, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the store's exclusive lock; wait up to ``wait`` seconds, then ``StoreBusyError``.

    ``flock`` is released by the kernel when the process dies, so a crashed retrain never
    leaves the store locked.
    """
    path = Path(store) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = _lock_holder(fd)
                    raise StoreBusyError(
                        f"{store}: another retrain, promote or rollback holds the store's lock"
                        f"{holder}; try again later, or pass --wait SECONDS"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {now_iso()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _lock_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 100, 0).decode().split()
        if len(text) == 2:
            return f" (pid {int(text[0])} since {text[1]})"
    return ""
