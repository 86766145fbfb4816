"""Business rules on candidate lists: items allowed or not, and caps per group while lists fill.

A rule that leaves a list fewer than N items never fills it with anything else: the list ends
in -1 padding, and ``ListBuilder.counts`` reports how many real items each list got.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from growthrec.errors import ParameterError

__all__ = ["Cap", "ListBuilder", "mask_candidates"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


@attrs.frozen
class Cap:
    """At most ``limit`` items of one group per list; ``groups`` holds each item's group code
    (a category or brand; -1: in no group, never capped). ``name`` names it in errors."""

    groups: np.ndarray = attrs.field(eq=_array_eq)
    limit: int
    name: str = "group"

    def __attrs_post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, (int, np.integer)):
            raise ParameterError(f"cap per {self.name}: limit={self.limit!r} must be an integer")
        if self.limit < 1:
            raise ParameterError(f"cap per {self.name}: limit={self.limit} must be at least 1")
        groups = np.asarray(self.groups)
        if groups.ndim != 1 or groups.dtype.kind not in "iu":
            raise ParameterError(f"cap per {self.name}: groups must be a 1-D integer code per item")
        if groups.size and groups.min() < -1:
            raise ParameterError(f"cap per {self.name}: group code {groups.min()} is below -1")


def mask_candidates(candidates: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Candidates with every item not ``allowed`` replaced by -1 (padding).

    ``allowed`` is a bool per item (n_items,) for every user, or per user (n_users, n_items).
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    allowed = np.asarray(allowed, dtype=bool)
    safe = np.where(candidates >= 0, candidates, 0)
    ok = allowed[safe] if allowed.ndim == 1 else np.take_along_axis(allowed, safe, axis=1)
    return np.where((candidates >= 0) & ok, candidates, -1)


class ListBuilder:
    """Lists of one batch being filled greedily, a position at a time, with the caps counted.

    Each step the re-ranker scores every candidate; ``take`` picks each row's best among the
    open ones and records it. ``closed`` is 0 for an open candidate and -inf for one taken,
    padding or in a group whose cap is full, so masking costs one addition per step.
    """

    def __init__(self, candidates: np.ndarray, n: int, caps: Sequence[Cap] = ()) -> None:
        b, _ = candidates.shape
        self.rows = np.arange(b)
        self.closed = np.where(candidates < 0, -np.inf, 0.0).astype(np.float32)
        self.positions = np.full((b, n), -1, dtype=np.int64)
        self.gains = np.full((b, n), -np.inf)
        self._caps: list[tuple[np.ndarray, np.ndarray, int]] = []
        safe = np.where(candidates >= 0, candidates, 0)
        for cap in caps:
            codes = np.where(candidates >= 0, np.asarray(cap.groups)[safe], -1)
            # Codes local to the batch keep the count table (b, groups) small.
            local = np.unique(codes, return_inverse=True)[1].reshape(codes.shape)
            local = np.where(codes >= 0, local, -1)
            counts = np.zeros((b, int(local.max()) + 2), dtype=np.int64)
            self._caps.append((local, counts, int(cap.limit)))

    def take(self, step: int, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take each row's best open candidate; returns its position and whether there was one."""
        masked = gains + self.closed
        chosen = masked.argmax(axis=1)
        best = masked[self.rows, chosen]
        found = best > -np.inf
        rows = self.rows[found]
        at = chosen[found]
        self.positions[rows, step] = at
        self.gains[rows, step] = best[found]
        self.closed[rows, at] = -np.inf
        for codes, counts, limit in self._caps:
            code = codes[rows, at]
            grouped = code >= 0
            counts[rows[grouped], code[grouped]] += 1
            full = grouped.copy()
            full[grouped] = counts[rows[grouped], code[grouped]] >= limit
            if full.any():
                sel = rows[full]
                same = codes[sel] == code[full][:, None]
                self.closed[sel] = np.where(same, -np.inf, self.closed[sel])
        return chosen, found

    @property
    def counts(self) -> np.ndarray:
        """Real items in each list so far."""
        return (self.positions >= 0).sum(axis=1)
