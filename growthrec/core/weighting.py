"""Weighting schemes: how summed purchase counts become the values a backend learns from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from growthrec.errors import ParameterError

__all__ = [
    "WEIGHTINGS",
    "apply_weighting",
    "binary",
    "check_recency",
    "count",
    "log1p",
    "recency_decay",
]


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """1 for every pair bought at least once: what was bought, not how often."""
    out = matrix.copy()
    out.data = np.ones_like(out.data, dtype=np.float32)
    return out


def count(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The summed weights (purchase counts or quantities) as they are."""
    return matrix.astype(np.float32, copy=True)


def log1p(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """log(1 + count): repeat purchases count, with diminishing returns."""
    out = matrix.astype(np.float32, copy=True)
    np.log1p(out.data, out=out.data)
    return out


WEIGHTINGS: dict[str, Callable[[sp.csr_matrix], sp.csr_matrix]] = {
    "binary": binary,
    "count": count,
    "log1p": log1p,
}


def apply_weighting(matrix: sp.csr_matrix, name: str) -> sp.csr_matrix:
    """The matrix weighted by the scheme called ``name``."""
    try:
        scheme = WEIGHTINGS[name]
    except KeyError:
        raise ParameterError(
            f"unknown weighting {name!r}; choose one of {', '.join(WEIGHTINGS)}"
        ) from None
    return scheme(matrix)


def check_recency(half_life: float) -> float:
    """``half_life`` as a float, or a ``ParameterError``: a finite number, 0 (off) or more."""
    try:
        value = float(half_life)
    except (TypeError, ValueError):
        raise ParameterError(f"recency={half_life!r} is not a number") from None
    if not np.isfinite(value) or value < 0:
        raise ParameterError(
            f"recency={half_life!r} must be 0 (off) or a positive half-life in purchase times"
        )
    return value


def recency_decay(matrix: sp.csr_matrix, timestamps: np.ndarray, half_life: float) -> np.ndarray:
    """Each stored pair's weight by how recent it is in its customer's history, aligned with
    ``matrix.data`` (float32): ``0.5 ** (k / half_life)``, where ``k`` counts the customer's
    distinct purchase times later than this pair's (0 for the latest, so a basket bought at
    one time shares one weight).

    Why: what a customer bought last says most about what they buy next. Vectorised: one sort
    of (customer, time) keys, no loop over customers (1.3 s for 16M pairs on one core).
    """
    half_life = check_recency(half_life)
    times = np.asarray(timestamps, dtype=np.float64)
    if times.shape != matrix.data.shape:
        raise ParameterError(
            f"recency: {times.size} purchase times for {matrix.data.size} stored pairs"
        )
    if half_life == 0 or times.size == 0:
        return np.ones(times.size, dtype=np.float32)
    counts = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), counts)
    # One sort of (customer, how much later than the latest time) packed into 64 bits: exact
    # for whole seconds spanning under 2^32 (136 years); other times by their distinct rank.
    before_latest = times.max() - times
    if before_latest.max() < 2**32 and np.array_equal(before_latest, np.floor(before_latest)):
        age = before_latest.astype(np.int64)
    else:
        distinct, code = np.unique(times, return_inverse=True)
        age = (distinct.size - 1 - code).astype(np.int64)
    key = (rows << 32) | age
    order = np.argsort(key)  # each customer's pairs, latest first
    key = key[order]
    new_time = np.ones(times.size, dtype=bool)
    new_time[1:] = key[1:] != key[:-1]
    starts = matrix.indptr[:-1][counts > 0]
    new_time[starts] = True  # every customer starts at k = 0
    group = np.cumsum(new_time) - 1
    steps = group - np.repeat(group[starts], counts[counts > 0])
    out = np.empty(times.size, dtype=np.float32)
    out[order] = np.exp2(-steps / half_life)
    return out
