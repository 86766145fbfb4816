"""Recommendation lists from a ``Model``: for known customers, new baskets, and similar items."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import Backend, dot_product_factors
from growthrec.core.coldstart import blend_factors, mapped_factors
from growthrec.core.interactions import rows_from_baskets
from growthrec.core.item_vectors import item_vectors_for_diversity, purchase_seed
from growthrec.core.model import Model
from growthrec.core.ranking import FactorBatch, ItemsByNorm, top_k_batched, top_k_factors
from growthrec.core.reranking import (
    Cap,
    CategoryTable,
    SimilarityTable,
    category_table,
    coverage_boosts,
    rerank,
    similarity_from_categories,
    similarity_from_vectors,
    user_category_distribution,
    user_category_shares,
)
from growthrec.core.weighting import apply_weighting
from growthrec.errors import (
    DataError,
    ParameterError,
    PluginError,
    UnknownIdError,
)
from growthrec.pipeline.prepared import PreparedModel, prepare
from growthrec.pipeline.rules import ListSpec, cap_groups, filter_mask

__all__ = [
    "EXPORT_BATCH_USERS",
    "customer_rows",
    "item_categories",
    "known_items",
    "list_spec",
    "popular_items",
    "recommend",
    "recommend_baskets",
    "recommend_in_batches",
    "recommend_new_customers",
    "row_scores",
    "similar_items",
    "user_indices",
]

#: Customers x categories up to which calibration's target shares are built dense (a request,
#: a batch of a shop with few categories); beyond, sparse, as the evaluation builds them.
DENSE_SHARES_CELLS = 1 << 22


def known_items(model: Model, item_ids: Sequence[object]) -> tuple[list[object], list[object]]:
    """``item_ids`` split into those in the model's catalogue and those not, each in order."""
    index = model.train.items.index(list(item_ids)) if len(item_ids) else np.empty(0, np.int64)
    known = [i for i, n in zip(item_ids, index, strict=True) if n >= 0]
    unknown = [i for i, n in zip(item_ids, index, strict=True) if n < 0]
    return known, unknown


def user_indices(model: Model, user_ids: Sequence[object]) -> np.ndarray:
    """Training row index of each external user id; an unknown id is an error naming it."""
    index = model.train.users.index(user_ids)
    if np.any(index < 0):
        unknown = np.asarray(user_ids, dtype=object)[index < 0][0]
        raise UnknownIdError(f"user {unknown!s} is not in the model's training data")
    return index


class _RowsOf:
    """Rows ``users`` of ``matrix``, cut out batch by batch (on the ranking threads) rather
    than copied all at once: ``[start:stop]`` is ``matrix[users[start:stop]]``.

    Each thread keeps its last batch: scoring and exclusion ask for the same rows in turn.
    """

    def __init__(self, matrix: sp.csr_matrix, users: np.ndarray) -> None:
        self.matrix = matrix
        self.users = users
        self.shape = (users.size, matrix.shape[1])
        self._last = threading.local()

    def __getitem__(self, index: slice) -> sp.csr_matrix:
        key = (index.start, index.stop, index.step)
        last = getattr(self._last, "batch", None)
        if last is None or last[0] != key:
            last = self._last.batch = (key, self.matrix[self.users[index]])
        return last[1]


def _ranked(
    model: Model,
    rows: sp.csr_matrix | _RowsOf,
    users: np.ndarray,
    spec: ListSpec,
    *,
    n_threads: int,
    mapped_users: np.ndarray | None = None,
    lookalike: sp.csr_matrix | None = None,
    decay: sp.csr_matrix | _RowsOf | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The lists ``spec`` asks for, for ``rows`` (raw purchases, also what ``exclude_seen``
    excludes); ``lookalike`` (already weighted) is added to the weighted rows for scoring only.
    ``decay``: the rows' recency weights (``PreparedModel.decay``); the backend then scores
    from the decayed rows alone (``users`` -1: fold-in), so the weights reach every backend.

    Candidates come from the pruned top-k of a dot-product model or the backend's scores; when
    caps or a re-ranker re-order them, the top ``spec.candidates`` go through
    ``growthrec.core.reranking.rerank``. Scores are the model's, whatever decided the order.
    """
    options = {"mapped_users": mapped_users, "lookalike": lookalike, "decay": decay}
    items, scores = _candidates(model, rows, users, spec, n_threads=n_threads, **options)
    if not spec.reorders:
        return items, scores
    return _reranked(model, prepare(model), rows, items, scores, spec, n_threads=n_threads)


def _candidates(
    model: Model,
    rows: sp.csr_matrix | _RowsOf,
    users: np.ndarray,
    spec: ListSpec,
    *,
    n_threads: int,
    mapped_users: np.ndarray | None = None,
    lookalike: sp.csr_matrix | None = None,
    decay: sp.csr_matrix | _RowsOf | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``_ranked``'s first stage: the top ``spec.n`` (or ``spec.candidates`` when something
    re-orders them) by the model's scores, under the allow and deny lists and the filters."""
    prepared = prepare(model)
    impl = prepared.backend

    def weighted(start: int, stop: int) -> sp.csr_matrix:
        # Batch by batch: no weighted copy of every row at once, and it runs on the threads.
        out = apply_weighting(rows[start:stop], model.weighting)
        if decay is not None:
            out = decayed(out, decay[start:stop])
        return out if lookalike is None else sp.csr_matrix(out + lookalike[start:stop])

    if decay is not None:
        users = np.full(users.size, -1, dtype=np.int64)

    options = {
        "exclude_rows": rows if spec.exclude_seen else None,
        "exclude_items": _item_indices(model, spec.deny or None, "exclude"),
        "allow_items": _allowed_items(model, prepared, spec),
        "n_threads": n_threads,
    }
    k = max(spec.candidates, spec.n) if spec.reorders else spec.n
    factors = _factor_batches(prepared, model, weighted, users, mapped_users)
    if factors is not None:
        user_batch, item_factors = factors
        items, scores = top_k_factors(user_batch, rows.shape[0], item_factors, k, **options)
    else:

        def score_batch(start: int, stop: int) -> np.ndarray:
            return row_scores(model, impl, weighted(start, stop), users[start:stop])

        items, scores = top_k_batched(score_batch, rows.shape[0], model.train.n_items, k, **options)
    return items, scores


def _allowed_items(model: Model, prepared: PreparedModel, spec: ListSpec) -> np.ndarray | None:
    """Indices of the items the allow list and the filters leave (None: every item)."""
    allowed = _item_indices(model, spec.allow, "allow")
    if not spec.filters:
        return allowed
    mask = prepared.derive(
        ("filters", spec.filters), lambda: filter_mask(model.item_attributes, spec.filters)
    )
    passing = np.flatnonzero(mask)
    return passing if allowed is None else np.intersect1d(allowed, passing)


def _reranked(
    model: Model,
    prepared: PreparedModel,
    rows: sp.csr_matrix | _RowsOf,
    candidates: np.ndarray,
    scores: np.ndarray,
    spec: ListSpec,
    *,
    n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``spec``'s caps and re-ranker over each row's candidates; the model's scores kept."""
    context, caps = _rerank_context(model, prepared, rows, spec)
    if spec.rerank.coverage > 0:
        # Everything the boosts depend on; a request's allow/deny lists and filters are not.
        key = ("coverage", spec.n, spec.exclude_seen, spec.candidates, spec.caps, spec.category)
        context["boosts"] = prepared.derive(
            (*key, spec.rerank),
            lambda: _coverage_boosts(model, prepared, spec, n_threads=n_threads),
        )
    result = rerank(candidates, scores, spec.n, spec.rerank, caps=caps, **context)
    # The model's score of each chosen item: its candidate column's (-inf for padding).
    chosen = np.take_along_axis(scores, np.maximum(result.positions, 0), axis=1)
    return result.items, np.where(result.positions >= 0, chosen, -np.inf).astype(np.float32)


def _coverage_boosts(
    model: Model, prepared: PreparedModel, spec: ListSpec, *, n_threads: int
) -> np.ndarray:
    """``coverage_boosts`` from every training customer's candidates under ``spec``'s
    re-ranking and caps, without a request's allow and deny lists and filters: one table per
    model and settings, so a customer's list is the same whoever else is asked for."""
    every = np.arange(model.train.n_users)
    rules_free = attrs.evolve(spec, allow=None, deny=(), filters=())
    matrix = model.train.matrix
    items, scores = _candidates(
        model, matrix, every, rules_free, n_threads=n_threads, decay=prepared.decay
    )
    context, caps = _rerank_context(model, prepared, matrix, rules_free)
    return coverage_boosts(
        items, scores, spec.n, spec.rerank, model.train.n_items, caps=caps, **context
    )


def _rerank_context(
    model: Model, prepared: PreparedModel, rows: sp.csr_matrix | _RowsOf, spec: ListSpec
) -> tuple[dict[str, object], list[Cap]]:
    """The tables ``rerank`` needs for ``spec`` (similarity, categories, popularity) and
    its caps, each built once per model."""
    rerank_spec = spec.rerank
    context: dict[str, object] = {}
    if rerank_spec.kind != "none" and rerank_spec.strength > 0:
        if rerank_spec.kind == "calibration" or rerank_spec.similarity == "categories":
            table = prepared.derive(
                ("categories", spec.category), lambda: _category_table(model, spec.category)
            )
            context["categories"] = table
            if rerank_spec.kind == "calibration":
                history = rows[0 : rows.shape[0]]
                small = history.shape[0] * table.n_categories <= DENSE_SHARES_CELLS
                shares = user_category_shares if small else user_category_distribution
                context["user_categories"] = shares(history, table)
        if rerank_spec.kind in ("mmr", "dpp"):
            context["similarity"] = prepared.derive(
                ("similarity", rerank_spec.similarity, spec.category),
                lambda: _similarity_table(model, prepared, rerank_spec.similarity, spec.category),
            )
    if rerank_spec.popularity_penalty > 0:
        context["popularity"] = prepared.buyers
    caps = [
        Cap(
            prepared.derive(("cap", column), lambda c=column: cap_groups(model.item_attributes, c)),
            limit,
            column,
        )
        for column, limit in spec.caps
    ]
    return context, caps


def _category_table(model: Model, column: str) -> CategoryTable:
    """Items' categories from the catalogue column ``column`` (``a|b`` is two categories)."""
    if column not in model.item_attributes:
        known = ", ".join(model.item_attributes) or "none: the model has no catalogue"
        raise ParameterError(
            f"rerank: needs item categories, but the catalogue has no column {column!r} "
            f"(columns: {known}); train with a catalogue, or use --similarity factors"
        )
    values = np.asarray(model.item_attributes[column], dtype=str)
    parts = [[p for p in v.split("|") if p] for v in values.tolist()]
    names = sorted({p for row in parts for p in row})
    code = {name: n for n, name in enumerate(names)}
    rows = np.repeat(np.arange(values.size), [len(p) for p in parts])
    cols = np.array([code[p] for row in parts for p in row], dtype=np.int64)
    matrix = sp.csr_matrix(
        (np.ones(cols.size), (rows, cols)), shape=(values.size, max(len(names), 1))
    )
    return category_table(matrix)


def _similarity_table(
    model: Model, prepared: PreparedModel, kind: str, column: str
) -> SimilarityTable:
    """What MMR and the DPP compare items by: categories, item features, item factors, or
    purchase vectors (the SVD item vectors intra-list diversity is measured on, same
    dimensions and seed, so the re-ranker diversifies by the metric's own ruler)."""
    if kind == "categories":
        return similarity_from_categories(_category_table(model, column))
    if kind == "features":
        if model.item_features is None:
            raise ParameterError(
                "rerank: --similarity features needs a model trained with --item-features"
            )
        return similarity_from_vectors(model.item_features.matrix, "item features")
    if kind == "purchases":
        try:
            vectors = item_vectors_for_diversity(model.train, seed=purchase_seed(model.seed))
        except ParameterError as exc:
            raise ParameterError(f"rerank: --similarity purchases: {exc}") from None
        return similarity_from_vectors(vectors, "purchase vectors")
    if prepared.items_by_norm is None:
        raise ParameterError(
            f"rerank: --similarity factors needs a dot-product model; {model.backend} has no "
            "item factors (use purchases, categories or features)"
        )
    factors = prepared.factor_methods[0](model.arrays, model.params)
    cold = model.coldstart.get("item_factors")
    return similarity_from_vectors(np.asarray(factors if cold is None else cold), "item factors")


def _factor_batches(
    prepared: PreparedModel,
    model: Model,
    weighted: Callable[[int, int], sp.csr_matrix],
    users: np.ndarray,
    mapped_users: np.ndarray | None = None,
) -> tuple[FactorBatch, ItemsByNorm] | None:
    """User factors (batch by batch) and item factors when the backend scores ``user · item``.

    A backend says so by having ``item_factors`` and ``user_factors`` (see ``Backend``); its
    scores are then exactly these products, so ranking can skip most of them
    (``top_k_factors``). ``None`` for any other backend. A model fitted with item features
    ranks with its cold-start item factors (learned blended with mapped, see
    ``growthrec.pipeline.coldstart``); ``mapped_users``, factors of new customers from their
    features, are blended with their fold-in by basket size. The item factors come sorted by
    norm, as ``prepare`` left them.
    """
    if prepared.factor_methods is None or prepared.items_by_norm is None:
        return None
    impl, user_factors_of = prepared.backend, prepared.factor_methods[1]
    arrays, params = model.arrays, model.params
    items = prepared.items_by_norm

    def user_batch(start: int, stop: int) -> np.ndarray:
        rows = weighted(start, stop)
        out = np.asarray(user_factors_of(arrays, params, rows, users[start:stop]))
        if mapped_users is not None:
            sizes = np.diff(rows.indptr)
            shrinkage = model.coldstart_options.shrinkage
            out = blend_factors(out, mapped_users[start:stop], sizes, shrinkage)
        if out.shape != (stop - start, items.n_factors):
            raise PluginError(
                f"backend {impl.name!r}: user_factors returned shape {out.shape}, expected "
                f"({stop - start}, {items.n_factors}) like its item_factors"
            )
        return out

    return user_batch, items


def _item_indices(model: Model, item_ids: Sequence[object] | None, what: str) -> np.ndarray | None:
    if item_ids is None:
        return None
    index = model.train.items.index(list(item_ids)) if len(item_ids) else np.empty(0, np.int64)
    if np.any(index < 0):
        unknown = np.asarray(list(item_ids), dtype=object)[index < 0][0]
        raise UnknownIdError(f"{what} list: item {unknown!s} is not in the model's catalogue")
    return index


def recommend(
    model: Model,
    users: np.ndarray,
    k: int = 10,
    *,
    exclude_seen: bool = True,
    exclude_items: Sequence[object] | None = None,
    allow_items: Sequence[object] | None = None,
    n_threads: int = 1,
    spec: ListSpec | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indices and scores for training users (row indices, see ``user_indices``).

    What a user already bought is excluded unless ``exclude_seen`` is False; ``exclude_items``
    and ``allow_items`` are external item ids. Rows are padded with -1 when too few items remain.
    ``n_threads`` ranks batches of users in parallel (0: every core); the lists do not depend
    on it. ``spec`` (a ``ListSpec``: filters, caps, re-ranking), when given, decides the list
    instead of ``k``, ``exclude_seen``, ``exclude_items`` and ``allow_items``.
    """
    spec = list_spec(spec, k, exclude_seen, exclude_items, allow_items)
    users = np.asarray(users, dtype=np.int64)
    n_users = model.train.n_users
    every_user = users.size == n_users and np.array_equal(users, np.arange(n_users))
    rows = model.train.matrix if every_user else _RowsOf(model.train.matrix, users)
    decay = prepare(model).decay
    if decay is not None and not every_user:
        decay = _RowsOf(decay, users)
    return _ranked(model, rows, users, spec, n_threads=n_threads, decay=decay)


def training_rows(model: Model, users: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Training customers ``users``' weighted rows as the backend scores them, and the user
    indices to pass it: with ``model.recency`` the rows are decayed and the users -1 (fold-in)."""
    weighted = apply_weighting(model.train.matrix[users], model.weighting)
    decay = prepare(model).decay
    if decay is None:
        return weighted, users
    return decayed(weighted, decay[users]), np.full(len(users), -1, dtype=np.int64)


def decayed(weighted: sp.csr_matrix, decay: sp.csr_matrix) -> sp.csr_matrix:
    """Weighted training rows times their recency weights (``decay``: the same rows of
    ``PreparedModel.decay``, so the same pattern); a new matrix, the model's is not touched."""
    return sp.csr_matrix(
        (weighted.data * decay.data, weighted.indices, weighted.indptr), shape=weighted.shape
    )


def list_spec(
    spec: ListSpec | None,
    k: int = 10,
    exclude_seen: bool = True,
    exclude_items: Sequence[object] | None = None,
    allow_items: Sequence[object] | None = None,
) -> ListSpec:
    """``spec`` itself, or the plain ``ListSpec`` the older keyword arguments describe."""
    if spec is not None:
        return spec
    return ListSpec(
        n=k,
        exclude_seen=exclude_seen,
        allow=None if allow_items is None else tuple(allow_items),
        deny=tuple(exclude_items or ()),
    )


#: Users per batch of ``recommend_in_batches``: a few MiB of lists and ids at a time.
EXPORT_BATCH_USERS = 16_384


def recommend_in_batches(
    model: Model,
    users: np.ndarray,
    k: int = 10,
    *,
    batch_users: int = EXPORT_BATCH_USERS,
    exclude_seen: bool = True,
    exclude_items: Sequence[object] | None = None,
    allow_items: Sequence[object] | None = None,
    n_threads: int = 1,
    spec: ListSpec | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``recommend`` over ``users`` a batch at a time: (users, items, scores) of each batch.

    For writing every customer's list out as it is made (``growthrec export``): the lists are
    the same as one ``recommend`` call's, and memory does not grow with the number of users.
    """
    if int(batch_users) != batch_users or batch_users < 1:
        raise ParameterError(f"batch_users={batch_users} must be a whole number of at least 1")
    spec = list_spec(spec, k, exclude_seen, exclude_items, allow_items)
    users = np.asarray(users, dtype=np.int64)
    for start in range(0, users.size, int(batch_users)):
        batch = users[start : start + int(batch_users)]
        items, scores = recommend(model, batch, n_threads=n_threads, spec=spec)
        yield batch, items, scores


def recommend_baskets(
    model: Model,
    baskets: Sequence[Sequence[object]],
    k: int = 10,
    *,
    exclude_seen: bool = True,
    exclude_items: Sequence[object] | None = None,
    allow_items: Sequence[object] | None = None,
    spec: ListSpec | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` for customers not in training, each given as a basket of external item ids.

    The backend folds each basket in (no refit); the basket's own items are excluded by default.
    """
    return recommend_new_customers(
        model, baskets, spec=list_spec(spec, k, exclude_seen, exclude_items, allow_items)
    )


def recommend_new_customers(
    model: Model,
    baskets: Sequence[Sequence[object]] | None = None,
    features: Mapping[str, Sequence[object]] | sp.csr_matrix | None = None,
    k: int = 10,
    *,
    exclude_seen: bool = True,
    exclude_items: Sequence[object] | None = None,
    allow_items: Sequence[object] | None = None,
    spec: ListSpec | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` for customers not in training: from a basket, from their features, or both.

    ``baskets`` holds each customer's item ids (empty for one who bought nothing);
    ``features`` each customer feature column the model learned (``model.user_features``),
    one value per customer (or their rows already encoded by it). See ``customer_rows`` for
    how the two combine.
    """
    spec = list_spec(spec, k, exclude_seen, exclude_items, allow_items)
    rows, mapped, lookalike = customer_rows(model, baskets, features)
    users = np.full(rows.shape[0], -1, dtype=np.int64)
    return _ranked(model, rows, users, spec, n_threads=1, mapped_users=mapped, lookalike=lookalike)


def customer_rows(
    model: Model,
    baskets: Sequence[Sequence[object]] | None,
    features: Mapping[str, Sequence[object]] | sp.csr_matrix | None,
) -> tuple[sp.csr_matrix, np.ndarray | None, sp.csr_matrix | None]:
    """New customers as the ranking takes them: their baskets (raw purchase rows), and either
    mapped factors or weighted look-alike rows to add to them (or neither).

    A dot-product model with a customer map (fitted with ``user_features``) gets the mapped
    factors, blended with each basket's fold-in by its size. Any other model gets, in each row,
    the basket plus the mean purchases of training customers with the same feature values,
    weighted ``shrinkage / (basket size + shrinkage)``: with no basket, the best sellers among
    customers like this one.
    """
    if sp.issparse(features):  # rows encoded as model.user_features encodes (evaluations)
        encoded = sp.csr_matrix(features, dtype=np.float32)
        given = baskets if baskets is not None else [[]] * encoded.shape[0]
        if model.user_features is None or encoded.shape[1] != model.user_features.n_features:
            raise ParameterError("customer features: encoded rows unlike the model's features")
        return _with_encoded(model, rows_from_baskets(model.train.items, given), encoded)
    n = None if baskets is None else len(baskets)
    if features is not None:
        lengths = {len(v) for v in features.values()}
        if len(lengths) > 1 or (n is not None and lengths and lengths != {n}):
            raise DataError("customer features: give one value per customer in every column")
        n = lengths.pop() if lengths else (n or 0)
    if n is None:
        raise ParameterError("new customers: give baskets, features, or both")
    rows = rows_from_baskets(model.train.items, baskets if baskets is not None else [[]] * n)
    if features is None:
        return rows, None, None
    if model.user_features is None:
        raise ParameterError(
            "customer features: this model was fitted without customer features (train it with "
            "--customers FILE --user-features COLUMNS)"
        )
    wanted = [spec.column for spec in model.user_features.specs]
    missing = [c for c in wanted if c not in features]
    if missing:
        raise DataError(
            f"customer features: no value for {missing[0]!r}; the model uses {', '.join(wanted)}"
        )
    encoded = model.user_features.encode(
        {c: np.asarray(list(features[c]), dtype=object) for c in wanted}, n
    )
    unknown = (np.diff(encoded.indptr) == 0) & (np.diff(rows.indptr) == 0)
    if unknown.any():
        at = int(np.flatnonzero(unknown)[0])
        raise DataError(
            f"new customer {at + 1}: no basket and no feature value the model knows "
            f"({', '.join(f'{c}={features[c][at]!s}' for c in wanted)})"
        )
    return _with_encoded(model, rows, encoded)


def _with_encoded(
    model: Model, rows: sp.csr_matrix, encoded: sp.csr_matrix
) -> tuple[sp.csr_matrix, np.ndarray | None, sp.csr_matrix | None]:
    """``customer_rows``' result from baskets and encoded customer features."""
    user_map = model.coldstart.get("user_map")
    if user_map is not None:
        return rows, mapped_factors(encoded, user_map), None
    return rows, None, _lookalike_rows(model, encoded, np.diff(rows.indptr))


def _lookalike_rows(model: Model, encoded: sp.csr_matrix, sizes: np.ndarray) -> sp.csr_matrix:
    """Per new customer, the mean purchases of training customers sharing their features,
    weighted by basket size as ``customer_rows`` says."""
    assert model.user_features is not None
    similarity = sp.csr_matrix(encoded @ model.user_features.matrix.T)
    mean = sp.csr_matrix(similarity @ apply_weighting(model.train.matrix, model.weighting))
    totals = np.asarray(similarity.sum(axis=1)).ravel()
    shrinkage = model.coldstart_options.shrinkage
    weight = np.divide(shrinkage, sizes + shrinkage, out=np.ones(sizes.size), where=sizes > 0)
    scale = np.divide(weight, totals, out=np.zeros_like(totals), where=totals > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ mean, dtype=np.float32)


def row_scores(
    model: Model, impl: Backend, weighted: sp.csr_matrix, users: np.ndarray
) -> np.ndarray:
    """Every item's score for weighted purchase ``rows``: the backend's ``score``, or for a
    model with cold-start item factors, its user factors times those."""
    cold = model.coldstart.get("item_factors")
    methods = dot_product_factors(impl)
    if cold is None or methods is None:
        return impl.score(model.arrays, model.params, weighted, users)
    return np.asarray(methods[1](model.arrays, model.params, weighted, users)) @ cold.T


def similar_items(model: Model, items: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` items most similar to each given item index (the item itself left out)."""
    impl = prepare(model).backend
    items = np.asarray(items, dtype=np.int64)
    n_items = model.train.n_items
    one_hot = sp.csr_matrix(
        (np.ones(items.size, np.float32), (np.arange(items.size), items)),
        shape=(items.size, n_items),
    )
    if hasattr(impl, "similar_items"):

        def score_batch(start: int, stop: int) -> np.ndarray:
            return impl.similar_items(model.arrays, model.params, items[start:stop])
    else:
        weighted = apply_weighting(one_hot, model.weighting)
        unknown_users = np.full(items.size, -1, dtype=np.int64)

        def score_batch(start: int, stop: int) -> np.ndarray:
            return impl.score(
                model.arrays, model.params, weighted[start:stop], unknown_users[start:stop]
            )

    return top_k_batched(score_batch, items.size, n_items, k, exclude_rows=one_hot)


def popular_items(
    model: Model,
    k: int = 10,
    *,
    exclude_items: Sequence[object] | None = None,
    spec: ListSpec | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` items most training customers bought: the fallback for unknown customers.

    With ``spec`` the best sellers go through its rules and re-ranker like any list (a
    customer with no history: nothing of theirs is excluded, calibration has no target).
    """
    n_items = model.train.n_items
    prepared = prepare(model)
    buyers = prepared.buyers
    if spec is None:
        return top_k_batched(
            lambda start, stop: buyers[None, :],
            1,
            n_items,
            k,
            exclude_items=_item_indices(model, exclude_items, "exclude"),
        )
    depth = max(spec.candidates, spec.n) if spec.reorders else spec.n
    items, scores = top_k_batched(
        lambda start, stop: buyers[None, :],
        1,
        n_items,
        depth,
        exclude_items=_item_indices(model, spec.deny or None, "exclude"),
        allow_items=_allowed_items(model, prepared, spec),
    )
    if not spec.reorders:
        return items, scores
    nobody = sp.csr_matrix((1, n_items), dtype=np.float32)
    return _reranked(model, prepared, nobody, items, scores, spec)


def item_categories(model: Model, column: str) -> CategoryTable:
    """The items' categories from catalogue column ``column`` (``a|b`` is two), built once
    per model and shared with the re-rankers (evaluation's miscalibration reads them)."""
    return prepare(model).derive(("categories", column), lambda: _category_table(model, column))
