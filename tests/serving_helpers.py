"""The real service for tests: ``growthrec serve`` in a subprocess on a free loopback port.

No mock of the app: the command line starts uvicorn, the tests talk HTTP to it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import httpx
import numpy as np

from growthrec.core.interactions import build_interactions
from growthrec.core.model import Model
from growthrec.data.synthetic import generate_shop
from growthrec.pipeline.fitting import fit_model
from growthrec.store.modelfile import save_model

__all__ = ["Server", "free_port", "replace_file", "shop_model", "version_of", "wait_until"]


def free_port() -> int:
    """A port nobody listens on now (the server binds it right after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shop_model(
    path: Path, seed: int, factors: int = 8, columns: tuple[str, ...] = ("category",)
) -> Model:
    """A small svd model of a synthetic shop (200 customers, 40 items), with the catalogue
    ``columns`` of each item (``category``, ``price``, ``brand``)."""
    shop = generate_shop(200, 40, 0.1, seed=1)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    attributes = {}
    for column in columns:
        values = getattr(shop, f"catalog_{column}")
        of = dict(zip(shop.catalog_item_id.tolist(), values.tolist(), strict=True))
        attributes[column] = np.array([str(of[i]) for i in data.items.ids.tolist()], dtype=str)
    model = fit_model(data, "svd", {"factors": factors}, seed=seed, item_attributes=attributes)
    save_model(model, path)
    return model


def version_of(path: Path) -> str:
    """The version the service names a model file by, as its docs define it: SHA-256 over
    the archive members' ``name:size:crc32`` lines, sorted, first 12 hex digits."""
    with zipfile.ZipFile(path) as archive:
        lines = sorted(
            f"{m.filename}:{len(archive.read(m))}:{zlib.crc32(archive.read(m)):08x}"
            for m in archive.infolist()
        )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def replace_file(target: Path, source: Path | bytes) -> None:
    """Put new content at ``target`` atomically (a rename), as ``growthrec train`` writes."""
    staging = target.with_name(target.name + ".staging")
    if isinstance(source, bytes):
        staging.write_bytes(source)
    else:
        shutil.copyfile(source, staging)
    os.replace(staging, target)


def wait_until(condition, timeout: float = 20.0, every: float = 0.05):
    """Poll ``condition()`` until it returns something truthy; that value, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {condition}")
        time.sleep(every)


class Server:
    """``growthrec serve --model MODEL ...`` on a free port; stopped on exit (SIGTERM)."""

    def __init__(self, model: Path, *extra: str, log: Path, store: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        source = "--store" if store else "--model"
        argv = [sys.executable, "-m", "growthrec", "serve", source, str(model)]
        argv += ["--port", str(self.port), "--watch-interval", "0.1", *extra]
        self._log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_alive(self, timeout: float = 60.0) -> None:
        """Until /livez answers (the model may still be loading)."""

        def alive() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.log()}")
            try:
                return self.client.get("/livez").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(alive, timeout)

    def wait_ready(self, timeout: float = 60.0) -> str:
        """Until /readyz says ready; the version it serves."""
        self.wait_alive(timeout)
        response = wait_until(lambda: _ok(self.client.get("/readyz")), timeout)
        return response.json()["model_version"]

    def version(self) -> str | None:
        return self.client.get("/readyz").json().get("model_version")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ok(response: httpx.Response) -> httpx.Response | None:
    return response if response.status_code == 200 else None
