"""Fitting a backend into a ``Model``: parameters resolved, arrays checked, failures one line."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import (
    Backend,
    array_specs,
    check_learned_arrays,
    resolve_params,
)
from growthrec.backends.registry import get_backend
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.interactions import Interactions
from growthrec.core.model import Model
from growthrec.core.seeds import resolve_rng
from growthrec.core.weighting import apply_weighting, check_recency
from growthrec.errors import (
    DataError,
    GrowthrecError,
    ParameterError,
    PluginError,
)
from growthrec.pipeline.coldstart import feature_rows, fit_coldstart, item_features_as_rows

__all__ = ["LARGE_WEIGHT", "fit_model"]


def fit_model(
    data: Interactions,
    backend: str = "svd",
    params: Mapping[str, Any] | None = None,
    *,
    weighting: str = "binary",
    seed: int | None = None,
    item_attributes: Mapping[str, np.ndarray] | None = None,
    item_features: Features | None = None,
    user_features: Features | None = None,
    coldstart: ColdStart | None = None,
    start: Mapping[str, np.ndarray] | None = None,
    recency: float = 0.0,
) -> Model:
    """Fit the backend called ``backend`` on ``data`` (weighted by ``weighting``) into a Model.

    A fit that diverges (NaN or infinity) or learns nothing (all-zero factors) is refused with
    one line naming the likely cause (weights too large, parameters, too little data).

    ``item_features`` (a row per item of ``data``, products nobody bought included) and
    ``user_features`` (a row per customer) give every backend cold start (see
    ``growthrec.pipeline.coldstart``); ``coldstart`` sets how. ``start`` holds factors to
    start from instead of random ones (rows aligned with ``data``), for a backend with the
    optional ``fit_warm`` method (``als``); see ``growthrec.evaluation.retraining``.
    ``recency`` (a half-life in purchase times, 0: off) weights each training customer's
    recent purchases more when ranking them (``Model.recency``); it needs timestamps.
    """
    impl = get_backend(backend)
    resolved = resolve_params(impl, params or {})
    recency = check_recency(recency)
    if recency > 0 and data.timestamps is None:
        raise DataError(
            f"recency={recency:g} needs purchase times, and the data has none (read a time "
            "column, --time-col on the command line, or leave recency at 0)"
        )
    options = coldstart or ColdStart()
    for name, features, rows in (
        ("item_features", item_features, data.n_items),
        ("user_features", user_features, data.n_users),
    ):
        if features is not None and features.matrix.shape[0] != rows:
            raise DataError(
                f"{name}: {features.matrix.shape[0]} rows for {rows} "
                f"{'items' if name == 'item_features' else 'customers'}"
            )
    matrix = apply_weighting(data.matrix, weighting)
    if not np.isfinite(matrix.data).all():
        raise DataError(
            f"the weights do not fit in float32 after {weighting!r} weighting (a value "
            "overflows to infinity); scale the weight column down or use --weighting log1p"
        )
    try:
        # Overflow warnings would print beside the one-line error; the checks below decide.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            arrays = dict(_fit(impl, matrix, resolved, seed, item_features, options, start))
    except FloatingPointError:
        raise _fit_failure(impl, "the fit diverged (NaN)", data, matrix, params) from None
    _check_arrays(impl, arrays, resolved, data, matrix, params or {})
    arrays, cold = fit_coldstart(
        impl, arrays, resolved, data.matrix, weighting, item_features, user_features, options
    )
    attributes = {k: np.asarray(v).astype(str) for k, v in (item_attributes or {}).items()}
    for key, values in attributes.items():
        if values.shape != (data.n_items,):
            raise DataError(f"item attribute {key!r}: expected {data.n_items} values")
    return Model(
        backend,
        resolved,
        arrays,
        data,
        weighting,
        seed,
        attributes,
        item_features=item_features,
        user_features=user_features,
        coldstart=cold,
        coldstart_options=options,
        recency=recency,
    )


def _fit(
    impl: Backend,
    matrix: sp.csr_matrix,
    params: Mapping[str, Any],
    seed: int | None,
    item_features: Features | None,
    options: ColdStart,
    start: Mapping[str, np.ndarray] | None = None,
) -> Mapping[str, np.ndarray]:
    """The backend's fit, given the item features the way it takes them (if it takes them)."""
    rng = resolve_rng(seed)
    if start is not None:
        warm = getattr(impl, "fit_warm", None)
        if not callable(warm) or item_features_as_rows(impl):
            raise ParameterError(f"backend {impl.name!r} cannot start from given factors")
        return warm(matrix, params, rng, start)
    with_features = getattr(impl, "fit_with_features", None)
    if item_features is not None and callable(with_features):
        return with_features(matrix, item_features.matrix, params, rng)
    if item_features is not None and item_features_as_rows(impl):
        return impl.fit(feature_rows(matrix, item_features, options.feature_weight), params, rng)
    return impl.fit(matrix, params, rng)


def _check_arrays(
    impl: Backend,
    arrays: Mapping[str, np.ndarray],
    resolved: Mapping[str, Any],
    data: Interactions,
    weighted: sp.csr_matrix,
    given: Mapping[str, Any],
) -> None:
    """Refuse fitted arrays that are not numeric, diverged, break the backend's declared
    shapes, or hold nothing learned (every ``learned`` array all zero or empty)."""
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise ParameterError(
                f"backend {impl.name!r}: fit returned {key!r} that is not a numeric numpy array"
            )
    for key, value in arrays.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            what = f"the fit diverged (NaN or infinity in {key})"
            raise _fit_failure(impl, what, data, weighted, given)
    try:
        check_learned_arrays(impl, arrays, resolved, data.n_users, data.n_items)
    except ValueError as exc:
        raise PluginError(
            f"backend {impl.name!r}: fit returned arrays unlike its array_specs: {exc}"
        ) from None
    specs = array_specs(impl, resolved, data.n_users, data.n_items)
    learned = list(arrays) if specs is None else [k for k, s in specs.items() if s.learned]
    learned = [k for k in learned if k in arrays]  # an optional array may be absent
    learned = [k for k in learned if arrays[k].dtype.kind in "biuf"]
    if learned and not any(np.any(arrays[k]) for k in learned):
        what = f"the fit learned nothing ({', '.join(learned)} all zero or empty)"
        raise _fit_failure(impl, what, data, weighted, given)


#: Above this, a weighted value is the likely cause of a fit that diverged.
LARGE_WEIGHT = 1e6


def _fit_failure(
    impl: Backend,
    what: str,
    data: Interactions,
    weighted: sp.csr_matrix,
    given: Mapping[str, Any] | None,
) -> GrowthrecError:
    """One line for a fit that diverged or learned nothing, blaming the likeliest cause."""
    largest = float(np.abs(weighted.data).max()) if weighted.nnz else 0.0
    if largest > LARGE_WEIGHT:
        return DataError(
            f"{impl.name}: {what}: the weights are too large (up to {largest:.3g} after "
            "weighting); scale the weight column down, or use --weighting log1p or binary"
        )
    if given:
        shown = ", ".join(f"{k}={v}" for k, v in given.items())
        return ParameterError(
            f"{impl.name}: {what} with {shown}; try values nearer the defaults "
            "('growthrec backends' lists them)"
        )
    fallback = "; popularity works on any data" if impl.name != "popularity" else ""
    return DataError(
        f"{impl.name}: {what} on this data ({data.n_users} customer(s), {data.n_items} "
        f"product(s), {data.nnz} purchase(s)): too little to learn from{fallback}"
    )
