"""The cleaning rules: what ``load_events`` drops, in order (see ``growthrec.data.loading``)."""

from __future__ import annotations

import numbers

import attrs
import numpy as np

from growthrec.core.interactions import (
    IdMap,
)
from growthrec.data.files import column_names
from growthrec.errors import ParameterError

__all__ = ["Cleaning"]


@attrs.frozen
class Cleaning:
    """What to drop while loading; every rule's count is reported (see the module docstring)."""

    #: Drop rows with a missing user or item id (else such a row is an error naming it).
    drop_missing: bool = True
    #: Drop rows whose weight is <= 0; only with a weight column (else negative is an error).
    drop_nonpositive: bool = True
    #: Drop rows identical to an earlier row in every column read (user, item, weight, time and
    #: the ``require_positive`` columns). Without weight and time columns, a repeat purchase
    #: of the same item is such a row.
    drop_duplicates: bool = True
    #: Implicit threshold: keep rows with weight >= min_weight (needs a weight column).
    min_weight: float | None = None
    #: Extra numeric columns that must be > 0 (e.g. a unit price); rows failing are dropped.
    require_positive: tuple[str, ...] = attrs.field(default=(), converter=column_names)
    #: k-core: keep users with at least this many distinct items ...
    min_user_interactions: int = 1
    #: ... and items with at least this many distinct users, iterated until stable.
    min_item_interactions: int = 1


def check_cleaning(cleaning: Cleaning) -> None:
    for name in ("min_user_interactions", "min_item_interactions"):
        value = getattr(cleaning, name)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name}={value!r}: expected a whole number of at least 1")
    weight = cleaning.min_weight
    if weight is not None and (
        not isinstance(weight, numbers.Real) or isinstance(weight, bool) or not np.isfinite(weight)
    ):
        raise ParameterError(f"min_weight={weight!r}: expected a finite number, or None")
    for column in cleaning.require_positive:
        if not isinstance(column, str) or not column:
            raise ParameterError(f"require_positive: {column!r} is not a column name")


# 2**64 / golden ratio (splitmix64's increment): odd multiples of it fold keys into one value.
_GOLDEN = 0x9E3779B97F4A7C15


def later_duplicates(keys: list[np.ndarray]) -> np.ndarray:
    """True for each row equal in every key (int64 or float64 arrays) to an earlier row.

    The keys are folded into one 64-bit value per row, and one sort of those finds the rows whose
    value is shared: equal rows always share it. Only those few rows are then sorted by every key
    to tell duplicates from coincidences, so the answer is exact and the common case costs one
    sort of one array instead of a multi-key sort of everything.
    """
    n = keys[0].size
    folded = np.zeros(n, dtype=np.uint64)
    scratch = np.empty(n, dtype=np.uint64)  # one buffer reused: no allocation per step
    for number, key in enumerate(keys):
        if key.dtype.kind == "f":
            np.add(key, 0.0, out=scratch.view(np.float64))  # -0.0 == 0.0; make their bits equal
        else:
            scratch[...] = key.view(np.uint64)
        np.multiply(scratch, np.uint64(_GOLDEN * (2 * number + 1) % 2**64), out=scratch)
        folded += scratch
        np.right_shift(folded, np.uint64(29), out=scratch)
        folded ^= scratch
    del scratch
    ordered = np.sort(folded)
    shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    later = np.zeros(n, dtype=bool)
    if shared.size == 0:
        return later
    position = np.minimum(np.searchsorted(shared, folded), shared.size - 1)
    rows = np.flatnonzero(shared[position] == folded)  # ascending: file order
    del folded, position
    sub_keys = [key[rows] for key in keys]
    order = np.lexsort(sub_keys[::-1])  # stable: the earliest of equal rows comes first
    same = np.ones(rows.size - 1, dtype=bool)
    for key in sub_keys:
        sorted_key = key[order]
        same &= sorted_key[1:] == sorted_key[:-1]
    later[rows[order[1:][same]]] = True
    return later


def k_core(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, min_user: int, min_item: int
) -> np.ndarray:
    """Which events belong to the k-core: users with >= ``min_user`` distinct items and items
    with >= ``min_item`` distinct users, after removing the others until nothing changes."""
    pairs = np.sort(users * n_items + items)
    starts = np.empty(pairs.size, dtype=bool)
    starts[:1] = True
    np.not_equal(pairs[1:], pairs[:-1], out=starts[1:])
    pairs = pairs[starts]
    pair_user, pair_item = pairs // n_items, pairs % n_items
    del pairs, starts
    alive = np.ones(pair_user.size, dtype=bool)
    while True:
        user_count = np.bincount(pair_user[alive], minlength=n_users)
        item_count = np.bincount(pair_item[alive], minlength=n_items)
        user_ok, item_ok = user_count >= min_user, item_count >= min_item
        still = alive & user_ok[pair_user] & item_ok[pair_item]
        if np.count_nonzero(still) == np.count_nonzero(alive):
            break
        alive = still
    # Counts only fall, so a pair removed earlier still has a failing user or item here.
    return user_ok[users] & item_ok[items]


def compact_codes(codes: np.ndarray, ids: IdMap) -> tuple[np.ndarray, IdMap]:
    """Codes renumbered over the ids that still occur (kept in sorted order)."""
    present = np.bincount(codes, minlength=len(ids)) > 0
    rank = np.cumsum(present, dtype=np.int64) - 1
    kept = ids.ids[present]
    return rank[codes], IdMap(kept, np.arange(kept.size))
