"""What decides a list besides the model and the customer: ``ListSpec``, filters and caps.

``recommend``, ``export``, evaluation and the service all build their lists from one
``ListSpec``, so an evaluated list is exactly a served one. The stages, in order:

1. candidates: the model's top ``candidates`` items (the plain top ``n`` when nothing below
   changes the order), purchased items excluded unless asked, ``allow``/``deny`` lists and the
   attribute ``filters`` applied before ranking, so every candidate is one the rules allow;
2. rules while the list fills: ``caps``, at most so many items per value of an attribute;
3. re-ranking (``rerank``: MMR, DPP, calibration, a popularity penalty, coverage boosts),
   then the top ``n``.

A list the rules leave shorter than ``n`` ends in -1 padding (scores -inf); nothing is made up
to fill it, and every command says how many lists came out short.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from growthrec.core.reranking import RerankSpec
from growthrec.errors import DataError, ParameterError

__all__ = [
    "DEFAULT_CANDIDATES",
    "FILTER_OPERATORS",
    "Filter",
    "ListSpec",
    "cap_groups",
    "filter_mask",
    "parse_cap",
    "parse_filter",
]

#: Candidates re-ranked per customer when something re-orders the list.
DEFAULT_CANDIDATES = 200
#: Filter operators: membership, equality and numeric comparisons.
FILTER_OPERATORS = ("in", "not in", "==", "!=", "<=", ">=", "<", ">")
_NUMERIC = ("<=", ">=", "<", ">")
_MEMBERSHIP = re.compile(r"^\s*(?P<column>.+?)\s+(?P<op>not in|in)\s+(?P<value>.*?)\s*$")
_COMPARISON = re.compile(r"^\s*(?P<column>.+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.*?)\s*$")


@attrs.frozen
class Filter:
    """Keep the items whose catalogue ``column`` satisfies ``op`` with ``values``."""

    column: str
    op: str
    values: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        if self.op not in FILTER_OPERATORS:
            raise ParameterError(
                f"filter on {self.column!r}: unknown operator {self.op!r}; use one of "
                f"{', '.join(FILTER_OPERATORS)}"
            )
        if not self.values or any(v == "" for v in self.values):
            raise ParameterError(f"filter on {self.column!r}: give a value after {self.op!r}")
        if self.op in _NUMERIC:
            try:
                number = float(self.values[0])
            except ValueError:
                raise ParameterError(
                    f"filter {self}: {self.values[0]!r} is not a number, and {self.op} compares "
                    "numbers"
                ) from None
            if len(self.values) != 1 or not math.isfinite(number):
                raise ParameterError(f"filter {self}: compare with one finite number")

    def __str__(self) -> str:
        return f"{self.column} {self.op} {','.join(self.values)}"


def parse_filter(text: str) -> Filter:
    """``"price <= 50"``, ``"category in books,toys"``, ``"in_stock == true"`` as a ``Filter``."""
    match = _MEMBERSHIP.match(text) or _COMPARISON.match(text)
    if match is None or not match["column"]:
        raise ParameterError(
            f"--filter {text!r}: expected COLUMN OP VALUE with OP one of "
            f"{', '.join(FILTER_OPERATORS)}, e.g. 'price <= 50' or 'category in books,toys'"
        )
    op = match["op"]
    values = [match["value"]] if op in _NUMERIC else match["value"].split(",")
    return Filter(match["column"], op, tuple(v.strip() for v in values))


def parse_cap(text: str) -> tuple[str, int]:
    """``"brand=2"``: at most 2 items of any one brand in a list."""
    column, sep, limit = text.rpartition("=")
    try:
        value = int(limit)
    except ValueError:
        value = 0
    if not sep or not column.strip() or value < 1:
        raise ParameterError(f"--cap {text!r}: expected COLUMN=N with N >= 1, e.g. brand=2")
    return column.strip(), value


@attrs.frozen
class ListSpec:
    """Everything that shapes a list besides the model and the customer (see the module doc).

    ``allow`` is an allow list or an availability list (item ids); ``deny`` never appears;
    ``filters`` test catalogue attributes; ``caps`` are ``(column, limit)``; ``rerank`` says
    how candidates are re-ordered; ``category`` is the catalogue column calibration and the
    ``categories`` similarity read.
    """

    n: int = 10
    exclude_seen: bool = True
    allow: tuple[object, ...] | None = None
    deny: tuple[object, ...] = ()
    filters: tuple[Filter, ...] = ()
    caps: tuple[tuple[str, int], ...] = ()
    rerank: RerankSpec = attrs.field(factory=RerankSpec)
    candidates: int = DEFAULT_CANDIDATES
    category: str = "category"

    def __attrs_post_init__(self) -> None:
        for name in ("n", "candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ParameterError(f"{name}={value!r} must be a whole number of at least 1")

    @property
    def reorders(self) -> bool:
        """Whether anything besides the scores decides the order (caps or a re-ranker)."""
        rerank = self.rerank
        active = rerank.kind != "none" and rerank.strength > 0
        return bool(self.caps) or active or rerank.popularity_penalty > 0 or rerank.coverage > 0


def filter_mask(attributes: Mapping[str, np.ndarray], filters: Sequence[Filter]) -> np.ndarray:
    """Which items pass every filter, from the model's catalogue columns (strings per item)."""
    n_items = len(next(iter(attributes.values()))) if attributes else 0
    keep: np.ndarray | None = None
    for rule in filters:
        if rule.column not in attributes:
            known = ", ".join(attributes) or "none: the model has no catalogue"
            raise ParameterError(
                f"filter {rule}: the catalogue has no column {rule.column!r} (columns: {known})"
            )
        column = np.asarray(attributes[rule.column], dtype=str)
        if rule.op in ("in", "not in"):
            found = np.isin(column, np.asarray(rule.values, dtype=str))
            passes = found if rule.op == "in" else ~found & (column != "")
        elif rule.op in ("==", "!="):
            same = _equal(column, rule.values[0])
            passes = same if rule.op == "==" else ~same & (column != "")
        else:
            numbers = _numbers(column, rule)
            limit = float(rule.values[0])
            compare = {"<=": np.less_equal, ">=": np.greater_equal, "<": np.less, ">": np.greater}
            with np.errstate(invalid="ignore"):
                passes = compare[rule.op](numbers, limit) & ~np.isnan(numbers)
        keep = passes if keep is None else keep & passes
        if not keep.any():
            raise DataError(f"filter {rule}: no item of the catalogue is left (of {n_items})")
    return np.ones(n_items, dtype=bool) if keep is None else keep


def _equal(column: np.ndarray, value: str) -> np.ndarray:
    """Text equality, case-insensitive for true/false so ``in_stock == true`` reads naturally."""
    if value.lower() in ("true", "false"):
        return np.char.lower(column) == value.lower()
    return column == value


def _numbers(column: np.ndarray, rule: Filter) -> np.ndarray:
    """The column as numbers (NaN where empty); text in it is an error naming the value."""
    values, inverse = np.unique(column, return_inverse=True)
    parsed = np.full(values.size, np.nan)
    for n, text in enumerate(values.tolist()):
        if text.strip():
            try:
                parsed[n] = float(text)
            except ValueError:
                raise DataError(
                    f"filter {rule}: the catalogue's {rule.column!r} holds {text!r}, not a number"
                ) from None
    return parsed[inverse]


def cap_groups(attributes: Mapping[str, np.ndarray], column: str) -> np.ndarray:
    """Each item's group code for a cap on ``column`` (-1 for items without a value)."""
    if column not in attributes:
        known = ", ".join(attributes) or "none: the model has no catalogue"
        raise ParameterError(f"cap on {column!r}: the catalogue has no such column ({known})")
    values = np.asarray(attributes[column], dtype=str)
    _, codes = np.unique(values, return_inverse=True)
    return np.where(values == "", -1, codes).astype(np.int64)
