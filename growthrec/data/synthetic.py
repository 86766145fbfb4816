"""Synthetic shop transactions with the structure real purchase logs have, generated in numpy.

Customers belong to segments that favour some product categories. Categories hold product
lines (an item and its refill, accessory or matching piece) whose popularity falls off like
Zipf's law. Most customers buy little and a few buy a lot; they come back for the rest of a
line they started and re-buy favourites. Each line has a brand, and each brand is the one a
segment likes best, so brand, product line and a customer's segment carry the signal that cold
start needs (a product nobody has bought yet, a customer who has bought nothing). The generator
is pure and seeded (no I/O) and vectorised: no Python loop over users or rows and no dense
users x items array, so five million rows take a few seconds.
"""

from __future__ import annotations

import math
import numbers

import attrs
import numpy as np

from growthrec.core.seeds import Seed, resolve_rng
from growthrec.errors import ParameterError

__all__ = ["BRANDS", "CATEGORIES", "REGIONS", "SEGMENTS", "SyntheticShop", "generate_shop"]

_array_eq = attrs.cmp_using(eq=np.array_equal)

#: Category names and the median price (in currency units) of an item in each.
CATEGORIES: dict[str, float] = {
    "home": 25.0,
    "garden": 30.0,
    "kitchen": 20.0,
    "toys": 15.0,
    "books": 12.0,
    "electronics": 80.0,
    "beauty": 18.0,
    "sports": 35.0,
    "fashion": 40.0,
    "pets": 15.0,
    "grocery": 6.0,
    "office": 10.0,
}

#: Customer segments as the customer file names them, one per generating segment.
SEGMENTS = (
    "students",
    "families",
    "seniors",
    "gardeners",
    "gamers",
    "cooks",
    "athletes",
    "office",
)
#: Brands: the lines a segment likes best carry its brand (two labels per segment).
BRANDS = tuple(
    f"{name}-{n}"
    for name in ("Acme", "Borealis", "Corvid", "Dunmore", "Elm", "Fjord", "Gale", "Heron")
    for n in (1, 2)
)
#: Regions of the customer file; each segment lives mostly in two of them.
REGIONS = ("north", "south", "east", "west", "centre")
_HOME_REGION_SHARE = 0.7

# Calibrated together, against tests/test_synthetic.py: on the default shop, PureSVD with 50
# factors reaches a leave-one-out (latest) Hit@5 of about 0.62 and popularity far less.
# Catalogue.
_LINE_MIX = (0.05, 0.9, 0.05)  # shares of product lines with 1, 2 and 3 items
_CATEGORY_SIZE_ALPHA = 10.0  # Dirichlet prior of category sizes: larger = more even
_ZIPF_EXPONENT = 0.6  # a line's appeal within its category falls as rank ** -exponent
_PRICE_SIGMA = 0.6  # log-normal spread of a line's price level around its category's median
# Customers.
_N_SEGMENTS = 8
_SEGMENT_SIZE_ALPHA = 3.0  # Dirichlet prior of segment sizes: larger = more even
_SEGMENT_CATEGORY_ALPHA = 0.5  # Dirichlet prior of a segment's category mix: small = focused
_USER_CATEGORY_CONCENTRATION = 8.0  # how closely a customer follows their segment's mix
_OFF_SEGMENT_SHARE = 0.1  # share of fresh choices browsed from the whole shop's mix
_SEGMENT_TASTE_SIGMA = 0.3  # log-normal spread of a segment's liking for a particular line
_PRICE_ELASTICITY = (-0.2, 0.6)  # range of segments' response to a line's relative price
_ACTIVITY_SIGMA = 1.0  # log-normal spread of how much customers buy: heavy and light buyers
# Purchases.
_COMPLETE_RATE = 0.95  # chance a fresh choice from a line is followed by another of its items
_REPEAT_RATE = 0.15  # chance a further purchase re-buys a favourite
_FOLLOW_UP_DAYS = 21.0  # mean delay of a completion or repeat after the purchase it follows
_MULTI_QUANTITY = 0.3  # chance of several units of a cheap item (falls with price)

_YEAR_START = 1_735_689_600  # 2025-01-01T00:00:00Z
_YEAR_END = 1_767_225_599  # 2025-12-31T23:59:59Z
_DAY = 86_400


@attrs.frozen
class SyntheticShop:
    """Transactions (one row per purchase line) and the item catalogue.

    ``user_id``, ``item_id``, ``quantity`` and ``timestamp`` are parallel, one entry per row,
    rows in time order; the ``catalog_*`` arrays have one entry per item of the shop.
    """

    user_id: np.ndarray = attrs.field(eq=_array_eq)
    item_id: np.ndarray = attrs.field(eq=_array_eq)
    quantity: np.ndarray = attrs.field(eq=_array_eq)
    timestamp: np.ndarray = attrs.field(eq=_array_eq)
    catalog_item_id: np.ndarray = attrs.field(eq=_array_eq)
    catalog_category: np.ndarray = attrs.field(eq=_array_eq)
    catalog_price: np.ndarray = attrs.field(eq=_array_eq)
    catalog_brand: np.ndarray = attrs.field(eq=_array_eq)
    catalog_line: np.ndarray = attrs.field(eq=_array_eq)
    customer_id: np.ndarray = attrs.field(eq=_array_eq)
    customer_segment: np.ndarray = attrs.field(eq=_array_eq)
    customer_region: np.ndarray = attrs.field(eq=_array_eq)


@attrs.frozen(eq=False)
class _Catalogue:
    """Items laid out by category, then by product line; item ``i`` is called ``ids[i]``."""

    ids: np.ndarray
    category: np.ndarray  # of each item, non-decreasing
    price: np.ndarray
    line_start: np.ndarray  # first item of each line
    line_size: np.ndarray
    line_category: np.ndarray  # non-decreasing
    category_lines: np.ndarray  # first line of each category, then the number of lines

    @property
    def n_categories(self) -> int:
        return self.category_lines.size - 1


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ParameterError(f"{name}={value!r}: expected a whole number of at least 1")
    return int(value)


def _checked_arguments(n_users: object, n_items: object, density: object) -> tuple[int, int, int]:
    """Validated ``(n_users, n_items, rows)``; each message names the argument and the fix."""
    n_users = _check_count(n_users, "n_users")
    n_items = _check_count(n_items, "n_items")
    if (
        isinstance(density, bool)
        or not isinstance(density, numbers.Real)
        or not math.isfinite(density)
        or not 0.0 < density <= 1.0
    ):
        raise ParameterError(f"density={density!r}: expected a number in (0, 1]")
    rows = round(density * n_users * n_items)
    if rows < n_users:
        raise ParameterError(
            f"density={density!r} gives {rows} rows for {n_users} users, but every user buys at "
            f"least once: use a density of at least 1/n_items = {1 / n_items:.6g}"
        )
    return n_users, n_items, rows


def _catalogue(n_items: int, rng: np.random.Generator) -> _Catalogue:
    """Product lines of 1-3 items in categories of uneven size, with long-tailed prices."""
    # A fixed mix of line sizes (mostly pairs) keeps the number of lines stable across seeds.
    n_single = int(_LINE_MIX[0] * n_items / 2)
    n_triple = int(_LINE_MIX[2] * n_items / 2)
    n_pair, odd = divmod(n_items - n_single - 3 * n_triple, 2)
    line_size = rng.permutation(np.repeat([1, 2, 3], [n_single + odd, n_pair, n_triple]))
    n_lines = line_size.size
    line_start = np.cumsum(line_size) - line_size
    # Every category gets a line and the rest go by uneven shares.
    n_categories = min(len(CATEGORIES), n_lines)
    shares = rng.dirichlet(np.full(n_categories, _CATEGORY_SIZE_ALPHA))
    extra = rng.choice(n_categories, size=n_lines - n_categories, p=shares)
    line_category = np.sort(np.concatenate([np.arange(n_categories), extra]))
    line = np.repeat(np.arange(n_lines), line_size)
    category = line_category[line]
    # The items of a line are priced alike: a line price level, and a little spread per item.
    median = np.fromiter(CATEGORIES.values(), dtype=np.float64)[category]
    level = rng.lognormal(0.0, _PRICE_SIGMA, n_lines)[line]
    price = np.maximum(np.round(median * level * rng.lognormal(0.0, 0.2, n_items), 2), 0.01)
    # SKU numbers are a random permutation: an id says nothing about category or line.
    width = max(5, len(str(n_items)))
    digits = np.char.zfill((rng.permutation(n_items) + 1).astype(str), width)
    return _Catalogue(
        ids=np.char.add("SKU", digits),
        category=category,
        price=price,
        line_start=line_start,
        line_size=line_size,
        line_category=line_category,
        category_lines=np.searchsorted(line_category, np.arange(n_categories + 1)),
    )


def _offset_cdf(prob: np.ndarray) -> np.ndarray:
    """Flat CDFs of the rows of ``prob``, row ``r``'s shifted by ``r`` and ending at ``r + 1``.

    ``searchsorted(cdf, r + u, side="right") - r * width`` then draws from row ``r`` for a
    uniform ``u``: one call samples every row of a table from its own distribution.
    """
    cdf = np.cumsum(prob, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    cdf += np.arange(prob.shape[0])[:, None]
    return cdf.ravel()


def _line_cdf(cat: _Catalogue, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Flat CDF of each segment's choice of line within each category, and each segment's
    taste for each line (segments x lines).

    Entry ``(s, l)`` is ``s * C + c + P(line <= l | segment s, category c)`` for a line ``l`` of
    category ``c``, so ``searchsorted`` of ``s * C + c + u`` draws a line of ``c`` for ``s``.
    Appeal is a Zipf law over each category's lines (in random order), tilted per segment by
    taste and by price.
    """
    n_lines = cat.line_start.size
    first = cat.category_lines[:-1]
    rank = np.arange(n_lines) - first[cat.line_category]
    rank = rank[np.lexsort((rng.random(n_lines), cat.line_category))]  # shuffled per category
    median = np.fromiter(CATEGORIES.values(), dtype=np.float64)[cat.line_category]
    relative_price = np.log(cat.price[cat.line_start] / median)
    elasticity = rng.uniform(*_PRICE_ELASTICITY, _N_SEGMENTS)
    taste = rng.normal(0.0, _SEGMENT_TASTE_SIGMA, (_N_SEGMENTS, n_lines))
    log_appeal = -_ZIPF_EXPONENT * np.log1p(rank) + taste - np.outer(elasticity, relative_price)
    cum = np.cumsum(np.exp(log_appeal - log_appeal.max()), axis=1)
    last = cat.category_lines[1:] - 1
    before = np.where(first > 0, cum[:, np.maximum(first - 1, 0)], 0.0)
    cdf = (cum - before[:, cat.line_category]) / (cum[:, last] - before)[:, cat.line_category]
    cdf[:, last] = 1.0
    cdf += cat.line_category + cat.n_categories * np.arange(_N_SEGMENTS)[:, None]
    return cdf.ravel(), taste


def _customers(
    n_users: int, n_rows: int, cat: _Catalogue, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each customer's segment, flat offset CDF of their category mix, and number of rows."""
    n_categories = cat.n_categories
    segment_size = rng.dirichlet(np.full(_N_SEGMENTS, _SEGMENT_SIZE_ALPHA))
    shop_mix = np.bincount(cat.category, minlength=n_categories) / cat.category.size
    mix = rng.dirichlet(_SEGMENT_CATEGORY_ALPHA * n_categories * shop_mix, _N_SEGMENTS)
    # A shop stocks categories in proportion to demand: scale the segments' mixes (raking) so
    # that together they ask for each category what the catalogue holds of it.
    for _ in range(10):
        mix *= shop_mix / (segment_size @ mix)
        mix /= mix.sum(axis=1, keepdims=True)
    segment = rng.choice(_N_SEGMENTS, size=n_users, p=segment_size)
    # A customer's mix is Dirichlet around their segment's (the floor keeps the shapes > 0),
    # plus some browsing of the whole shop.
    personal = rng.gamma(_USER_CATEGORY_CONCENTRATION * mix[segment] + 1e-3)
    personal /= personal.sum(axis=1, keepdims=True)
    user_mix = (1.0 - _OFF_SEGMENT_SHARE) * personal + _OFF_SEGMENT_SHARE * shop_mix
    activity = rng.lognormal(0.0, _ACTIVITY_SIGMA, n_users)
    rows = 1 + rng.multinomial(n_rows - n_users, activity / activity.sum())
    return segment, _offset_cdf(user_mix), rows


def _fresh_times(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unix seconds in 2025: busier weekends, a pre-Christmas peak, daytime and evening hours."""
    day = np.arange((_YEAR_END + 1 - _YEAR_START) // _DAY)
    weekend = (day + 2) % 7 >= 5  # 2025-01-01 was a Wednesday
    christmas = np.exp(-(((day - 335) / 18.0) ** 2))
    hour = np.arange(24)
    daytime = np.exp(-(((hour - 13) / 4.0) ** 2)) + 0.8 * np.exp(-(((hour - 20) / 2.0) ** 2))
    weight = np.outer((1.0 + 0.25 * weekend) * (1.0 + 0.8 * christmas), 0.15 + daytime).ravel()
    cdf = np.cumsum(weight / weight.sum())
    cdf[-1] = 1.0
    # One uniform picks the hour (inverse CDF) and, by where it falls inside it, the second.
    u = rng.random(n)
    hour_index = np.searchsorted(cdf, u, side="right")
    low = np.where(hour_index > 0, cdf[hour_index - 1], 0.0)
    within = np.clip((u - low) / (cdf[hour_index] - low), 0.0, 1.0 - 1e-12)
    return _YEAR_START + hour_index * 3600 + (within * 3600).astype(np.int64)


def _follow_up_times(after: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Times after ``after``: an exponential delay, or any later time if that leaves the year."""
    delay = rng.exponential(_FOLLOW_UP_DAYS * _DAY, after.size).astype(np.int64)
    anywhere_later = after + (rng.random(after.size) * (_YEAR_END - after)).astype(np.int64)
    return np.where(delay <= _YEAR_END - after, after + delay, anywhere_later)


def _sorted_within(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """``values`` (non-negative, < 2**32) sorted within each run of the non-decreasing ``group``."""
    return np.sort((group << 32) | values) & 0xFFFFFFFF


def generate_shop(
    n_users: int = 1000, n_items: int = 100, density: float = 0.05, seed: Seed = 0
) -> SyntheticShop:
    """A year (2025) of purchases by ``n_users`` customers (ids 1..n_users) of ``n_items`` items.

    ``density`` is the number of transaction rows over ``n_users * n_items``: there are
    ``round(density * n_users * n_items)`` rows. Distinct customer-item pairs are fewer, as
    customers buy favourites again (each purchase is a row). Every customer has at least one
    row, so the density must be at least ``1 / n_items``. The same ``seed`` gives the same shop.
    """
    n_users, n_items, n_rows = _checked_arguments(n_users, n_items, density)
    rng = resolve_rng(seed)
    cat = _catalogue(n_items, rng)
    n_categories, n_lines = cat.n_categories, cat.line_start.size
    line_cdf, taste = _line_cdf(cat, rng)
    segment, category_cdf, per_user = _customers(n_users, n_rows, cat, rng)

    # Rows are fresh choices, completions of a line (another item of a line chosen fresh) and
    # repeats. Completions follow distinct fresh choices, the customer's earliest ones.
    repeats = rng.binomial(per_user - 1, _REPEAT_RATE)
    completes = rng.binomial((per_user - repeats) // 2, _COMPLETE_RATE)
    fresh = per_user - repeats - completes
    fresh_start = np.cumsum(fresh) - fresh

    # Fresh choice: a category from the customer's mix, a line of it by the segment's appeal,
    # any item of the line; at a time of year, in time order per customer.
    fresh_user = np.repeat(np.arange(n_users), fresh)
    u = rng.random(fresh_user.size)
    category = np.searchsorted(category_cdf, fresh_user + u, side="right")
    category = np.minimum(category - fresh_user * n_categories, n_categories - 1)  # rounding
    block = segment[fresh_user] * n_categories + category
    line = np.searchsorted(line_cdf, block + rng.random(block.size), side="right")
    line = np.minimum(line - segment[fresh_user] * n_lines, cat.category_lines[category + 1] - 1)
    within = (rng.random(line.size) * cat.line_size[line]).astype(np.int64)
    fresh_item = cat.line_start[line] + within
    fresh_time = _YEAR_START + _sorted_within(
        _fresh_times(fresh_user.size, rng) - _YEAR_START, fresh_user
    )

    # Completion: another item of the line (the same item again for a one-item line).
    complete_user = np.repeat(np.arange(n_users), completes)
    nth = np.arange(complete_user.size) - (np.cumsum(completes) - completes)[complete_user]
    anchor = fresh_start[complete_user] + nth
    size = cat.line_size[line[anchor]]
    step = 1 + (rng.random(anchor.size) * np.maximum(size - 1, 1)).astype(np.int64)
    complete_item = cat.line_start[line[anchor]] + (within[anchor] + step) % size
    complete_time = _follow_up_times(fresh_time[anchor], rng)

    # Repeats re-buy a fresh choice, favouring the customer's earliest (their favourites).
    repeat_user = np.repeat(np.arange(n_users), repeats)
    favourite = fresh_start[repeat_user] + (
        fresh[repeat_user] * rng.random(repeat_user.size) ** 2
    ).astype(np.int64)
    repeat_time = _follow_up_times(fresh_time[favourite], rng)

    user = np.concatenate([fresh_user, complete_user, repeat_user])
    item = np.concatenate([fresh_item, complete_item, fresh_item[favourite]])
    timestamp = np.concatenate([fresh_time, complete_time, repeat_time])
    # Mostly one unit; several (geometric) more often for cheap items.
    several = rng.random(item.size) < _MULTI_QUANTITY / (1.0 + cat.price[item] / 10.0)
    quantity = (1 + several * rng.geometric(0.5, item.size)).astype(np.int32)

    order = np.argsort(timestamp, kind="stable")
    listing = np.argsort(cat.ids)  # the catalogue in SKU order
    # Side attributes draw from a stream of their own: the purchases above do not change.
    side = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
    brand, line_name = _brands_and_lines(cat, taste, side)
    region = _regions(segment, side)
    return SyntheticShop(
        user_id=user[order].astype(np.int64) + 1,
        item_id=cat.ids[item[order]],
        quantity=quantity[order],
        timestamp=timestamp[order].astype(np.int64),
        catalog_item_id=cat.ids[listing],
        catalog_category=np.asarray(list(CATEGORIES), dtype=str)[cat.category[listing]],
        catalog_price=cat.price[listing],
        catalog_brand=brand[listing],
        catalog_line=line_name[listing],
        customer_id=np.arange(1, n_users + 1, dtype=np.int64),
        customer_segment=np.asarray(SEGMENTS, dtype=str)[segment],
        customer_region=region,
    )


def _brands_and_lines(
    cat: _Catalogue, taste: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's brand (that of the segment liking its line best) and product line name."""
    n_lines = cat.line_start.size
    fan = np.argmax(taste, axis=0)  # the segment that likes each line most
    label = fan * 2 + rng.integers(0, 2, n_lines)
    line = np.repeat(np.arange(n_lines), cat.line_size)
    width = max(4, len(str(n_lines)))
    names = np.char.add("L", np.char.zfill((rng.permutation(n_lines) + 1).astype(str), width))
    return np.asarray(BRANDS, dtype=str)[label[line]], names[line]


def _regions(segment: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each customer's region: mostly one of their segment's two home regions."""
    home = (segment[:, None] + np.array([0, 2])) % len(REGIONS)
    at_home = rng.random(segment.size) < _HOME_REGION_SHARE
    which = home[np.arange(segment.size), rng.integers(0, 2, segment.size)]
    anywhere = rng.integers(0, len(REGIONS), segment.size)
    return np.asarray(REGIONS, dtype=str)[np.where(at_home, which, anywhere)]
