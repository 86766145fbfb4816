"""Benchmark data: synthetic shops at the prototype's scale and at MovieLens-1M's shape."""

from __future__ import annotations

import numpy as np
import pytest

from growthrec.core.interactions import Interactions, build_interactions
from growthrec.core.split import Split, split_leave_one_out
from growthrec.data.synthetic import generate_shop

#: name -> (users, items, density): the prototype's default, and MovieLens-1M's shape (1M rows).
SCALES = {
    "prototype-1k": (1_000, 100, 0.05),
    "ml1m-shape": (6_040, 3_706, 1_000_000 / (6_040 * 3_706)),
}


#: Marker of the MovieLens-20M-shape benchmarks (minutes, GiBs): they run only when asked for,
#: alone (``-m ml20m``) or after the two small sizes (``--ml20m``); by default they skip.
ML20M_MARKER = "ml20m"

#: (what, size) -> {"ours": seconds, "theirs": seconds, "target": text, ...}, filled by the
#: comparisons in bench_scale.py and printed as one table at the end of the run.
COMPARISONS: dict[tuple[str, str], dict[str, object]] = {}


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--ml20m",
        action="store_true",
        help="also run the MovieLens-20M-shape benchmarks (about 10 minutes, 2 GiB)",
    )


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", f"{ML20M_MARKER}: MovieLens-20M-shape benchmark (run with -m {ML20M_MARKER})"
    )


def pytest_collection_modifyitems(config, items) -> None:
    if config.getoption("--ml20m") or ML20M_MARKER in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason=f"20M-scale benchmark: select it with -m {ML20M_MARKER}")
    for item in items:
        if item.get_closest_marker(ML20M_MARKER):
            item.add_marker(skip)


def record(what: str, size: str, side: str, benchmark, **extra: object) -> None:
    """Note a finished benchmark's median as ``side`` ("ours" or "theirs") of a comparison."""
    entry = COMPARISONS.setdefault((what, size), {})
    entry[side] = benchmark.stats.stats.median
    entry[f"{side}_cpu"] = benchmark.extra_info.get("cpu_seconds")
    entry.update(extra)


def pytest_terminal_summary(terminalreporter) -> None:
    if not COMPARISONS:
        return
    write = terminalreporter.write_line
    write("")
    write("growthrec against the reference implementations (medians, same data, same run):")
    write(
        f"{'comparison':<34} {'size':<12} {'ours s':>9} {'theirs s':>9} {'ratio':>7} "
        f"{'CPU ratio':>9}  target"
    )
    for (what, size), entry in COMPARISONS.items():
        ours, theirs = entry.get("ours"), entry.get("theirs")
        if ours is None or theirs is None:
            continue
        speedup = entry.get("kind") == "speedup"

        def ratio(a: float, b: float, speedup: bool = speedup) -> float:
            return b / a if speedup else a / b

        cpu = (entry.get("ours_cpu"), entry.get("theirs_cpu"))
        cpu_ratio = f"{ratio(*cpu):9.2f}" if None not in cpu and min(cpu) > 0 else " " * 9
        label = "x faster" if speedup else "x the time"
        write(
            f"{what:<34} {size:<12} {ours:9.3f} {theirs:9.3f} {ratio(ours, theirs):7.2f} "
            f"{cpu_ratio}  {label}; target {entry.get('target', '')}"
        )


@pytest.fixture(scope="session", params=list(SCALES), ids=list(SCALES))
def scale(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def interactions_cache() -> dict[str, Interactions]:
    return {}


@pytest.fixture
def interactions(scale, interactions_cache) -> Interactions:
    if scale not in interactions_cache:
        shop = generate_shop(*SCALES[scale], seed=0)
        interactions_cache[scale] = build_interactions(
            shop.user_id, shop.item_id, shop.quantity, shop.timestamp
        )
    return interactions_cache[scale]


@pytest.fixture
def split(interactions) -> Split:
    return split_leave_one_out(interactions, by="latest", seed=0)


@pytest.fixture
def all_users(interactions) -> np.ndarray:
    return np.arange(interactions.n_users)
