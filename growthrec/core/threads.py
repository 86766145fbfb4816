"""How many threads growthrec may use: what was asked, never more than the caller allows.

One rule for every backend and for the ranking: ``threads=0`` means every core the process
may use (its CPU affinity, not the machine's core count), and a limit the caller set is
respected. The caller's limit is read from the thread pools threadpoolctl sees (BLAS and
OpenMP): a ``threadpool_limits(n)`` around the call, or ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` at start-up, caps every thread count growthrec picks, so growthrec
never raises a pool above what the caller set.
"""

from __future__ import annotations

import os

from threadpoolctl import ThreadpoolController

__all__ = ["available_cores", "caller_limit", "thread_count"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def caller_limit() -> int | None:
    """The smallest thread count of the BLAS and OpenMP pools loaded now, or ``None``.

    A fresh controller each time: a library loaded since the last look (``implicit``'s
    OpenMP runtime, say) is seen too. About half a millisecond.
    """
    counts = [
        int(pool["num_threads"])
        for pool in ThreadpoolController().info()
        if pool.get("num_threads") is not None
    ]
    return min(counts) if counts else None


def thread_count(n_threads: int) -> int:
    """``n_threads`` (0: every core this process may use), capped by ``caller_limit()``."""
    wanted = int(n_threads) if n_threads > 0 else available_cores()
    if wanted <= 1:
        return 1
    limit = caller_limit()
    return wanted if limit is None else max(1, min(wanted, limit))
