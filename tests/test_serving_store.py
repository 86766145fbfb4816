"""``growthrec serve --store``: a real store made by ``growthrec retrain``, its champion
served, and a promotion or rollback (``growthrec models``) followed by the running server."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from cli_helpers import assert_error
from serving_helpers import Server, version_of, wait_until

from growthrec.store.versions import champion_id, version_path


def _growthrec(*argv: object) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "growthrec", *map(str, argv)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store with champion v0001 (trained to the end of October) and v0002 (the whole
    year; judged, and recorded whatever the decision)."""
    folder = tmp_path_factory.mktemp("store")
    year = folder / "year.csv"
    _growthrec("generate", "--users", "300", "--items", "40", "--density", "0.1", "--seed", "1",
               "--output", year)  # fmt: skip
    with year.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    october = folder / "october.csv"
    with october.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["timestamp"] < "2025-11-01")
    store = folder / "store"
    common = ["--bootstrap", "200", "--min-holdout-customers", "5"]
    _growthrec("retrain", "--store", store, "--data", october, "--model", "svd",
               "--factors", "4", *common)  # fmt: skip
    _growthrec("retrain", "--store", store, "--data", year, "--force", *common)
    assert version_path(store, "v0002").is_file()
    if champion_id(store) != "v0001":  # promoted by the retrain: start from v0001 again
        _growthrec("models", "rollback", "--store", store)
    assert champion_id(store) == "v0001"
    return store


def _served(server: Server) -> tuple[str, str]:
    body = server.client.get("/v1/model").json()
    return body["store_version"], body["model_version"]


def test_serves_the_champion_and_follows_promote_and_rollback(store, tmp_path):
    first, second = version_path(store, "v0001"), version_path(store, "v0002")
    with Server(store, log=tmp_path / "log", store=True) as server:
        assert server.wait_ready() == version_of(first)
        assert _served(server) == ("v0001", version_of(first))
        described = server.client.get("/v1/model").json()
        assert described["path"] == str(first.resolve())
        listed = server.client.post("/v1/recommendations", json={"customer": "7", "n": 3})
        assert listed.headers["x-model-version"] == version_of(first)

        _growthrec("models", "promote", "--store", store, "v0002")
        wait_until(lambda: _served(server) == ("v0002", version_of(second)), timeout=10, every=0.01)
        flipped = time.time()
        written = (store / "manifest.json").stat().st_mtime
        assert flipped - written < 1.0  # the alias flip to the answers (the watcher: 0.1 s)
        assert server.version() == version_of(second)

        _growthrec("models", "rollback", "--store", store)
        wait_until(lambda: _served(server) == ("v0001", version_of(first)), timeout=10)
        log = server.log()
        assert "(champion v0001 -> v0002): svd (store version v0002)" in log
        assert f"-> {version_of(first)} (champion v0002 -> v0001)" in log
        metrics = server.client.get("/metrics").text
        assert 'store_version="v0001"' in metrics


def test_a_folder_that_is_no_store_is_one_line(tmp_path, capsys):
    message = assert_error(capsys, 1, "serve", "--store", tmp_path)
    assert message == (
        f"error: --store {tmp_path}: not a model store (no manifest.json); create one with "
        "'growthrec retrain --store DIR --data FILE --model NAME'"
    )


def test_model_and_store_are_one_or_the_other(tmp_path, capsys):
    message = assert_error(capsys, 2, "serve", "--store", tmp_path, "--model", tmp_path / "m")
    assert "argument --model: not allowed with argument --store" in message
