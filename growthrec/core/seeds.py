"""Seeds: ``None``, an int or a ``numpy.random.Generator``, resolved once per call."""

from __future__ import annotations

import numpy as np

__all__ = ["Seed", "resolve_rng"]

Seed = int | np.random.Generator | None


def resolve_rng(seed: Seed) -> np.random.Generator:
    """A generator from a seed; a given generator is used as it is (and advanced)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
