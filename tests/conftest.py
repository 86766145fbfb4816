"""Shared fixtures: a small synthetic shop, and the real datasets when ../shared/data exists."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from growthrec.core.interactions import Interactions, build_interactions
from growthrec.data.synthetic import generate_shop

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def plain_console(monkeypatch):
    """Not a terminal (as under a pipe), and wide enough that tables never wrap a value."""
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's real datasets; tests using them skip where the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available ({SHARED_DATA} is absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_shop() -> Interactions:
    """A small synthetic shop (200 customers x 40 products) with timestamps."""
    shop = generate_shop(200, 40, 0.1, seed=1)
    return build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)


def _java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and Path(home, "bin", "java").exists()))


@pytest.fixture(scope="session")
def spark():
    """One small local Spark session for every test that needs it, stopped at the end.

    Skips where pyspark or Java is missing. While it runs, growthrec's own fits reuse it.
    """
    pytest.importorskip("pyspark")
    if not _java_available():
        pytest.skip("Spark needs Java (java on PATH or JAVA_HOME)")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("growthrec-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
