"""What a backend is: named parameters, a fit function, and scoring from the fitted arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.errors import ParameterError

__all__ = ["Arrays", "Backend", "Param", "resolve_params"]

#: The learned state of a fitted backend: named plain arrays (saved as they are, no pickle).
Arrays = Mapping[str, np.ndarray]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@attrs.frozen
class Param:
    """One backend parameter: its name, default (which fixes its type), help and valid range."""

    name: str
    default: bool | int | float | str
    help: str = ""
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def coerce(self, value: Any, backend: str) -> bool | int | float | str:
        """``value`` (possibly a command-line string) checked and converted to this type."""
        where = f"{backend}: parameter {self.name}"
        kind = self.type
        try:
            if kind is bool:
                if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                    value = value.lower() in _TRUE
                elif not isinstance(value, (bool, np.bool_)):
                    raise ValueError
                out: bool | int | float | str = bool(value)
            elif kind is int:
                as_float = float(value)
                if isinstance(value, bool) or as_float != int(as_float):
                    raise ValueError
                out = int(as_float)
            elif kind is float:
                if isinstance(value, bool):
                    raise ValueError
                out = float(value)
                if not np.isfinite(out):
                    raise ValueError
            else:
                out = str(value)
        except (TypeError, ValueError, OverflowError):
            raise ParameterError(f"{where}={value!r} is not a valid {kind.__name__}") from None
        if self.choices is not None and out not in self.choices:
            raise ParameterError(f"{where}={out!r}; choose one of {', '.join(self.choices)}")
        if self.minimum is not None and out < self.minimum:
            raise ParameterError(f"{where}={out} must be at least {self.minimum:g}")
        if self.maximum is not None and out > self.maximum:
            raise ParameterError(f"{where}={out} must be at most {self.maximum:g}")
        return out


@runtime_checkable
class Backend(Protocol):
    """A recommendation model behind the ``register_backends`` hook.

    A backend holds no fitted state: ``fit`` returns named arrays and every other method reads
    them back, so a fitted model is a plain value that saves to ``.npz`` without pickle.
    Matrices are float32 CSR users x items, already weighted (see ``growthrec.core.weighting``).
    Optional method: ``similar_items(arrays, params, items) -> (len(items), n_items)`` scores;
    without it, an item's neighbours are the scores of a basket holding only that item.
    Optional attribute: ``requires``, names of optional modules ``fit`` needs.
    """

    name: str
    description: str
    params: Sequence[Param]

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        """Learn from the training matrix; return the arrays that scoring needs."""
        ...

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        """Dense (len(users), n_items) scores, higher is better.

        ``rows`` holds each user's weighted interactions; ``users`` their training row index,
        or -1 for a customer not seen in training (score from ``rows`` alone: fold-in).
        """
        ...


def resolve_params(backend: Backend, given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``given``, each checked and converted; unknown names are an error."""
    known = {p.name: p for p in backend.params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        valid = ", ".join(known) or "none"
        raise ParameterError(
            f"{backend.name}: unknown parameter {unknown[0]!r}; valid parameters: {valid}"
        )
    return {
        name: p.coerce(given[name], backend.name) if name in given else p.default
        for name, p in known.items()
    }
