"""Weighting schemes: how summed purchase counts become the values a backend learns from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from growthrec.errors import ParameterError

__all__ = ["WEIGHTINGS", "apply_weighting", "binary", "count", "log1p"]


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
