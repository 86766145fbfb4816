"""New products into a trained model from their features alone, without retraining.

``add_items`` appends a catalogue's new products to a model: their ids to the item map, empty
columns to the training matrix (nobody has bought them), their feature rows encoded with the
columns the model learned (``Features.encode``: the same vocabularies, buckets and word
weights), their catalogue attributes, and what each kind of model scores them by:

* a dot-product model with a feature map (``coldstart["item_map"]``): the new items' mapped
  factors, ``features @ W``, appended to ``coldstart["item_factors"]``, which ranking uses.
  An item with no buyers gets exactly these from a fit too (the blend weight of an item with
  no buyers is 0), so an added product is scored as if it had been in the training catalogue;
* the backend's own arrays, through its optional ``add_items`` method (see
  ``growthrec.backends.contract.Backend``): zero factors (what a fit learns for an item with
  no buyers), the ``content`` backend's new feature rows, popularity's zero counts; a
  dot-product model's stored item factors then take the mapped ones too, as a fit gives its
  items nobody bought (``with_mapped_items``), so a basket holding a new product folds in.

A backend without ``add_items`` (``ease`` and ``itemknn``, whose item-item weights are fitted
as a whole) is refused in one line that says to retrain with the new catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs
import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from growthrec.backends.contract import check_learned_arrays
from growthrec.backends.registry import get_backend
from growthrec.core.coldstart import mapped_factors
from growthrec.core.features import Features
from growthrec.core.interactions import IdMap
from growthrec.core.model import Model
from growthrec.data.catalog import catalog_attributes
from growthrec.data.features import cold_item_ids, with_cold_items
from growthrec.data.frames import arrow_table
from growthrec.errors import DataError, ParameterError, PluginError
from growthrec.pipeline.coldstart import with_mapped_items

__all__ = ["AddedItems", "add_items", "added_items"]


@attrs.frozen
class AddedItems:
    """What ``added_items`` did: the new model, the ids it added, and the ids it skipped
    because the model already had them (only with ``known="skip"``)."""

    model: Model
    added: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=np.array_equal))
    skipped: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=np.array_equal))


def add_items(
    model: Model,
    catalog: object,
    item_column: str = "item_id",
    *,
    known: Literal["error", "skip"] = "error",
    where: str = "catalogue",
) -> Model:
    """``model`` with the products of ``catalog`` it does not have, scored from their features.

    ``catalog`` is a table (pyarrow, pandas, polars; ``growthrec.data.read_catalog`` reads a
    file) with one row per product: its id in ``item_column`` and the feature columns the
    model was trained with. ``known``: what to do with a product the model already has:
    ``"error"`` (the default) refuses the catalogue naming it, ``"skip"`` leaves it as it is.
    ``where`` names the catalogue in messages (its file, say). See ``added_items``.
    """
    return added_items(model, catalog, item_column, known=known, where=where).model


def added_items(
    model: Model,
    catalog: object,
    item_column: str = "item_id",
    *,
    known: Literal["error", "skip"] = "error",
    where: str = "catalogue",
) -> AddedItems:
    """``add_items``, also saying which ids were added and which were skipped as known."""
    if known not in ("error", "skip"):
        raise ParameterError(f"add items: known={known!r}; choose 'error' or 'skip'")
    features = model.item_features
    if features is None:
        raise ParameterError(
            "add items: this model was trained without item features, so a new product has "
            "nothing to be scored by; train it with --item-features COLUMNS (and --catalog FILE)"
        )
    impl = get_backend(model.backend)
    extend = getattr(impl, "add_items", None)
    if not callable(extend):
        raise ParameterError(
            f"add items: the {model.backend} backend cannot take new products without "
            "retraining (it has no add_items method: svd, als, bpr, spark, content and "
            "popularity do); retrain with the new products in the catalogue: growthrec train "
            "... --catalog FILE --item-features COLUMNS"
        )
    table = arrow_table(catalog)
    _check_columns(table, item_column, features, where)
    items = model.train.items
    candidates = cold_item_ids(table, _empty_like(items), item_column)
    if len(candidates) == 0:
        raise DataError(f"{where}: lists no product (no id in column {item_column!r})")
    is_known = items.index(candidates) >= 0
    skipped, new_ids = candidates[is_known], candidates[~is_known]
    if skipped.size and known == "error":
        raise DataError(
            f"{where}: {skipped.size} product(s) already in the model (first: {skipped[0]!s}); "
            "leave them out of the file, or skip them with --skip-known"
        )
    if new_ids.size == 0:
        return AddedItems(model, new_ids, skipped)
    columns = catalog_attributes(table, IdMap.from_ids(new_ids), item_column)
    encoded = _encode(features, columns, new_ids, where)
    arrays = dict(extend(model.arrays, model.params, encoded))
    train = with_cold_items(model.train, new_ids)
    try:
        check_learned_arrays(impl, arrays, model.params, train.n_users, train.n_items)
    except ValueError as exc:
        raise PluginError(
            f"backend {model.backend!r}: add_items returned arrays unlike its array_specs: {exc}"
        ) from None
    coldstart = dict(model.coldstart)
    if "item_map" in coldstart:
        mapped = mapped_factors(encoded, coldstart["item_map"])
        coldstart["item_factors"] = np.vstack([coldstart["item_factors"], mapped])
        added = np.arange(model.train.n_items, train.n_items)
        arrays = dict(with_mapped_items(impl, arrays, model.params, added, mapped))
    new_model = attrs.evolve(
        model,
        arrays=arrays,
        train=train,
        item_attributes=_attributes(model.item_attributes, columns, new_ids.size),
        item_features=Features(
            features.specs, sp.vstack([features.matrix, encoded], format="csr", dtype=np.float32)
        ),
        coldstart=coldstart,
    )
    return AddedItems(new_model, new_ids, skipped)


def _empty_like(items: IdMap) -> IdMap:
    """An id map with no ids, typed as ``items`` (so catalogue ids are read as its ids are)."""
    return IdMap.from_ids(np.empty(0, dtype=np.int64 if items.kind == "int" else str))


def _check_columns(table: pa.Table, item_column: str, features: Features, where: str) -> None:
    """The id column and every feature column the model learned are in the catalogue."""
    if item_column not in table.column_names:
        others = ", ".join(repr(c) for c in table.column_names) or "none"
        raise DataError(
            f"{where}: no id column {item_column!r} (name it with --catalog-item-col); "
            f"its columns: {others}"
        )
    wanted = [spec.column for spec in features.specs]
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise DataError(
            f"{where}: no column {missing[0]!r}; the model's item features are "
            f"{', '.join(wanted)}, and a new product is encoded from all of them"
        )


def _encode(
    features: Features, columns: Mapping[str, np.ndarray], ids: np.ndarray, where: str
) -> sp.csr_matrix:
    """The new products' feature rows; a product with no usable feature value is an error."""
    for spec in features.specs:
        if spec.kind != "numeric":
            continue
        for item_id, text in zip(ids, columns[spec.column].tolist(), strict=True):
            try:
                float(text.strip() or "0")
            except ValueError:
                raise DataError(
                    f"{where}: product {item_id!s}: {spec.column} {text!r} is not a number "
                    f"(the model learned {spec.column} as numeric)"
                ) from None
    encoded = features.encode({s.column: columns[s.column] for s in features.specs}, ids.size)
    empty = np.diff(encoded.indptr) == 0
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        names = [spec.column for spec in features.specs]
        values = {c: str(columns[c][first]) for c in names}
        if any(v.strip() for v in values.values()):
            shown = ", ".join(f"{c}={v!r}" for c, v in values.items() if v.strip())
            reason = f"no feature value the model knows ({shown})"
        else:
            reason = f"no value in {', '.join(names)}"
        raise DataError(
            f"{where}: {int(empty.sum())} new product(s) cannot be scored, first "
            f"{ids[first]!s}: {reason}; fill in a value the model learned or leave it out"
        )
    return sp.csr_matrix(encoded, dtype=np.float32)


def _attributes(
    attributes: Mapping[str, np.ndarray], columns: Mapping[str, np.ndarray], n_new: int
) -> dict[str, np.ndarray]:
    """The model's catalogue columns extended with the new products' values ("" if absent)."""
    out = {}
    for name, values in attributes.items():
        added = columns.get(name, np.full(n_new, "", dtype="<U1"))
        out[name] = np.concatenate([np.asarray(values, dtype=str), np.asarray(added, dtype=str)])
    return out
