"""What a backend is: named parameters, a fit function, and scoring from the fitted arrays."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.errors import ParameterError

__all__ = [
    "FACTOR_METHODS",
    "ArraySpec",
    "Arrays",
    "Backend",
    "FactorMethods",
    "Param",
    "array_problem",
    "array_specs",
    "check_learned_arrays",
    "default_space",
    "dot_product_factors",
    "generic_array_limit",
    "required_arrays",
    "resolve_params",
    "with_zero_rows",
]

#: The learned state of a fitted backend: named plain arrays (saved as they are, no pickle).
Arrays = Mapping[str, np.ndarray]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@attrs.frozen
class Param:
    """One backend parameter: its name, default (which fixes its type), help and valid range.

    ``aliases`` are older names still accepted (on the command line, in Python and in model
    files saved before a rename); ``resolve_params`` maps them to ``name``.

    ``search`` is where ``growthrec tune`` looks by default (``default_space``): ``(low,
    high)`` for a number, drawn log-uniformly with ``log`` (penalties, learning rates), or the
    values to choose among for a flag or a word. ``fidelity`` marks an iteration count: a
    tuning trial is first fitted with a third of it, and dropped there if it is already behind
    (pruning).
    """

    name: str
    default: bool | int | float | str
    help: str = ""
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    aliases: tuple[str, ...] = ()
    search: tuple[Any, ...] | None = None
    log: bool = False
    fidelity: bool = False

    def __attrs_post_init__(self) -> None:
        problem = _search_problem(self)
        if problem:  # a backend author's mistake, seen when the module is imported
            raise ValueError(f"Param {self.name!r}: {problem}")

    @property
    def type(self) -> type:
        return type(self.default)

    def coerce(
        self, value: Any, backend: str, given: str | None = None
    ) -> bool | int | float | str:
        """``value`` (possibly a command-line string) checked and converted to this type.

        ``given``: the name the caller used (an alias), which messages then name.
        """
        where = f"{backend}: parameter {given or self.name}"
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


def _search_problem(param: Param) -> str | None:
    """What is wrong with ``param``'s search declaration, or ``None``."""
    if param.fidelity and param.type is not int:
        return "fidelity marks an iteration count, an int parameter"
    if param.search is None:
        return "log needs a search range" if param.log else None
    numeric = param.type in (int, float)
    if numeric and len(param.search) != 2:
        return f"search={param.search!r}: a number's search is (low, high)"
    if not numeric and (param.log or not param.search):
        return f"search={param.search!r}: a {param.type.__name__} searches a tuple of values"
    try:
        values = [param.coerce(v, "search") for v in param.search]
    except ParameterError as exc:
        return str(exc)
    if numeric and not values[0] < values[1]:
        return f"search={param.search!r}: low must be below high"
    if param.log and values[0] <= 0:
        return f"search={param.search!r}: a log-uniform range must start above 0"
    return None


def default_space(backend: Backend) -> dict[str, Param]:
    """The parameters ``growthrec tune`` searches by default (those declaring ``search``)."""
    return {p.name: p for p in backend.params if getattr(p, "search", None) is not None}


@runtime_checkable
class Backend(Protocol):
    """A recommendation model behind the ``register_backends`` hook.

    A backend holds no fitted state: ``fit`` returns named arrays and every other method reads
    them back, so a fitted model is a plain value that saves to ``.npz`` without pickle.
    Matrices are float32 CSR users x items, already weighted (see ``growthrec.core.weighting``).
    Optional method: ``similar_items(arrays, params, items) -> (len(items), n_items)`` scores;
    without it, an item's neighbours are the scores of a basket holding only that item.
    Optional attribute: ``requires``, names of optional modules ``fit`` needs.

    Optional method ``array_specs(params, n_users, n_items) -> {name: ArraySpec}``: the arrays
    ``fit`` returns, each with its shape and dtype in terms of the data's size and the resolved
    parameters. A model file is checked against it from the array headers before any array is
    read (so a damaged or crafted file can neither reach ``score`` nor make growthrec allocate
    more than its dimensions allow), and every fit is checked against it. Optional method
    ``check_arrays(arrays, params, n_users, n_items) -> None``: raise ``ValueError`` with a
    one-line reason when the arrays are inconsistent in a way shapes cannot say (a sparse
    matrix's index arrays out of range, say). Without ``array_specs`` only generic checks apply:
    numeric arrays, finite floats, at most ``generic_array_limit`` elements each.
    A fit that diverges may raise ``FloatingPointError``; ``fit_model`` reports it in one line.

    Optional pair of methods, for a model whose scores are a dot product of factors:
    ``item_factors(arrays, params) -> (n_items, d)`` and ``user_factors(arrays, params, rows,
    users) -> (len(users), d)``, with ``rows`` and ``users`` as ``score`` gets them (one batch
    of customers at a time; a customer not seen in training, ``users == -1``, folded in from
    ``rows``), such that ``score`` returns ``user_factors(...) @ item_factors(...).T``. With
    both, lists are ranked by ``growthrec.core.ranking.top_k_factors``, which skips most of
    the scores and is exact (the same lists as ranking every score, ties to the lower item
    index); ``score`` still serves everything else. A backend with one of the two and not the
    other is refused when it registers.

    Optional method ``add_items(arrays, params, item_features) -> arrays``: the arrays with
    new items appended after the last one, without retraining (``growthrec add-items``).
    ``item_features`` holds the new items' feature rows, (n_new, n_features) float32 CSR,
    encoded with the columns the model learned; the arrays returned must match
    ``array_specs`` for ``n_items + n_new`` items. A factor model gives them zero factors
    (what a fit learns for an item nobody bought): lists rank them by the factors the model's
    feature map gives them (``growthrec.pipeline.coldstart``). Without the method, adding
    items to the backend's models is refused with a line saying to retrain.

    Threads: a backend that runs work in parallel has a ``threads`` parameter, 0 meaning every
    core the process may use, and turns it into a count with
    ``growthrec.core.threads.thread_count``, which never goes above a limit the caller set
    (``threadpoolctl.threadpool_limits`` or ``OMP_NUM_THREADS``); BLAS is never raised above it.
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
    """Defaults overlaid with ``given``, each checked and converted; unknown names are an error.

    A parameter's old name (``Param.aliases``) is accepted for it; the result uses the new one.
    """
    known = {p.name: p for p in backend.params}
    alias_of = {alias: p.name for p in backend.params for alias in getattr(p, "aliases", ())}
    unknown = sorted(set(given) - set(known) - set(alias_of))
    if unknown:
        valid = ", ".join(known) or "none"
        raise ParameterError(
            f"{backend.name}: unknown parameter {unknown[0]!r}; valid parameters: {valid}"
        )
    used: dict[str, str] = {}  # parameter name -> the name the caller gave it under
    for name in given:
        canonical = alias_of.get(name, name)
        if canonical in used:
            old = name if used[canonical] == canonical else used[canonical]
            raise ParameterError(
                f"{backend.name}: {used[canonical]!r} and {name!r} name one parameter "
                f"({old!r} is the old name of {canonical!r}); give one of them"
            )
        used[canonical] = name
    return {
        name: p.coerce(given[used[name]], backend.name, used[name]) if name in used else p.default
        for name, p in known.items()
    }


def with_zero_rows(array: np.ndarray, n_rows: int) -> np.ndarray:
    """``array`` with ``n_rows`` rows of zeros appended: learned rows of items added later."""
    padding = np.zeros((n_rows, *array.shape[1:]), dtype=array.dtype)
    return np.concatenate([array, padding])


#: The optional pair of methods of a model that scores by a dot product of factors.
FACTOR_METHODS = ("item_factors", "user_factors")

#: ``item_factors(arrays, params)`` and ``user_factors(arrays, params, rows, users)``.
FactorMethods = tuple[
    Callable[[Arrays, Mapping[str, Any]], np.ndarray],
    Callable[[Arrays, Mapping[str, Any], sp.csr_matrix, np.ndarray], np.ndarray],
]


def dot_product_factors(backend: Backend) -> FactorMethods | None:
    """The backend's ``item_factors`` and ``user_factors`` methods, or ``None`` without both.

    Looked up by name, never by class: a plugin gets the pruned ranking exactly as the
    built-ins do.
    """
    items = getattr(backend, "item_factors", None)
    users = getattr(backend, "user_factors", None)
    return (items, users) if callable(items) and callable(users) else None


@attrs.frozen
class ArraySpec:
    """The shape and dtype one learned array must have, for checks before and after reading it.

    ``shape`` holds exact lengths, or ``None`` for a dimension whose length only the data
    decides (then ``max_size`` bounds the number of elements). ``kinds`` are the numpy dtype
    kinds accepted (``"f"`` float, ``"iu"`` integer). ``learned``: an array that is all zero
    after a fit means the fit learned nothing. ``meaning`` names the dimensions for messages.
    ``optional``: the array may be absent (a backend that stores one of two forms, and says in
    its ``check_arrays`` which sets are whole).
    """

    shape: tuple[int | None, ...]
    kinds: str = "f"
    max_size: int | None = None
    learned: bool = False
    meaning: str = ""
    optional: bool = False


def generic_array_limit(n_users: int, n_items: int) -> int:
    """Most elements one learned array of a backend without ``array_specs`` may hold.

    Enough for per-user and per-item factors and for an items x items matrix; a model file
    whose arrays are larger than this is refused as out of line with its dimensions.
    """
    return (n_users + n_items + 1) * (n_items + 1)


def array_specs(
    backend: Backend, params: Mapping[str, Any], n_users: int, n_items: int
) -> Mapping[str, ArraySpec] | None:
    """The backend's declared learned arrays, or ``None`` if it declares none."""
    declare = getattr(backend, "array_specs", None)
    return None if declare is None else declare(params, n_users, n_items)


def array_problem(
    name: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
    spec: ArraySpec | None,
    limit: int,
) -> str | None:
    """What is wrong with an array of ``shape`` and ``dtype`` (from its header, or the array),
    or ``None``; ``limit`` bounds the elements when there is no ``spec``."""
    if dtype.hasobject or dtype.names is not None:
        return f"array {name} has dtype {dtype}, not plain numbers"
    kinds = spec.kinds if spec is not None else "biuf"
    if dtype.kind not in kinds:
        wanted = {"f": "float", "iu": "integer"}.get(kinds, f"numeric ({kinds})")
        return f"array {name} has dtype {dtype}, expected {wanted}"
    size = int(np.prod(shape, dtype=object))
    if spec is None:
        if size > limit:
            return f"array {name} has {size} elements, more than this model's size allows ({limit})"
        return None
    matches = len(shape) == len(spec.shape) and all(
        want is None or want == got for want, got in zip(spec.shape, shape, strict=True)
    )
    if not matches:
        dims = ["any" if d is None else str(d) for d in spec.shape]
        want = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        meaning = f" ({spec.meaning})" if spec.meaning else ""
        return f"array {name} has shape {tuple(shape)}, expected {want}{meaning}"
    if spec.max_size is not None and size > spec.max_size:
        return f"array {name} has {size} elements, more than its at most {spec.max_size}"
    return None


def required_arrays(specs: Mapping[str, ArraySpec]) -> list[str]:
    """The names of the declared arrays a model must have (every one not ``optional``)."""
    return [name for name, spec in specs.items() if not spec.optional]


def check_learned_arrays(
    backend: Backend,
    arrays: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
    n_users: int,
    n_items: int,
) -> None:
    """Raise ``ValueError`` naming the first learned array that is missing, extra, of the wrong
    shape or dtype, or holds NaN or infinity; then the backend's own ``check_arrays``."""
    specs = array_specs(backend, params, n_users, n_items)
    limit = generic_array_limit(n_users, n_items)
    if specs is not None:
        missing = sorted(set(required_arrays(specs)) - set(arrays))
        if missing:
            raise ValueError(f"array {missing[0]} is missing ({backend.name} needs it)")
        extra = sorted(set(arrays) - set(specs))
        if extra:
            raise ValueError(f"array {extra[0]} is not one the {backend.name} backend makes")
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"array {name} is a {type(value).__name__}, not a numpy array")
        spec = None if specs is None else specs[name]
        problem = array_problem(name, value.shape, value.dtype, spec, limit)
        if problem:
            raise ValueError(problem)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = int(np.flatnonzero(~np.isfinite(value.ravel()))[0])
            raise ValueError(f"array {name} holds {value.ravel()[bad]} at flat index {bad}")
    check = getattr(backend, "check_arrays", None)
    if check is not None:
        check(arrays, params, n_users, n_items)
