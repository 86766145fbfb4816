"""``blend``: two fitted backends' scores, each standardised per customer, mixed by a weight.

A customer's score row from each model is turned into z-scores over the items (minus the
row's mean, over its standard deviation: ``hybrid``'s ``standardised``), so neither model's
scale dominates, and item ``i`` scores ``weight · z_first[i] + (1 − weight) · z_second[i]``.
Both models are fitted on the same weighted purchases; each keeps its own parameters
(``first_params``, ``second_params``: ``name=value`` pairs separated by commas, as
``growthrec tune`` wrote them), and the model file stores both models' arrays (``first_`` and
``second_`` prefixes), each checked by its own backend's ``array_specs`` and ``check_arrays``.

Why: models that err differently average their errors away. An item-item regression
(``sparse_ease``, ``edlae``) and a factor model (``ials``, ``als``) are the classic pair. On
ml-latest-small (rating >= 4, ratio holdout) the blend of tuned ``ials`` and ``sparse_ease``
with the weight chosen on the validation split beats either alone on the test split by 3–5%
NDCG@10 (see the README's "Results on real data"). Tune the two models first, then ``weight``
(``growthrec tune --model blend --param first=... --param first_params=... --grid
weight=0.2,0.35,0.5,0.65,0.8``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import Arrays, ArraySpec, Backend, Param, resolve_params
from growthrec.backends.hookspecs import hookimpl
from growthrec.backends.hybrid import standardised
from growthrec.errors import ParameterError

__all__ = ["BlendBackend", "parse_pairs"]

#: The two models' names among the blend's parameters, and their arrays' prefixes.
PARTS = ("first", "second")


def parse_pairs(text: str, where: str) -> dict[str, str]:
    """``"a=1,b=x"`` as ``{"a": "1", "b": "x"}``; ``""`` as ``{}``. ``where`` names the field."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParameterError(
                f"{where}={text!r}: {item!r} is not name=value (give e.g. "
                "'factors=128,regularization=0.01')"
            )
        if name.strip() in pairs:
            raise ParameterError(f"{where}={text!r} gives {name.strip()!r} twice")
        pairs[name.strip()] = value.strip()
    return pairs


def _parts(params: Mapping[str, Any]) -> list[tuple[str, Backend, Mapping[str, Any]]]:
    """Each part's prefix, backend and resolved parameters, in order (first, second)."""
    return [(f"{part}_", *_part(part, params[part], params[f"{part}_params"])) for part in PARTS]


@functools.lru_cache(maxsize=64)
def _part(part: str, name: str, given: str) -> tuple[Backend, Mapping[str, Any]]:
    """One part's backend and resolved parameters, looked up once: every ``score`` call (a
    request) needs them, and a registry lookup asks every plugin (~0.2 ms each)."""
    from growthrec.backends.registry import get_backend  # the registry imports this module

    if name == BlendBackend.name:
        raise ParameterError(f"blend: {part}=blend; blend two other models")
    try:
        backend = get_backend(name)
        resolved = resolve_params(backend, parse_pairs(given, f"{part}_params"))
    except ParameterError as exc:
        raise ParameterError(f"blend: {part}={name}: {exc}") from None
    return backend, MappingProxyType(resolved)


def _streams(rng: np.random.Generator) -> list[np.random.Generator]:
    """Two independent generators drawn from ``rng``, one per model."""
    return [np.random.default_rng(int(seed)) for seed in rng.integers(0, 2**63 - 1, size=2)]


def _own(arrays: Arrays, prefix: str) -> dict[str, np.ndarray]:
    """The arrays of one part, prefix dropped."""
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


class BlendBackend:
    """Two backends fitted on the same purchases; scores are a weighted sum of their z-scores."""

    name = "blend"
    description = (
        "Blend: two backends' scores, each standardised per customer, mixed by a weight "
        "(tune each model, then weight; e.g. ials with sparse_ease)"
    )
    params = (
        Param("first", "ials", "the first model's backend (any but blend)"),
        Param(
            "first_params",
            "",
            "the first model's parameters, name=value pairs separated by commas",
        ),
        Param("second", "sparse_ease", "the second model's backend (any but blend)"),
        Param("second_params", "", "the second model's parameters, as first_params"),
        Param(
            "weight",
            0.5,
            "the first model's share of the score (0: the second alone, 1: the first alone)",
            minimum=0.0,
            maximum=1.0,
            search=(0.0, 1.0),
        ),
    )

    def fit(
        self, matrix: sp.csr_matrix, params: Mapping[str, Any], rng: np.random.Generator
    ) -> Arrays:
        """Fit both models (each with its own stream of the random generator)."""
        arrays: dict[str, np.ndarray] = {}
        for (prefix, backend, resolved), stream in zip(_parts(params), _streams(rng), strict=True):
            try:
                fitted = backend.fit(matrix, resolved, stream)
            except ParameterError as exc:  # the part's message, said of the blend
                raise ParameterError(f"blend: {prefix[:-1]}={backend.name}: {exc}") from None
            arrays |= {prefix + k: v for k, v in fitted.items()}
        return arrays

    def array_specs(
        self, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> dict[str, ArraySpec] | None:
        """Both models' declared arrays under their prefixes (``None``: a part declares none,
        and only the generic checks apply)."""
        specs: dict[str, ArraySpec] = {}
        for prefix, backend, resolved in _parts(params):
            declare = getattr(backend, "array_specs", None)
            if declare is None:
                return None
            specs |= {prefix + k: v for k, v in declare(resolved, n_users, n_items).items()}
        return specs

    def check_arrays(
        self, arrays: Arrays, params: Mapping[str, Any], n_users: int, n_items: int
    ) -> None:
        """Each model's own consistency checks, on its arrays."""
        for prefix, backend, resolved in _parts(params):
            check = getattr(backend, "check_arrays", None)
            if check is None:
                continue
            try:
                check(_own(arrays, prefix), resolved, n_users, n_items)
            except ValueError as exc:
                raise ValueError(f"{prefix[:-1]} model ({backend.name}): {exc}") from None

    def score(
        self, arrays: Arrays, params: Mapping[str, Any], rows: sp.csr_matrix, users: np.ndarray
    ) -> np.ndarray:
        weight = np.float32(params["weight"])
        (first, a, a_params), (second, b, b_params) = _parts(params)
        out = standardised(a.score(_own(arrays, first), a_params, rows, users))
        out *= weight
        out += (1 - weight) * standardised(b.score(_own(arrays, second), b_params, rows, users))
        return out


@hookimpl
def register_backends(register):
    register(BlendBackend())
