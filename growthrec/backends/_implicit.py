"""What the factor backends share: the ``implicit`` import, seeds, factors, scoring, cosine."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from types import ModuleType

import numpy as np

from growthrec.backends.contract import Arrays, ArraySpec
from growthrec.errors import ParameterError

__all__ = [
    "INSTALL_HINT",
    "cosine_similar_items",
    "factor_scores",
    "factor_specs",
    "fit_errors",
    "import_implicit",
    "library_seed",
    "user_factor_rows",
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


@contextlib.contextmanager
def fit_errors(backend: str) -> Iterator[None]:
    """``implicit``'s "NaN encountered in factors" as ``FloatingPointError``: a fit that
    diverged, which ``fit_model`` reports in one line with its likely cause."""
    model_fit_error = import_implicit(backend, "implicit.recommender_base").ModelFitError
    try:
        yield
    except model_fit_error as exc:
        raise FloatingPointError(str(exc)) from None


def factor_specs(n_users: int, n_items: int, columns: int) -> dict[str, ArraySpec]:
    """The two factor matrices of a factor model, ``columns`` wide each."""
    return {
        "user_factors": ArraySpec((n_users, columns), meaning="users x factors"),
        "item_factors": ArraySpec((n_items, columns), learned=True, meaning="items x factors"),
    }


def library_seed(rng: np.random.Generator) -> int:
    """An int seed drawn from ``rng`` for ``implicit``'s ``random_state``."""
    return int(rng.integers(2**31 - 1))


def user_factor_rows(
    arrays: Arrays, users: np.ndarray, fold_in: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """User factors of a batch: the stored ones for known users, ``fold_in(new)`` for the
    rows ``new`` of new customers (``users == -1``)."""
    new = users < 0
    if not new.any():
        return arrays["user_factors"][users]
    factors = np.empty((users.size, arrays["item_factors"].shape[1]), dtype=np.float32)
    factors[~new] = arrays["user_factors"][users[~new]]
    factors[new] = fold_in(new)
    return factors


def factor_scores(
    arrays: Arrays, users: np.ndarray, fold_in: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Scores of factor models: ``user_factor_rows`` times the item factors."""
    return user_factor_rows(arrays, users, fold_in) @ arrays["item_factors"].T


def cosine_similar_items(item_factors: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine between the factors of ``items`` and of every item, as ``implicit``'s
    ``similar_items`` computes it (a zero-norm item counts as norm 1e-10, so scores 0)."""
    norms = np.linalg.norm(item_factors, axis=1)
    norms[norms == 0] = 1e-10
    scores = item_factors[items] @ item_factors.T
    scores /= norms[None, :]
    scores /= norms[items][:, None]
    return scores
