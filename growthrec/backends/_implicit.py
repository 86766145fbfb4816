"""What the backends built on the ``implicit`` library share: the import, seeds, threads, cosine."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np

from growthrec.errors import ParameterError

__all__ = [
    "INSTALL_HINT",
    "cosine_similar_items",
    "import_implicit",
    "library_seed",
    "thread_count",
]

#: How to get the optional dependency; named in the error a fit without it raises.
INSTALL_HINT = 'pip install "growthrec[als]"'


def import_implicit(backend: str, module: str) -> ModuleType:
    """``module`` of the ``implicit`` library (e.g. ``"implicit.cpu.als"``), or a one-line error.

    Imported only when fitting, so the backend still registers (and lists) without the library.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ParameterError(
            f"backend {backend!r} needs the 'implicit' library, which is not installed "
            f"({exc}); install it with: {INSTALL_HINT}"
        ) from None


def library_seed(rng: np.random.Generator) -> int:
    """An int seed drawn from ``rng`` for ``implicit``'s ``random_state``."""
    return int(rng.integers(2**31 - 1))


def thread_count(threads: int) -> int:
    """Threads for ``implicit``'s OpenMP loops: ``threads``, or every usable core when 0."""
    if threads > 0:
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def cosine_similar_items(item_factors: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine between the factors of ``items`` and of every item, as ``implicit``'s
    ``similar_items`` computes it (a zero-norm item counts as norm 1e-10, so scores 0)."""
    norms = np.linalg.norm(item_factors, axis=1)
    norms[norms == 0] = 1e-10
    scores = item_factors[items] @ item_factors.T
    scores /= norms[None, :]
    scores /= norms[items][:, None]
    return scores
