"""Train/test splits of an interaction matrix: seeded, leak-free, same id maps on both sides."""

from __future__ import annotations

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.core.interactions import (
    Events,
    IdMap,
    Interactions,
    interactions_from_events,
    interactions_from_matrix,
)
from growthrec.core.seeds import Seed, resolve_rng
from growthrec.errors import DataError, ParameterError

__all__ = [
    "Split",
    "split_cold_items",
    "split_cold_users",
    "split_from_parts",
    "split_leave_one_out",
    "split_ratio",
    "split_temporal",
]


@attrs.frozen
class Split:
    """A train part (an ``Interactions``) and the held-out pairs of each user (a CSR matrix).

    Both share the id maps and shape of the data they came from; no pair is in both.
    ``n_train_only`` counts the users with too few interactions to hold any out.
    """

    train: Interactions
    test: sp.csr_matrix = attrs.field(eq=False)
    protocol: str
    n_train_only: int
    #: Protocol-specific counts worth reporting (e.g. customers unseen before a cutoff).
    counts: dict[str, int] = attrs.field(factory=dict)
    #: Cold-item protocol: True for the items held out entirely (no train interaction).
    cold_items: np.ndarray | None = attrs.field(default=None, eq=False)
    #: Cold-user protocol: True for the customers held out entirely (empty train rows).
    cold_users: np.ndarray | None = attrs.field(default=None, eq=False)
    #: Cold-user protocol with a first purchase: each cold customer's first basket (the test
    #: part holds what they bought after it).
    first_purchases: sp.csr_matrix | None = attrs.field(default=None, eq=False)

    @property
    def n_test_users(self) -> int:
        return int(np.count_nonzero(np.diff(self.test.indptr)))


def _row_of_each_entry(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def _select(m: sp.csr_matrix, mask: np.ndarray) -> sp.csr_matrix:
    """The stored entries of ``m`` where ``mask`` is True, same shape (sorted rows stay sorted)."""
    indptr = np.zeros(m.shape[0] + 1, dtype=m.indptr.dtype)
    np.cumsum(np.bincount(_row_of_each_entry(m)[mask], minlength=m.shape[0]), out=indptr[1:])
    out = sp.csr_matrix((m.data[mask], m.indices[mask], indptr), shape=m.shape)
    out.has_sorted_indices = m.has_sorted_indices
    return out


def _split_by_mask(data: Interactions, held: np.ndarray, protocol: str, n_train_only: int) -> Split:
    m = data.matrix
    keep = ~held
    timestamps = None if data.timestamps is None else data.timestamps[keep]
    train = data.with_matrix(_select(m, keep), timestamps)
    return Split(train=train, test=_select(m, held), protocol=protocol, n_train_only=n_train_only)


def split_leave_one_out(
    data: Interactions, *, by: str = "random", seed: Seed = None, min_interactions: int = 2
) -> Split:
    """Hold out one item per user: a random one, or the latest (``by="latest"``, needs timestamps).

    Users with fewer than ``min_interactions`` distinct items stay in train only. Ties on the
    latest time are broken at random (seeded): a basket bought at once has no latest item.
    """
    if by not in ("random", "latest"):
        raise ParameterError(f"leave-one-out: by={by!r}; choose 'random' or 'latest'")
    if by == "latest" and data.timestamps is None:
        raise ParameterError("leave-one-out by='latest' needs timestamps; the data has none")
    if min_interactions < 2:
        raise ParameterError(f"min_interactions={min_interactions} must be at least 2")
    rng = resolve_rng(seed)
    m = data.matrix
    counts = np.diff(m.indptr)
    eligible = counts >= min_interactions
    # A random key per stored pair; per row the entry with the largest (time, key) is held out.
    # Rows are contiguous in CSR, so per-row maxima (reduceat) replace a sort: O(nnz).
    rows = _row_of_each_entry(m)
    tiebreak = rng.random(m.nnz)
    filled = counts > 0
    starts, lengths = m.indptr[:-1][filled], counts[filled]
    if by == "latest":
        primary = data.timestamps
        latest = primary == np.repeat(np.maximum.reduceat(primary, starts), lengths)
    else:
        latest = np.ones(m.nnz, dtype=bool)
    key = np.where(latest, tiebreak, -1.0)
    best = key == np.repeat(np.maximum.reduceat(key, starts), lengths)
    # An exact tie on the random key too keeps the last such entry of the row, so one per row.
    candidates = np.flatnonzero(best & eligible[rows])
    last = np.ones(candidates.size, dtype=bool)
    np.not_equal(rows[candidates[1:]], rows[candidates[:-1]], out=last[:-1])
    held = np.zeros(m.nnz, dtype=bool)
    held[candidates[last]] = True
    if not held.any():
        raise DataError(f"leave-one-out: no user has {min_interactions} or more interactions")
    return _split_by_mask(
        data, held, f"leave-one-out ({by})", int(np.count_nonzero(~eligible & (counts > 0)))
    )


def split_ratio(
    data: Interactions, *, test_ratio: float = 0.2, seed: Seed = None, min_interactions: int = 2
) -> Split:
    """Hold out a random ``test_ratio`` of each user's items (at least one, never all of them).

    A user with n items holds out ``round(test_ratio * n)`` clipped to [1, n - 1]; users with
    fewer than ``min_interactions`` items stay in train only.
    """
    if not 0.0 < test_ratio < 1.0:
        raise ParameterError(f"test_ratio={test_ratio} must be between 0 and 1 (exclusive)")
    if min_interactions < 2:
        raise ParameterError(f"min_interactions={min_interactions} must be at least 2")
    rng = resolve_rng(seed)
    m = data.matrix
    counts = np.diff(m.indptr)
    eligible = counts >= min_interactions
    n_test = np.where(eligible, np.clip(np.rint(test_ratio * counts), 1, counts - 1), 0)
    rows = _row_of_each_entry(m)
    order = np.lexsort((rng.random(m.nnz), rows))
    position = np.empty(m.nnz, dtype=np.int64)
    position[order] = np.arange(m.nnz) - m.indptr[rows[order]]
    held = position < n_test[rows]
    if not held.any():
        raise DataError("ratio split: no user has enough interactions to hold any out")
    return _split_by_mask(
        data,
        held,
        f"ratio holdout ({test_ratio:g})",
        int(np.count_nonzero(~eligible & (counts > 0))),
    )


def _pair_keys(matrix: sp.csr_matrix) -> np.ndarray:
    return _row_of_each_entry(matrix).astype(np.int64) * matrix.shape[1] + matrix.indices


def split_temporal(
    events: Events, *, cutoff: float | None = None, test_fraction: float = 0.2
) -> Split:
    """Train on the events before ``cutoff`` (Unix seconds), test on what came after.

    The default cutoff leaves the last ``test_fraction`` of events for test. The test part holds,
    for each customer seen before the cutoff, the items first bought after it: a repeat of an
    item bought before is not a held-out pair (it is in train, and recommendations exclude it).
    Nothing is dropped silently: ``counts`` reports customers only seen after the cutoff (they
    cannot be ranked), repeats, and test pairs whose item nobody bought before the cutoff
    (kept: they count as misses for every model).
    """
    if events.timestamps is None:
        raise ParameterError("a temporal split needs timestamps; the data has none")
    times = events.timestamps
    if cutoff is None:
        if not 0.0 < test_fraction < 1.0:
            raise ParameterError(f"test_fraction={test_fraction} must be between 0 and 1")
        cutoff = float(np.quantile(times, 1.0 - test_fraction, method="higher"))
    before = times < cutoff
    if before.all() or not before.any():
        raise DataError(
            "temporal split: every event falls on one side of the cutoff; choose a cutoff "
            "between the first and the last event"
        )
    train = interactions_from_events(events.select(before))
    after = interactions_from_events(events.select(~before)).matrix
    train_rows = np.diff(train.matrix.indptr) > 0
    after_rows = np.repeat(np.arange(after.shape[0]), np.diff(after.indptr))
    cold_user = ~train_rows[after_rows]
    train_keys = _pair_keys(train.matrix)
    after_keys = _pair_keys(after)
    pos = np.minimum(np.searchsorted(train_keys, after_keys), max(train_keys.size - 1, 0))
    repeat = train_keys[pos] == after_keys if train_keys.size else np.zeros_like(cold_user)
    keep = ~cold_user & ~repeat
    item_seen = np.bincount(train.matrix.indices, minlength=train.n_items) > 0
    cold_item = keep & ~item_seen[after.indices]
    indptr = np.zeros(after.shape[0] + 1, dtype=after.indptr.dtype)
    np.cumsum(np.bincount(after_rows[keep], minlength=after.shape[0]), out=indptr[1:])
    test = sp.csr_matrix((after.data[keep], after.indices[keep], indptr), shape=after.shape)
    test.has_sorted_indices = True
    tested = np.diff(indptr) > 0
    when = np.datetime64(int(cutoff), "s").astype(str).replace("T", " ")
    return Split(
        train=train,
        test=test,
        protocol=f"temporal (cutoff {when})",
        n_train_only=int(np.count_nonzero(train_rows & ~tested)),
        counts={
            "cutoff": int(cutoff),
            "customers_only_after_cutoff": int(np.unique(after_rows[cold_user]).size),
            "repeat_pairs_after_cutoff": int(np.count_nonzero(repeat & ~cold_user)),
            "test_pairs_with_items_new_after_cutoff": int(np.count_nonzero(cold_item)),
        },
    )


def split_from_parts(
    train: Interactions | sp.spmatrix | sp.sparray | np.ndarray,
    test: Interactions | sp.spmatrix | sp.sparray | np.ndarray,
    *,
    protocol: str = "given",
) -> Split:
    """A ``Split`` from train and test parts made elsewhere, to evaluate on your own split.

    Each part is an ``Interactions`` or a customers x items matrix (which takes the other
    part's ids, or ``0..n-1``); two matrices must have the same shape. Two ``Interactions`` may
    have different id maps: test is mapped onto train's, and items only in test get a column
    nobody bought in train (they count as misses, as in a temporal split). Test customers with
    no train purchases cannot be ranked and are left out. ``counts`` reports both. A pair in
    both parts is an error: lists never repeat what a customer bought in train, so it could
    never be found.
    """
    if not isinstance(protocol, str) or not protocol.strip():
        raise ParameterError(f"protocol={protocol!r}: expected a short text naming the split")
    train_data, test_data = _given_parts(train, test)
    train_data, test_matrix, unknown_users = _aligned(train_data, test_data)
    bought = np.diff(train_data.matrix.indptr) > 0
    cold = (np.diff(test_matrix.indptr) > 0) & ~bought
    if cold.any():
        test_matrix = _select(test_matrix, ~cold[_row_of_each_entry(test_matrix)])
    if test_matrix.nnz == 0:
        raise DataError("test: no held-out pair belongs to a customer with train purchases")
    _refuse_overlap(train_data, test_matrix)
    item_bought = np.bincount(train_data.matrix.indices, minlength=train_data.n_items) > 0
    tested = np.diff(test_matrix.indptr) > 0
    return Split(
        train=train_data,
        test=test_matrix,
        protocol=protocol,
        n_train_only=int(np.count_nonzero(bought & ~tested)),
        counts={
            "customers_only_in_test": unknown_users + int(np.count_nonzero(cold)),
            "test_pairs_with_items_not_in_train": int(
                np.count_nonzero(~item_bought[test_matrix.indices])
            ),
        },
    )


def _given_parts(train: object, test: object) -> tuple[Interactions, Interactions]:
    """Both parts as ``Interactions``; a matrix takes the id maps of the other part."""

    def convert(part: object, name: str, like: Interactions | None) -> Interactions:
        if isinstance(part, Interactions):
            return part
        try:
            data = interactions_from_matrix(part)
        except DataError as exc:
            raise DataError(f"{name}: {exc}") from None
        if like is None:
            return data
        if data.matrix.shape != like.matrix.shape:
            other = "test" if name == "train" else "train"
            raise DataError(
                f"{name}: the matrix is {_shape(data.matrix)} but {other} has "
                f"{_shape(like.matrix)} (customers x items); row i and column j must mean the "
                "same customer and item in both"
            )
        return Interactions(data.matrix, like.users, like.items)

    if isinstance(train, Interactions):
        return train, convert(test, "test", train)
    if isinstance(test, Interactions):
        return convert(train, "train", test), test
    return (train_data := convert(train, "train", None)), convert(test, "test", train_data)


def _shape(matrix: sp.csr_matrix) -> str:
    return f"{matrix.shape[0]:,} x {matrix.shape[1]:,}"


_KINDS = {"int": "integers", "str": "text"}


def _aligned(train: Interactions, test: Interactions) -> tuple[Interactions, sp.csr_matrix, int]:
    """Train (with a column for each item only in test) and test on train's id maps.

    Also returns how many test customers with purchases are not in train's id map at all.
    """
    if train.users == test.users and train.items == test.items:
        return train, test.matrix.tocsr(), 0
    for what, ours, theirs in (
        ("user", train.users, test.users),
        ("item", train.items, test.items),
    ):
        if ours.kind != theirs.kind:
            raise DataError(
                f"train {what} ids are {_KINDS[ours.kind]} but test {what} ids are "
                f"{_KINDS[theirs.kind]}; build both parts the same way"
            )
    new_items = test.items.ids[train.items.index(test.items.ids) < 0]
    if new_items.size:
        items = IdMap.from_ids(np.concatenate([train.items.ids, new_items]))
        m = train.matrix
        widened = sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], len(items)))
        train = Interactions(widened, train.users, items, train.timestamps)
    t = test.matrix.tocsr()
    user_index = train.users.index(test.users.ids)
    rows = user_index[_row_of_each_entry(t)]
    columns = train.items.index(test.items.ids)[t.indices]
    known = rows >= 0
    unknown_users = int(np.count_nonzero((np.diff(t.indptr) > 0) & (user_index < 0)))
    matrix = sp.csr_matrix(
        (t.data[known].astype(np.float32), (rows[known], columns[known])), shape=train.matrix.shape
    )
    matrix.sum_duplicates()
    return train, matrix, unknown_users


def _refuse_overlap(train: Interactions, test: sp.csr_matrix) -> None:
    """A pair held out in test that is also in train is an error naming the first one."""
    train_keys = _pair_keys(train.matrix)
    test_keys = _pair_keys(test)
    shared = test_keys[np.isin(test_keys, train_keys)]
    if shared.size:
        user, item = divmod(int(shared.min()), train.n_items)
        raise DataError(
            f"train and test share {shared.size:,} customer-item pair(s) (first: customer "
            f"{train.users.external([user])[0]!s}, item {train.items.external([item])[0]!s}); "
            "a held-out pair must not be in train (drop repeat purchases from test, as the "
            "temporal protocol does)"
        )


def _cold_count(
    what: str, n_candidates: int, fraction: float, count: int | None, among: str
) -> int:
    """How many of ``n_candidates`` rows to hold out: ``count``, or ``fraction`` of them,
    at least one and never all."""
    if count is None and not 0.0 < fraction < 1.0:
        raise ParameterError(
            f"cold {what}: fraction={fraction} must be between 0 and 1 (exclusive), e.g. 0.2"
        )
    if n_candidates < 2:
        raise DataError(
            f"cold {what}: {n_candidates} {what} with purchases{among}; holding some out "
            "entirely needs at least 2"
        )
    n = int(np.rint(fraction * n_candidates)) if count is None else int(count)
    return int(np.clip(n, 1, n_candidates - 1))


def _newest_or_random(
    codes: np.ndarray,
    times: np.ndarray | None,
    candidates: np.ndarray,
    n_cold: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A mask of ``n_cold`` candidate rows: the newest by first event time (ties broken at
    random), or a random draw when there are no times."""
    pool = np.flatnonzero(candidates)
    tiebreak = rng.random(pool.size)
    if times is None:
        chosen = pool[np.argsort(tiebreak, kind="stable")[:n_cold]]
    else:
        first = np.full(candidates.size, np.inf)
        np.minimum.at(first, codes, times)
        # Newest first: largest first time, then the random key.
        chosen = pool[np.lexsort((tiebreak, -first[pool]))[:n_cold]]
    mask = np.zeros(candidates.size, dtype=bool)
    mask[chosen] = True
    return mask


def _candidates(n: int, codes: np.ndarray, eligible: np.ndarray | None, what: str) -> np.ndarray:
    """Rows with at least one event (and, with ``eligible``, marked True in it)."""
    bought = np.bincount(codes, minlength=n) > 0
    if eligible is None:
        return bought
    eligible = np.asarray(eligible, dtype=bool)
    if eligible.shape != (n,):
        raise ParameterError(f"cold {what}: eligible has shape {eligible.shape}, expected ({n},)")
    return bought & eligible


def split_cold_items(
    events: Events,
    *,
    fraction: float = 0.2,
    count: int | None = None,
    test_ratio: float = 0.2,
    seed: Seed = None,
    eligible: np.ndarray | None = None,
) -> Split:
    """Hold out a ``fraction`` of the items entirely, plus a ratio holdout of the warm ones.

    The cold items are the newest by first purchase when ``events`` have times (ties broken at
    random), else a seeded random draw, among the bought items ``eligible`` marks (those with
    features: nothing else can score an item nobody bought); ``count`` fixes their number
    instead. Every purchase of a cold item goes to the test part; each customer's remaining
    (warm) items are split as ``split_ratio`` does with ``test_ratio``. The train part keeps
    the cold items as empty columns. Customers left with nothing in train (they bought only
    cold items) cannot be ranked and are left out, and counted.
    """
    rng = resolve_rng(seed)
    n_items = len(events.items)
    candidates = _candidates(n_items, events.item_codes, eligible, "items")
    among = "" if eligible is None else " and features"
    n_cold = _cold_count("items", int(candidates.sum()), fraction, count, among)
    cold = _newest_or_random(events.item_codes, events.timestamps, candidates, n_cold, rng)
    warm = interactions_from_events(events.select(~cold[events.item_codes]))
    try:
        inner = split_ratio(warm, test_ratio=test_ratio, seed=rng)
    except DataError:
        raise DataError(
            "cold items: no customer has 2 or more warm items left to hold one out; hold fewer "
            "items out (a smaller fraction)"
        ) from None
    whole = interactions_from_events(events).matrix
    cold_pairs = _select(whole, cold[whole.indices])
    test = sp.csr_matrix(inner.test + cold_pairs, dtype=np.float32)
    test.sort_indices()
    in_train = np.diff(inner.train.matrix.indptr) > 0
    only_cold = (np.diff(test.indptr) > 0) & ~in_train
    if only_cold.any():
        test = _select(test, ~only_cold[_row_of_each_entry(test)])
    tested = np.diff(test.indptr) > 0
    how = "newest by first purchase" if events.timestamps is not None else "random"
    return Split(
        train=inner.train,
        test=test,
        protocol=f"cold items ({n_cold:,} {how}; warm: ratio holdout {test_ratio:g})",
        n_train_only=int(np.count_nonzero(in_train & ~tested)),
        counts={
            "cold_items": n_cold,
            "cold_item_pairs": int(np.count_nonzero(cold[test.indices])),
            "warm_item_pairs": int(np.count_nonzero(~cold[test.indices])),
            "customers_only_cold_items": int(np.count_nonzero(only_cold)),
        },
        cold_items=cold,
    )


def split_cold_users(
    events: Events,
    *,
    fraction: float = 0.2,
    count: int | None = None,
    seed: Seed = None,
    eligible: np.ndarray | None = None,
    first_purchase: bool = False,
) -> Split:
    """Hold out a ``fraction`` of the customers entirely: train never sees them.

    The cold customers are the newest by first purchase when ``events`` have times, else a
    seeded random draw, among the customers ``eligible`` marks (those with features); ``count``
    fixes their number instead. The test part holds everything they bought. With
    ``first_purchase`` their first basket (every item at their earliest time; one random item
    without times) is kept apart in ``first_purchases`` and the test part holds only the other
    items: the ranking may start from that basket. A cold customer with nothing after it is
    left out, and counted.
    """
    rng = resolve_rng(seed)
    n_users = len(events.users)
    candidates = _candidates(n_users, events.user_codes, eligible, "customers")
    among = "" if eligible is None else " and features"
    n_cold = _cold_count("customers", int(candidates.sum()), fraction, count, among)
    cold = _newest_or_random(events.user_codes, events.timestamps, candidates, n_cold, rng)
    train = interactions_from_events(events.select(~cold[events.user_codes]))
    cold_events = events.select(cold[events.user_codes])
    test = interactions_from_events(cold_events).matrix
    first = None
    counts = {"cold_customers": n_cold}
    if first_purchase:
        first = _first_baskets(cold_events, test, rng)
        later = ~np.isin(_pair_keys(test), _pair_keys(first))
        test = _select(test, later)
        counts["cold_customers_with_one_purchase"] = int(
            np.count_nonzero(cold & (np.diff(test.indptr) == 0))
        )
    item_bought = np.bincount(train.matrix.indices, minlength=train.n_items) > 0
    counts["test_pairs_with_items_not_in_train"] = int(np.count_nonzero(~item_bought[test.indices]))
    how = "newest by first purchase" if events.timestamps is not None else "random"
    given = "; ranked from their first purchase too" if first_purchase else ""
    return Split(
        train=train,
        test=test,
        protocol=f"cold customers ({n_cold:,} {how}{given})",
        n_train_only=int(np.count_nonzero(np.diff(train.matrix.indptr) > 0)),
        counts=counts,
        cold_users=cold,
        first_purchases=first,
    )


def _first_baskets(
    events: Events, matrix: sp.csr_matrix, rng: np.random.Generator
) -> sp.csr_matrix:
    """Each customer's first basket: the items of their earliest events (same shape as
    ``matrix``), or one random item of theirs when there are no times."""
    if events.timestamps is None:
        rows = _row_of_each_entry(matrix)
        key = rng.random(matrix.nnz) + rows  # rows apart; the largest key per row is picked
        filled = np.diff(matrix.indptr) > 0
        last = np.maximum.reduceat(key, matrix.indptr[:-1][filled]) if matrix.nnz else key
        picked = np.isin(key, last)
        return _select(matrix, picked)
    first = np.full(len(events.users), np.inf)
    np.minimum.at(first, events.user_codes, events.timestamps)
    at_first = events.timestamps == first[events.user_codes]
    return interactions_from_events(events.select(at_first)).matrix
