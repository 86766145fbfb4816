"""Train/test splits of an interaction matrix: seeded, leak-free, same id maps on both sides."""

from __future__ import annotations

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.core.interactions import Events, Interactions, interactions_from_events
from growthrec.core.seeds import Seed, resolve_rng
from growthrec.errors import DataError, ParameterError

__all__ = ["Split", "split_leave_one_out", "split_ratio", "split_temporal"]


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

    @property
    def n_test_users(self) -> int:
        return int(np.count_nonzero(np.diff(self.test.indptr)))


def _row_of_each_entry(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def _split_by_mask(data: Interactions, held: np.ndarray, protocol: str, n_train_only: int) -> Split:
    m = data.matrix
    rows = _row_of_each_entry(m)
    keep = ~held

    def part(mask: np.ndarray) -> sp.csr_matrix:
        indptr = np.zeros(m.shape[0] + 1, dtype=m.indptr.dtype)
        np.cumsum(np.bincount(rows[mask], minlength=m.shape[0]), out=indptr[1:])
        out = sp.csr_matrix((m.data[mask], m.indices[mask], indptr), shape=m.shape)
        out.has_sorted_indices = True
        return out

    timestamps = None if data.timestamps is None else data.timestamps[keep]
    train = data.with_matrix(part(keep), timestamps)
    return Split(train=train, test=part(held), protocol=protocol, n_train_only=n_train_only)


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
