"""The served model: one immutable value behind one reference, swapped whole when the file changes.

``load_served`` reads a model file, checks it as ``load_model`` does, answers a smoke request
with it and precomputes what every request would otherwise recompute (the best-seller
order). ``ModelHolder`` keeps the current ``ServedModel``; a reload builds the new value
completely beside the old one, then assigns the reference once. A request reads the reference
once and finishes on the value it read, so a swap never mixes two models in one answer. Only
one model is resident, plus the new one while it is being checked.

The holder serves either one model file or a model store's champion
(``growthrec.store.versions``): for a store it polls the manifest's ``os.stat`` stamp and,
when the manifest was replaced, looks the champion up again; a promotion or rollback names
another version file, which the watcher then loads like a changed file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from growthrec.core.interactions import canonical_int
from growthrec.core.model import Model
from growthrec.errors import GrowthrecError, ModelFileError
from growthrec.pipeline.lists import popular_items, recommend, similar_items
from growthrec.pipeline.prepared import prepare
from growthrec.store.modelfile import load_model
from growthrec.store.versions import champion_id, manifest_stamp, version_path

__all__ = [
    "FileState",
    "ModelHolder",
    "ReloadOutcome",
    "ServedModel",
    "content_version",
    "file_state",
    "load_served",
    "small_pages_for_models",
]

log = logging.getLogger("growthrec.serving")

#: Characters of the content hash that name a model version (48 bits: collisions are not a
#: practical concern for the handful of models one service sees).
VERSION_CHARS = 12
#: Metadata keys of the model file surfaced by the model description when the file has them.
_META_KEYS = ("format_version", "growthrec_version", "trained_at", "data_fingerprint")


def small_pages_for_models() -> bool:
    """Stop numpy asking for transparent huge pages in this process, unless the user chose
    (``NUMPY_MADVISE_HUGEPAGE``); ``True`` if huge pages were on.

    Every swap allocates a whole model beside the one serving. With huge pages requested
    (numpy's default on Linux) each such allocation may wait for the kernel to compact
    memory: on a 2-vCPU VM a 190 MB model took 0.65-1.5 s to load that way against
    0.41-0.49 s with ordinary pages. One request's products gain nothing measurable from
    huge pages (a few MB of item factors).
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
    setter = getattr(core.multiarray, "_set_madvise_hugepage", None)
    if setter is None:  # a numpy without the switch: nothing to change
        return False
    return bool(setter(False))


@attrs.frozen
class FileState:
    """What the watcher compares: a changed inode (an atomic rename), size or mtime."""

    inode: int
    size: int
    mtime_ns: int


def file_state(path: Path) -> FileState | None:
    """The file's state now, or ``None`` where it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileState(st.st_ino, st.st_size, st.st_mtime_ns)


@attrs.frozen
class ServedModel:
    """A loaded, checked model and what requests need from it besides the model itself."""

    model: Model = attrs.field(eq=False)
    #: The content's fingerprint (``content_version``): the same content, the same version.
    version: str
    path: Path
    file: FileState
    loaded_at: float
    load_seconds: float
    meta: dict[str, Any] = attrs.field(eq=False)
    #: Of ``load_seconds``, the warm-up's (``serve --warm``; 0 without one).
    warm_seconds: float = attrs.field(default=0.0, kw_only=True)
    #: Every item index, best sellers first (ties to the lower index, as ``popular_items``).
    popular_order: np.ndarray = attrs.field(eq=False, repr=False)
    #: Customers who bought each item.
    buyers: np.ndarray = attrs.field(eq=False, repr=False)
    #: The store's version id (``v0003``) when serving a store's champion, else ``None``.
    store_version: str | None = None
    #: Customer ids sorted, and their row indices: one lookup is a binary search
    #: (``IdMap.index`` gathers the sorted ids on every call: 0.3 ms at 138k customers).
    sorted_customers: np.ndarray | None = attrs.field(default=None, eq=False, repr=False)
    customer_rows: np.ndarray | None = attrs.field(default=None, eq=False, repr=False)
    #: Ids as text for search, made on the first search (not on every swap).
    _texts: dict[str, np.ndarray] = attrs.field(factory=dict, eq=False, repr=False)

    def customer_index(self, customer: str) -> int:
        """The training row of customer id ``customer`` (text, as a request gives it), or
        -1; the same as ``IdMap.index`` (integer ids match only their canonical text)."""
        ids, rows = self.sorted_customers, self.customer_rows
        if ids is None or rows is None:
            return int(self.model.train.users.index([customer])[0])
        query: object = customer
        if ids.dtype.kind == "i":
            query = canonical_int(customer)
            if query is None:
                return -1
        at = int(np.searchsorted(ids, query))
        return int(rows[at]) if at < ids.size and ids[at] == query else -1

    def id_text(self, what: str) -> np.ndarray:
        """Item (``"items"``) or customer ids as text; a race makes it twice, harmlessly."""
        text = self._texts.get(what)
        if text is None:
            ids = self.model.train.items.ids if what == "items" else self.model.train.users.ids
            text = self._texts[what] = ids.astype(str)
        return text


def content_version(path: Path) -> str:
    """The file's version: SHA-256 over each archive member's name, size and CRC-32.

    A fingerprint of the content read from the zip directory alone (the whole file is not
    hashed again: ``load_model`` has read every member, and zip checks each one's CRC-32).
    """
    with zipfile.ZipFile(path) as archive:
        entries = sorted(f"{i.filename}:{i.file_size}:{i.CRC:08x}" for i in archive.infolist())
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:VERSION_CHARS]


def _file_meta(path: Path) -> dict[str, Any]:
    """The metadata keys worth showing (``load_model`` has already checked the file)."""
    with zipfile.ZipFile(path) as archive, archive.open("meta.npy") as handle:
        meta = json.loads(str(np.lib.format.read_array(handle, allow_pickle=False)))
    return {key: meta.get(key) for key in _META_KEYS}


def _smoke(model: Model) -> None:
    """One customer's list, the best sellers and one item's neighbours: the model answers,
    with finite scores (and what the pipeline prepares per model is ready before the swap)."""
    items, scores = recommend(model, np.zeros(1, dtype=np.int64), min(10, model.train.n_items))
    if items.shape[0] != 1 or not np.all(np.isfinite(scores[items >= 0])):
        raise ValueError(f"the first customer's list has shape {items.shape} or non-finite scores")
    popular_items(model, 1)
    similar_items(model, np.zeros(1, dtype=np.int64), min(10, model.train.n_items - 1) or 1)


def load_served(
    path: Path,
    store_version: str | None = None,
    warm: Callable[[Model], None] | None = None,
) -> ServedModel:
    """Load, check and prepare the model at ``path``; one ``ModelFileError`` line if it fails.

    A file that changes while it is read (a copy still being written) is an error too: the
    watcher will see it change and try again. ``warm`` (``serving.warmup``) runs after the
    smoke test: what it builds is ready before the model serves, and if it fails so does the
    load.
    """
    started = time.perf_counter()
    before = file_state(path)
    model = load_model(path)  # the file's own checks: every array, shape and type
    try:
        version = content_version(path)
        meta = _file_meta(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path}: could not be read again after loading ({exc})") from None
    if before is None or file_state(path) != before:
        raise ModelFileError(f"{path}: the file changed while it was being loaded")
    try:
        _smoke(model)
    except GrowthrecError as exc:
        raise ModelFileError(f"{path}: the smoke recommendation failed ({exc})") from None
    except Exception as exc:  # a plugin's bug: the old model keeps serving
        raise ModelFileError(
            f"{path}: the smoke recommendation failed ({type(exc).__name__}: {exc})"
        ) from None
    warm_seconds = 0.0
    if warm is not None:
        warm_started = time.perf_counter()
        try:
            warm(model)
        except GrowthrecError as exc:
            raise ModelFileError(f"{path}: the warm-up failed ({exc})") from None
        except Exception as exc:  # a plugin's bug, as in the smoke test
            raise ModelFileError(
                f"{path}: the warm-up failed ({type(exc).__name__}: {exc})"
            ) from None
        warm_seconds = time.perf_counter() - warm_started
    buyers = prepare(model).buyers.astype(np.int64)  # counted once, by the smoke's prepare
    customers = model.train.users.ids
    lookup: dict[str, np.ndarray | None] = {"sorted_customers": None, "customer_rows": None}
    if customers.dtype.kind in "iU":  # the kinds IdMap holds (anything else: its own lookup)
        rows = np.argsort(customers, kind="stable")
        lookup = {"sorted_customers": customers[rows], "customer_rows": rows}
    # Stable sort of the negated counts: ties go to the lower item index, as popular_items.
    order = np.argsort(-buyers, kind="stable")
    return ServedModel(
        model=model,
        version=version,
        path=path,
        file=before,
        loaded_at=time.time(),
        load_seconds=time.perf_counter() - started,
        meta=meta,
        popular_order=order,
        buyers=buyers,
        store_version=store_version,
        warm_seconds=warm_seconds,
        **lookup,
    )


@attrs.frozen
class ReloadOutcome:
    """What one reload did: ``swapped``, ``unchanged`` (same content), ``failed`` or ``retry``
    (the file was still changing)."""

    status: str
    version: str | None
    previous_version: str | None
    reason: str
    message: str = ""


class ModelHolder:
    """The current ``ServedModel`` behind one reference, with reloads and a watcher.

    ``source`` is a model file, or with ``store=True`` a model store whose champion is
    served. ``current`` is ``None`` until the first model loads. Reloads run one at a time;
    a failed one leaves the current model serving, logs one line and calls ``on_outcome``.
    ``warm`` runs on every model loaded before it serves (``serving.warmup``).
    """

    def __init__(
        self,
        source: Path,
        *,
        store: bool = False,
        on_outcome: Callable[[ReloadOutcome], None] | None = None,
        warm: Callable[[Model], None] | None = None,
    ) -> None:
        self.source = source
        #: Run on every model loaded, before it serves (``load_served``'s ``warm``).
        self.warm = warm
        self.store = source if store else None
        #: The model file served (or to serve): the source, or the champion's version file.
        self.path = source
        self.current: ServedModel | None = None
        #: The last reload's problem while no model serves (for readiness), else ``None``.
        self.last_error: str | None = None
        self._on_outcome = on_outcome
        self._lock = threading.Lock()
        self._seen: FileState | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._champion: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reload(self, reason: str) -> ReloadOutcome:
        """Load the model (a store's champion looked up again), and swap it in if it is a
        good model of different content or a different champion."""
        with self._lock:
            outcome = self._reload(reason)
        if outcome.status == "failed":
            log.error(
                "model file rejected (%s), still serving %s: %s",
                reason,
                outcome.previous_version or "nothing",
                outcome.message,
            )
        elif outcome.status == "swapped":
            served = self.current
            assert served is not None
            log.info(
                "model %s -> %s (%s): %s%s, %d customers x %d items, loaded in %.2f s%s",
                outcome.previous_version or "none",
                outcome.version,
                reason,
                served.model.backend,
                f" (store version {served.store_version})" if served.store_version else "",
                served.model.train.n_users,
                served.model.train.n_items,
                served.load_seconds,
                f" (warm-up {served.warm_seconds:.2f} s)" if served.warm_seconds else "",
            )
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome

    def _locate(self) -> None:
        """For a store: the champion's id and file now (``GrowthrecError`` if there is none)."""
        if self.store is None:
            return
        self._stamp = _stamp_or_none(self.store)
        champion = champion_id(self.store)
        if champion is None:
            raise ModelFileError(
                f"{self.store}: the store has no champion yet (run 'growthrec retrain')"
            )
        self._champion = champion
        self.path = version_path(self.store, champion)

    def _reload(self, reason: str) -> ReloadOutcome:
        old = self.current
        old_version = old.version if old is not None else None
        try:
            self._locate()
        except GrowthrecError as exc:
            if old is None:
                self.last_error = str(exc)
            return ReloadOutcome("failed", None, old_version, reason, str(exc))
        state = file_state(self.path)
        self._seen = state
        try:
            served = load_served(self.path, self._champion, self.warm)
        except ModelFileError as exc:
            if file_state(self.path) != state:  # still being written: the watcher comes back
                return ReloadOutcome("retry", None, old_version, reason, str(exc))
            if old is None:
                self.last_error = str(exc)
            return ReloadOutcome("failed", None, old_version, reason, str(exc))
        self._seen = served.file
        if (
            old is not None
            and served.version == old_version
            and served.store_version == old.store_version
        ):
            return ReloadOutcome("unchanged", old_version, old_version, reason)
        del old  # the holder's reference is the only one left to the old model
        self.current = served  # the swap: one reference assignment
        self.last_error = None
        return ReloadOutcome("swapped", served.version, old_version, reason)

    def start(self, interval: float) -> None:
        """Load the model, then watch the file (or store) every ``interval`` s, in a thread."""
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="growthrec-model-watch", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (a reload in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _changed(self) -> str | None:
        """Why the model should be loaded again now, or ``None``."""
        if self.store is not None:
            stamp = _stamp_or_none(self.store)
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    champion = champion_id(self.store)
                except GrowthrecError as exc:  # a damaged manifest: keep serving, say so once
                    log.warning(
                        "model store %s: %s; still serving the loaded model", self.store, exc
                    )
                    return None
                if champion != self._champion:
                    return f"champion {self._champion or 'none'} -> {champion or 'none'}"
        state = file_state(self.path)
        if state is not None and state != self._seen:
            return "file changed"
        if state is None and self._seen is not None:
            self._seen = None
            log.warning("model file %s is gone; still serving the loaded model", self.path)
        return None

    def _run(self, interval: float) -> None:
        # The loader runs at the request threads' priority. Niced to 2, a saturated pair of
        # workers (32 connections, 1,550 requests/s) stretched a 0.31 s load to 0.9 s and the
        # flip past one second; at 0 the load took 0.7 s, the closed loop's p99 rose from 39
        # to 48 ms. Nicer still is worse: nice counts against every process on the machine
        # (at 10 a 0.4 s load took 4-9 s on a busy machine).
        self._safe_reload("startup")
        while not self._stop.wait(interval):
            reason = self._changed()
            if reason is not None:
                self._safe_reload(reason)

    def _safe_reload(self, reason: str) -> None:
        try:
            self.reload(reason)
        except Exception:  # the watcher must survive anything, and say what happened
            log.exception("model reload (%s) failed unexpectedly", reason)


def _stamp_or_none(store: Path) -> tuple[int, int, int] | None:
    try:
        return manifest_stamp(store)
    except OSError:
        return None
