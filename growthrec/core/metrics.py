"""Top-K ranking metrics over many users at once, with binary relevance.

``recommended`` is an (n_users, >= K) int array of item indices, best first, padded with -1;
``truth`` is a CSR matrix with one row per recommended row holding that user's held-out items.
Every mean is over the users with at least one held-out item; the exact definitions are in the
README ("Metrics"). Two beyond-accuracy measures need no truth: novelty (how unpopular the
recommended items are, in bits) and intra-list diversity (how unalike the items of one list are).
Three more need no truth either: the Gini index of exposure over the catalogue, the share of
long-tail items, and miscalibration (how far a list's category mix is from the customer's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from growthrec.errors import ParameterError

__all__ = [
    "BEYOND_ACCURACY",
    "CALIBRATION_ALPHA",
    "HEAD_SHARE",
    "METRIC_NAMES",
    "MORE_BEYOND_ACCURACY",
    "MetricTotals",
    "catalog_coverage_at_k",
    "gini_exposure_at_k",
    "hit_matrix",
    "hit_rate_at_k",
    "intra_list_diversity_at_k",
    "long_tail_items",
    "long_tail_share_at_k",
    "map_at_k",
    "miscalibration_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]

#: What ``ranking_metrics`` always returns: ratios in [0, 1].
METRIC_NAMES = ("hit_rate", "precision", "recall", "ndcg", "map", "mrr", "coverage")
#: What it adds when given item popularity (novelty, in bits) or item features (diversity).
BEYOND_ACCURACY = ("novelty", "diversity")
#: What it adds when asked: exposure's Gini index, the long-tail share, miscalibration.
MORE_BEYOND_ACCURACY = ("gini", "long_tail", "miscalibration")

#: The share of all interactions the head holds: the long tail is every other item.
HEAD_SHARE = 0.8
#: Steck's smoothing ``α`` of a list's category distribution towards the customer's.
CALIBRATION_ALPHA = 0.01

#: The per-user metrics ``_per_user`` computes, in ``METRIC_NAMES`` order.
_PER_USER = ("hit_rate", "precision", "recall", "ndcg", "map", "mrr")

#: Bytes of per-batch temporaries in the diversity computation: memory stays flat in n_users.
_DIVERSITY_BATCH_BYTES = 32 * 2**20


def hit_matrix(recommended: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """``hits[u, r]``: is the item at rank ``r`` for user ``u`` one of its held-out items."""
    recommended = np.asarray(recommended, dtype=np.int64)
    n_users, depth = recommended.shape
    if truth.shape[0] != n_users:
        raise ParameterError(f"truth has {truth.shape[0]} rows but recommendations have {n_users}")
    n_items = truth.shape[1]
    if recommended.size and recommended.max() >= n_items:
        raise ParameterError(f"recommended item {recommended.max()} is outside 0..{n_items - 1}")
    ordered = np.sort(recommended, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise ParameterError("a recommendation list names the same item twice")
    truth = truth.tocsr()
    truth.sort_indices()
    # Global sorted keys user * n_items + item turn the lookup into one searchsorted.
    truth_rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(truth.indptr))
    truth_keys = truth_rows * n_items + truth.indices
    rec_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + recommended
    if truth_keys.size == 0:
        return np.zeros((n_users, depth), dtype=bool)
    pos = np.minimum(np.searchsorted(truth_keys, rec_keys), truth_keys.size - 1)
    return (truth_keys[pos] == rec_keys) & (recommended >= 0)


def _relevant_counts(truth: sp.csr_matrix) -> np.ndarray:
    return np.diff(truth.tocsr().indptr)


def _checked(hits: np.ndarray, k: int) -> np.ndarray:
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    if k > hits.shape[1]:
        raise ParameterError(f"k={k} is deeper than the {hits.shape[1]} recommended items")
    return hits[:, :k]


def _per_user(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each metric's value per evaluated user (users with no held-out item are left out)."""
    users = n_relevant > 0
    h = _checked(hits, k)[users]
    rel = n_relevant[users].astype(np.float64)
    n_hits = h.sum(axis=1, dtype=np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(ranks + 1.0)
    ideal = np.cumsum(discounts)[np.minimum(rel, k).astype(np.int64) - 1]
    precision_at_rank = np.cumsum(h, axis=1) / ranks
    first_hit = np.where(h.any(axis=1), h.argmax(axis=1) + 1, np.inf)
    return {
        "hit_rate": (n_hits > 0).astype(np.float64),
        "precision": n_hits / k,
        "recall": n_hits / rel,
        "ndcg": (h * discounts).sum(axis=1) / ideal,
        "map": (precision_at_rank * h).sum(axis=1) / np.minimum(rel, k),
        "mrr": 1.0 / first_hit,
    }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def hit_rate_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Share of users with at least one held-out item in their top ``k``."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["hit_rate"])


def precision_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean of (held-out items in the top ``k``) / ``k``."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["precision"])


def recall_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean of (held-out items in the top ``k``) / (all the user's held-out items)."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["recall"])


def ndcg_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean of DCG@k / ideal DCG@k, gain 1 per hit discounted by log2(rank + 1)."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["ndcg"])


def map_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean average precision: sum of precision@rank at each hit, over min(k, held-out items)."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["map"])


def mrr_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean of 1 / rank of the first hit within the top ``k`` (0 without a hit)."""
    return _mean(_per_user(hit_matrix(recommended, truth), _relevant_counts(truth), k)["mrr"])


def catalog_coverage_at_k(recommended: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue's ``n_items`` that appear in at least one user's top ``k``."""
    if n_items < 1:
        raise ParameterError(f"n_items={n_items} must be at least 1")
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    top = np.asarray(recommended)[:, :k]
    top = top[top >= 0]
    return float(np.count_nonzero(np.bincount(top, minlength=n_items))) / n_items


def _top(recommended: np.ndarray, k: int) -> np.ndarray:
    recommended = np.asarray(recommended, dtype=np.int64)
    if recommended.ndim != 2:
        raise ParameterError(
            f"recommendations must be 2-D (users x ranks), got {recommended.ndim}-D"
        )
    if k < 1:
        raise ParameterError(f"k={k} must be at least 1")
    if k > recommended.shape[1]:
        raise ParameterError(f"k={k} is deeper than the {recommended.shape[1]} recommended items")
    return recommended[:, :k]


def _check_item_table(top: np.ndarray, n_rows: int, what: str) -> None:
    if top.size and top.max() >= n_rows:
        raise ParameterError(f"recommended item {top.max()} is outside the {n_rows} rows of {what}")


def _checked_counts(item_counts: np.ndarray, n_users: int) -> np.ndarray:
    counts = np.asarray(item_counts)
    if counts.ndim != 1 or counts.dtype.kind not in "iu":
        raise ParameterError("item_counts must be a 1-D integer array (buyers of each item)")
    if n_users < 1:
        raise ParameterError(f"n_users={n_users} must be at least 1")
    if counts.size and (counts.min() < 0 or counts.max() > n_users):
        raise ParameterError(
            f"item_counts must lie in [0, n_users={n_users}]; got {counts.min()}..{counts.max()}"
        )
    return counts


def _novelty_totals(top: np.ndarray, counts: np.ndarray, n_users: int) -> tuple[float, int]:
    """Sum of the per-list mean self-information, and the number of lists with a valid item."""
    _check_item_table(top, counts.size, "item_counts")
    information = np.log2(n_users / np.maximum(counts, 1).astype(np.float64))
    valid = top >= 0
    n_valid = valid.sum(axis=1)
    total = np.where(valid, information[np.where(valid, top, 0)], 0.0).sum(axis=1)
    users = n_valid > 0
    return float((total[users] / n_valid[users]).sum()), int(users.sum())


def novelty_at_k(recommended: np.ndarray, k: int, item_counts: np.ndarray, n_users: int) -> float:
    """Mean self-information, in bits, of the items in each user's top ``k``.

    Per user, the mean of ``-log2(p_i)`` over the valid (not -1) items of the top ``k``, with
    ``p_i = max(item_counts[i], 1) / n_users`` the share of training customers who bought item
    ``i``; then the mean over users with at least one valid item. The ``max(., 1)`` treats an
    item nobody bought as bought once, so its information is ``log2(n_users)`` (the largest
    possible) instead of infinite. The value lies in [0, log2(n_users)].
    """
    top = _top(recommended, k)
    counts = _checked_counts(item_counts, n_users)
    total, count = _novelty_totals(top, counts, n_users)
    return total / count if count else 0.0


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _diversity_table(categories: np.ndarray | None, item_vectors: np.ndarray | None) -> np.ndarray:
    """The checked per-item table: int codes (1-D) or unit-length float64 vectors (2-D)."""
    if (categories is None) == (item_vectors is None):
        raise ParameterError("diversity: give exactly one of categories or item_vectors")
    if categories is not None:
        table = np.asarray(categories)
        if table.ndim != 1 or table.dtype.kind not in "iu":
            raise ParameterError("categories must be a 1-D integer array (a code per item)")
        # Dense codes 0..n-1 (any integers may come in): pair counting keys on them.
        return np.unique(table, return_inverse=True)[1].astype(np.int64).reshape(-1)
    table = np.asarray(item_vectors, dtype=np.float64)
    if table.ndim != 2:
        raise ParameterError(f"item_vectors must be 2-D (items x dims), got {table.ndim}-D")
    if not np.isfinite(table).all():
        raise ParameterError("item_vectors holds NaN or infinite values")
    return _unit_rows(table)


def _pair_distance_sums(top: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per row, the summed distance over unordered pairs of valid (not -1) items.

    Never a K x K array: same-category pairs are counted from per-row category counts, and
    the cosine similarities of all pairs sum to ``(|sum u|^2 - sum |u|^2) / 2`` for unit rows
    ``u`` (a zero vector adds 0, so it lies at distance 1 from everything).
    """
    valid = top >= 0
    n_valid = valid.sum(axis=1).astype(np.float64)
    pairs = n_valid * (n_valid - 1) / 2.0
    if table.ndim == 1:
        codes = table[top[valid]]
        rows = np.nonzero(valid)[0]
        n_codes = int(codes.max()) + 1 if codes.size else 1
        keys, counts = np.unique(rows * n_codes + codes, return_counts=True)
        same = np.bincount(
            keys // n_codes, weights=counts * (counts - 1) / 2.0, minlength=top.shape[0]
        )
        return pairs - same
    gathered = table[np.where(valid, top, 0)] * valid[:, :, None]
    total = gathered.sum(axis=1)
    similar = ((total * total).sum(axis=1) - (gathered * gathered).sum(axis=(1, 2))) / 2.0
    # The pairwise form clipped each distance to [0, 2]; here rounding is clipped per list.
    return np.clip(pairs - similar, 0.0, 2.0 * pairs)


def _diversity_totals(top: np.ndarray, table: np.ndarray) -> tuple[float, int]:
    """Sum of the per-list mean pair distances, and the number of lists with two valid items."""
    width = table.shape[1] if table.ndim == 2 else 1
    size = max(1, _DIVERSITY_BATCH_BYTES // (8 * max(top.shape[1], 1) * (width + 2)))
    total, count = 0.0, 0
    for start in range(0, top.shape[0], size):
        block = top[start : start + size]
        n_valid = (block >= 0).sum(axis=1)
        users = n_valid >= 2
        if users.any():
            n_pairs = n_valid[users] * (n_valid[users] - 1) / 2.0
            total += float((_pair_distance_sums(block[users], table) / n_pairs).sum())
            count += int(users.sum())
    return total, count


def intra_list_diversity_at_k(
    recommended: np.ndarray,
    k: int,
    *,
    categories: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
) -> float:
    """Mean distance between the items of one top-``k`` list, averaged over users.

    Per user, the mean over all unordered pairs of valid (not -1) items in the top ``k`` of the
    pair's distance; then the mean over users with at least two valid items. Give exactly one
    of ``categories`` (an int code per item: distance 1 if the codes differ, else 0; the value
    lies in [0, 1]) or ``item_vectors`` (n_items x d: distance 1 - cosine similarity, in [0, 2];
    a zero vector is at distance 1 from everything; the value lies in [0, 2], 1 meaning as
    unalike as unrelated directions). Memory grows with ``k`` times the vector width, never
    with ``k`` squared.
    """
    table = _diversity_table(categories, item_vectors)
    top = _top(recommended, k)
    _check_item_table(top, table.shape[0], "categories" if table.ndim == 1 else "vectors")
    total, count = _diversity_totals(top, table)
    return total / count if count else 0.0


def _exposure_gini(exposure: np.ndarray) -> float:
    """Gini index of a non-negative count per item: 0 when equal, ``1 - 1/n`` when one item
    has everything; ``Σ_i (2i - n - 1) x_(i) / (n Σ x)`` over the counts sorted ascending."""
    x = np.sort(np.asarray(exposure, dtype=np.float64))
    n, total = x.size, x.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(((2.0 * ranks - n - 1.0) * x).sum() / (n * total))


def gini_exposure_at_k(recommended: np.ndarray, k: int, n_items: int) -> float:
    """Gini index of how often each of the catalogue's ``n_items`` appears in the top ``k``.

    Every appearance counts once, whatever its rank, and items never recommended count with 0:
    0 means every item is shown equally often, values near 1 that a few items take all the
    exposure (the largest possible is ``1 - 1/n_items``).
    """
    if n_items < 1:
        raise ParameterError(f"n_items={n_items} must be at least 1")
    top = _top(recommended, k)
    _check_item_table(top, n_items, "the catalogue")
    return _exposure_gini(np.bincount(top[top >= 0], minlength=n_items))


def long_tail_items(item_counts: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """True for the long-tail items: all but the head, the fewest most popular items whose
    interactions reach ``head_share`` of all (Abdollahpouri et al.'s short head, 80% by
    default). Ties in popularity go to the lower item index; an item nobody bought is tail."""
    counts = np.asarray(item_counts)
    if counts.ndim != 1 or counts.dtype.kind not in "iu" or (counts.size and counts.min() < 0):
        raise ParameterError("item_counts must be a 1-D array of non-negative integers")
    if not (0.0 < head_share <= 1.0):
        raise ParameterError(f"head_share={head_share} must lie in (0, 1]")
    tail = np.ones(counts.size, dtype=bool)
    total = counts.sum(dtype=np.float64)
    if total == 0:
        return tail
    order = np.lexsort((np.arange(counts.size), -counts.astype(np.int64)))
    reached = np.cumsum(counts[order], dtype=np.float64) >= head_share * total
    head = order[: int(np.argmax(reached)) + 1]
    tail[head] = False
    tail[counts == 0] = True
    return tail


def _share_totals(top: np.ndarray, flags: np.ndarray) -> tuple[float, int]:
    """Sum of the per-list share of flagged items, and the number of lists with a valid item."""
    valid = top >= 0
    n_valid = valid.sum(axis=1)
    flagged = (valid & flags[np.where(valid, top, 0)]).sum(axis=1)
    users = n_valid > 0
    return float((flagged[users] / n_valid[users]).sum()), int(users.sum())


def long_tail_share_at_k(
    recommended: np.ndarray, k: int, item_counts: np.ndarray, head_share: float = HEAD_SHARE
) -> float:
    """Mean share of long-tail items (``long_tail_items``) among the valid items of a top ``k``,
    over users with at least one valid item."""
    top = _top(recommended, k)
    tail = long_tail_items(item_counts, head_share)
    _check_item_table(top, tail.size, "item_counts")
    total, count = _share_totals(top, tail)
    return total / count if count else 0.0


def _distribution_rows(matrix: np.ndarray | sp.spmatrix, what: str) -> sp.csr_matrix:
    """Non-negative rows scaled to sum to 1 (all-zero rows stay zero), as float64 CSR."""
    rows = sp.csr_matrix(matrix, dtype=np.float64)
    if rows.nnz and (rows.data.min() < 0 or not np.isfinite(rows.data).all()):
        raise ParameterError(f"{what} must hold finite non-negative values")
    totals = np.asarray(rows.sum(axis=1)).ravel()
    return sp.csr_matrix(
        sp.diags(np.where(totals > 0, 1.0 / np.where(totals > 0, totals, 1), 0)) @ rows
    )


def _miscalibration_totals(
    top: np.ndarray, items: sp.csr_matrix, users: sp.csr_matrix, alpha: float
) -> tuple[float, int]:
    """Sum of per-list KL(p ‖ (1 - α) q + α p), and the number of lists it is defined for."""
    valid = top >= 0
    n_valid = valid.sum(axis=1)
    rows = np.nonzero(valid)[0]
    weights = 1.0 / n_valid[rows]
    listed = sp.csr_matrix((weights, (rows, top[valid])), shape=(top.shape[0], items.shape[0]))
    q = (listed @ items).toarray()
    p = users.toarray()
    smoothed = (1.0 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * np.log(p / smoothed), 0.0).sum(axis=1)
    defined = (n_valid > 0) & (p.sum(axis=1) > 0)
    return float(kl[defined].sum()), int(defined.sum())


def _checked_calibration(
    top: np.ndarray,
    item_categories: np.ndarray | sp.spmatrix,
    user_categories: np.ndarray | sp.spmatrix,
    alpha: float,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    if not (0.0 < alpha < 1.0):
        raise ParameterError(f"alpha={alpha} must lie in (0, 1)")
    items = _distribution_rows(item_categories, "item_categories")
    users = _distribution_rows(user_categories, "user_categories")
    if users.shape[0] != top.shape[0]:
        raise ParameterError(
            f"user_categories has {users.shape[0]} rows but recommendations have {top.shape[0]}"
        )
    if users.shape[1] != items.shape[1]:
        raise ParameterError(
            f"user_categories has {users.shape[1]} categories but item_categories {items.shape[1]}"
        )
    _check_item_table(top, items.shape[0], "item_categories")
    return items, users


def miscalibration_at_k(
    recommended: np.ndarray,
    k: int,
    item_categories: np.ndarray | sp.spmatrix,
    user_categories: np.ndarray | sp.spmatrix,
    alpha: float = CALIBRATION_ALPHA,
) -> float:
    """Mean KL divergence, in nats, of each top ``k``'s category mix from its customer's.

    Steck (RecSys 2018): ``KL(p ‖ q̃)``, ``p`` the customer's row of ``user_categories``
    (n_users, n_categories; scaled to sum to 1), ``q`` the mean of the rows of
    ``item_categories`` (n_items, n_categories; each scaled to sum to 1, so an item of several
    categories splits its weight) over the list's valid items, ``q̃ = (1 - α) q + α p`` with
    ``α = 0.01`` so that it stays finite. 0 is a perfectly calibrated list. The mean is over
    users with a history and at least one valid item.
    """
    top = _top(recommended, k)
    items, users = _checked_calibration(top, item_categories, user_categories, alpha)
    size = max(1, _DIVERSITY_BATCH_BYTES // (32 * max(items.shape[1], 1)))
    total, count = 0.0, 0
    for start in range(0, top.shape[0], size):
        more, n = _miscalibration_totals(
            top[start : start + size], items, users[start : start + size], alpha
        )
        total, count = total + more, count + n
    return total / count if count else 0.0


class MetricTotals:
    """Running totals of every metric at every K, fed one batch of users at a time.

    Memory stays flat in the number of users: each batch adds its per-user sums (and the items
    its lists cover); ``result()`` divides. One batch gives exactly ``ranking_metrics``.
    """

    def __init__(
        self,
        ks: Sequence[int],
        n_items: int,
        *,
        item_counts: np.ndarray | None = None,
        n_users: int | None = None,
        categories: np.ndarray | None = None,
        item_vectors: np.ndarray | None = None,
        exposure: bool = False,
        head_share: float | None = None,
        item_categories: np.ndarray | sp.spmatrix | None = None,
    ) -> None:
        if (item_counts is None) != (n_users is None):
            raise ParameterError("novelty needs both item_counts and n_users; give both or neither")
        if item_counts is not None and np.shape(item_counts) != (n_items,):
            raise ParameterError(
                f"item_counts has shape {np.shape(item_counts)}, expected ({n_items},): "
                "one per item"
            )
        if n_items < 1:
            raise ParameterError(f"n_items={n_items} must be at least 1")
        self.ks = tuple(int(k) for k in ks)
        for k in self.ks:
            if k < 1:
                raise ParameterError(f"k={k} must be at least 1")
        self.n_items = int(n_items)
        self.item_counts = None if item_counts is None else _checked_counts(item_counts, n_users)
        self.n_users = n_users
        self.diversity_table = (
            None
            if categories is None and item_vectors is None
            else _diversity_table(categories, item_vectors)
        )
        if head_share is not None and item_counts is None:
            raise ParameterError("the long-tail share needs item_counts and n_users")
        self.exposure = bool(exposure)
        self.long_tail = None if head_share is None else long_tail_items(item_counts, head_share)
        self.item_categories = (
            None
            if item_categories is None
            else _distribution_rows(item_categories, "item_categories")
        )
        if self.item_categories is not None and self.item_categories.shape[0] != n_items:
            raise ParameterError(
                f"item_categories has {self.item_categories.shape[0]} rows, expected {n_items}"
            )
        self._sums = {k: dict.fromkeys(_PER_USER, 0.0) for k in self.ks}
        self._exposure = {k: np.zeros(self.n_items, dtype=np.int64) for k in self.ks}
        self._long_tail = {k: (0.0, 0) for k in self.ks}
        self._miscalibration = {k: (0.0, 0) for k in self.ks}
        self._novelty = {k: (0.0, 0) for k in self.ks}
        self._diversity = {k: (0.0, 0) for k in self.ks}
        self._covered = {k: np.zeros(self.n_items, dtype=bool) for k in self.ks}
        self._n_evaluated = 0

    def add(
        self,
        recommended: np.ndarray,
        truth: sp.csr_matrix,
        user_categories: np.ndarray | sp.spmatrix | None = None,
    ) -> None:
        """Add a batch: lists (users x >= max K, -1 padded) and the same users' held-out rows
        (and their category distributions, when miscalibration is measured)."""
        n_relevant = _relevant_counts(truth)
        hits = hit_matrix(recommended, truth)
        evaluated = np.asarray(recommended, dtype=np.int64)[n_relevant > 0]
        if (self.item_categories is None) != (user_categories is None):
            raise ParameterError(
                "miscalibration needs item_categories and user_categories; give both or neither"
            )
        users = None
        if user_categories is not None:
            users = sp.csr_matrix(user_categories)[np.flatnonzero(n_relevant > 0)]
        self._n_evaluated += evaluated.shape[0]
        for k in self.ks:
            for name, values in _per_user(hits, n_relevant, k).items():
                self._sums[k][name] += float(values.sum())
            top = _top(evaluated, k)
            self._covered[k][top[top >= 0]] = True
            if self.item_counts is not None:
                total, count = self._novelty[k]
                more, n = _novelty_totals(top, self.item_counts, self.n_users)
                self._novelty[k] = (total + more, count + n)
            if self.exposure:
                self._exposure[k] += np.bincount(top[top >= 0], minlength=self.n_items)
            if self.long_tail is not None:
                total, count = self._long_tail[k]
                more, n = _share_totals(top, self.long_tail)
                self._long_tail[k] = (total + more, count + n)
            if users is not None:
                items, rows = _checked_calibration(
                    top, self.item_categories, users, CALIBRATION_ALPHA
                )
                total, count = self._miscalibration[k]
                more, n = _miscalibration_totals(top, items, rows, CALIBRATION_ALPHA)
                self._miscalibration[k] = (total + more, count + n)
            if self.diversity_table is not None:
                table = self.diversity_table
                what = "categories" if table.ndim == 1 else "vectors"
                _check_item_table(top, table.shape[0], what)
                total, count = self._diversity[k]
                more, n = _diversity_totals(top, table)
                self._diversity[k] = (total + more, count + n)

    def result(self) -> dict[int, dict[str, float]]:
        """``{k: {name: value}}`` over every user added so far (0.0 for a mean of nothing)."""
        out: dict[int, dict[str, float]] = {}
        for k in self.ks:
            n = self._n_evaluated
            values = {name: s / n if n else 0.0 for name, s in self._sums[k].items()}
            values["coverage"] = float(np.count_nonzero(self._covered[k])) / self.n_items
            if self.item_counts is not None:
                total, count = self._novelty[k]
                values["novelty"] = total / count if count else 0.0
            if self.diversity_table is not None:
                total, count = self._diversity[k]
                values["diversity"] = total / count if count else 0.0
            if self.exposure:
                values["gini"] = _exposure_gini(self._exposure[k])
            if self.long_tail is not None:
                total, count = self._long_tail[k]
                values["long_tail"] = total / count if count else 0.0
            if self.item_categories is not None:
                total, count = self._miscalibration[k]
                values["miscalibration"] = total / count if count else 0.0
            out[k] = values
        return out


def ranking_metrics(
    recommended: np.ndarray,
    truth: sp.csr_matrix,
    ks: Sequence[int],
    n_items: int,
    *,
    item_counts: np.ndarray | None = None,
    n_users: int | None = None,
    categories: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
    exposure: bool = False,
    head_share: float | None = None,
    item_categories: np.ndarray | sp.spmatrix | None = None,
    user_categories: np.ndarray | sp.spmatrix | None = None,
) -> dict[int, dict[str, float]]:
    """Every metric at every ``k`` in ``ks``, as ``{k: {name: value}}``, from one hit lookup.

    The keys are ``METRIC_NAMES``, then ``"novelty"`` when ``item_counts`` and ``n_users`` are
    given and ``"diversity"`` when ``categories`` or ``item_vectors`` is; ``"gini"`` (of
    exposure) when ``exposure``, ``"long_tail"`` when ``head_share`` is given with
    ``item_counts``, ``"miscalibration"`` when ``item_categories`` and ``user_categories`` are.
    Coverage and the beyond-accuracy metrics are computed on the evaluated users' lists only.
    """
    totals = MetricTotals(
        ks,
        n_items,
        item_counts=item_counts,
        n_users=n_users,
        categories=categories,
        item_vectors=item_vectors,
        exposure=exposure,
        head_share=head_share,
        item_categories=item_categories,
    )
    totals.add(recommended, truth, user_categories)
    return totals.result()
