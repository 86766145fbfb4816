"""How many threads growthrec may use: what was asked, never more than the caller allows.

One rule for every backend and for the ranking: ``threads=0`` means every core the process
may use (its CPU affinity, not the machine's core count), and a limit the caller set is
respected. The caller's limit is read from the thread pools threadpoolctl sees (BLAS and
OpenMP): a ``threadpool_limits(n)`` around the call, or ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` at start-up, caps every thread count growthrec picks, so growthrec
never raises a pool above what the caller set.

Finding the pools means scanning the loaded libraries (~2 ms): that is done again only when
the set of imported modules has changed (a native library arrives with an import), while the
limits themselves are read fresh on every call (a call into each library, microseconds).
"""

from __future__ import annotations

import os
import sys

from threadpoolctl import ThreadpoolController

__all__ = ["available_cores", "caller_limit", "thread_count"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: (len(sys.modules) when the libraries were scanned, the controller of that scan).
_scanned: tuple[int, ThreadpoolController] | None = None


def _controller() -> ThreadpoolController:
    """A controller of the thread pools loaded now, rescanned after any new import.

    A library loaded since the last look (``implicit``'s OpenMP runtime, say) comes with an
    import, so it is seen too. Threads racing here may both scan; either result is right.
    """
    global _scanned
    scanned, modules = _scanned, len(sys.modules)
    if scanned is None or scanned[0] != modules:
        scanned = _scanned = (modules, ThreadpoolController())
    return scanned[1]


def caller_limit() -> int | None:
    """The smallest thread count of the BLAS and OpenMP pools loaded now, or ``None``.

    The counts are read now (a ``threadpool_limits`` just entered is seen); the scan for the
    pools is reused while no module has been imported since.
    """
    counts = [
        int(pool["num_threads"])
        for pool in _controller().info()
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
