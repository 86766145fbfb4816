"""Evaluation protocols as values: the split to make, and a validation split inside its train."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from growthrec.core.features import Features
from growthrec.core.interactions import Events, Interactions, interactions_from_events
from growthrec.core.split import (
    Split,
    split_cold_items,
    split_cold_users,
    split_leave_one_out,
    split_ratio,
    split_temporal,
)
from growthrec.errors import ParameterError

__all__ = [
    "COLD_PROTOCOLS",
    "PROTOCOLS",
    "Protocol",
    "check_features",
    "make_split",
    "make_validation_split",
]

PROTOCOLS = ("leave-one-out", "ratio", "temporal", "cold-items", "cold-users")
#: Protocols that hold items or customers out entirely; they need features.
COLD_PROTOCOLS = ("cold-items", "cold-users")


@attrs.frozen
class Protocol:
    """How to hold data out: leave-one-out (latest or random item), ratio holdout, temporal,
    or items (``cold-items``) or customers (``cold-users``) held out entirely."""

    name: str = "leave-one-out"
    by: str = "auto"  # leave-one-out: "latest", "random", or "auto" (latest when there are times)
    test_ratio: float = 0.2  # ratio holdout (and cold-items' warm holdout): share of each
    # customer's items held out
    cutoff: float | None = None  # temporal: Unix seconds; None = leave the last test_fraction
    # temporal: share of events after the default cutoff; cold-items / cold-users: share of the
    # items / customers held out entirely
    test_fraction: float = 0.2
    first_purchase: bool = False  # cold-users: rank from the first purchase too

    def __attrs_post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ParameterError(
                f"unknown protocol {self.name!r}; choose one of {', '.join(PROTOCOLS)}"
            )
        if self.by not in ("auto", "latest", "random"):
            raise ParameterError(f"by={self.by!r}; choose auto, latest or random")
        if self.name in COLD_PROTOCOLS and not 0.0 < self.test_fraction < 1.0:
            what = "items" if self.name == "cold-items" else "customers"
            raise ParameterError(
                f"--test-fraction {self.test_fraction:g}: the share of {what} held out must be "
                "between 0 and 1 (exclusive), e.g. 0.2"
            )
        if self.name == "cold-items" and not 0.0 < self.test_ratio < 1.0:
            raise ParameterError(
                f"--test-ratio {self.test_ratio:g}: the share of each customer's warm items held "
                "out must be between 0 and 1 (exclusive), e.g. 0.2"
            )
        if self.first_purchase and self.name != "cold-users":
            raise ParameterError("--first-purchase goes with --protocol cold-users")

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def check_features(
    protocol: Protocol, item_features: Features | None, user_features: Features | None
) -> None:
    """A cold protocol without the features it ranks by is one line saying what to add."""
    if protocol.name == "cold-items" and item_features is None:
        raise ParameterError(
            "--protocol cold-items needs item features: add --item-features COLUMNS (or "
            "--features with a preset; from Python, item_features=)"
        )
    if protocol.name == "cold-users" and user_features is None:
        raise ParameterError(
            "--protocol cold-users needs customer features: add --user-features COLUMNS with "
            "--customers FILE (or --features with a preset; from Python, user_features=)"
        )


def _with_features(features: Features | None) -> np.ndarray | None:
    """Rows that have at least one feature: only those can be scored from features alone."""
    return None if features is None else np.diff(features.matrix.indptr) > 0


def make_split(
    events: Events,
    protocol: Protocol,
    seed: int | None = 0,
    *,
    item_features: Features | None = None,
    user_features: Features | None = None,
) -> Split:
    """The split ``protocol`` asks for, over all of ``events``.

    The cold protocols need ``item_features`` (cold-items) or ``user_features`` (cold-users)
    and hold out only rows that have some.
    """
    check_features(protocol, item_features, user_features)
    if protocol.name == "temporal":
        return split_temporal(events, cutoff=protocol.cutoff, test_fraction=protocol.test_fraction)
    if protocol.name == "cold-items":
        return split_cold_items(
            events,
            fraction=protocol.test_fraction,
            test_ratio=protocol.test_ratio,
            seed=seed,
            eligible=_with_features(item_features),
        )
    if protocol.name == "cold-users":
        return split_cold_users(
            events,
            fraction=protocol.test_fraction,
            seed=seed,
            eligible=_with_features(user_features),
            first_purchase=protocol.first_purchase,
        )
    return _split_matrix(interactions_from_events(events), protocol, seed)


def _split_matrix(data: Interactions, protocol: Protocol, seed: int | None) -> Split:
    if protocol.name == "ratio":
        return split_ratio(data, test_ratio=protocol.test_ratio, seed=seed)
    by = protocol.by
    if by == "auto":
        by = "latest" if data.timestamps is not None else "random"
    return split_leave_one_out(data, by=by, seed=seed)


def make_validation_split(
    events: Events,
    protocol: Protocol,
    seed: int | None = 0,
    *,
    item_features: Features | None = None,
    user_features: Features | None = None,
) -> Split:
    """A validation split carved from the train part of ``make_split``: the test part is unseen.

    Tuning on it and reporting on ``make_split``'s test part keeps the test set out of every
    choice. Temporal: the cutoff moves back so the last ``test_fraction`` of the train events
    validate. Cold items (customers): the same rule picks as many validation cold items
    (customers) among the train part's warm ones as the test part holds, so model selection is
    judged on cold rows drawn the way the test ones are (the newest of train, with times). The
    others re-apply the same protocol to the train matrix.
    """
    features = {"item_features": item_features, "user_features": user_features}
    outer = make_split(events, protocol, seed, **features)
    if protocol.name == "cold-items":
        return split_cold_items(
            _events_in(events, outer.train),
            count=outer.counts["cold_items"],
            test_ratio=protocol.test_ratio,
            seed=seed,
            eligible=_with_features(item_features),
        )
    if protocol.name == "cold-users":
        return split_cold_users(
            _events_in(events, outer.train),
            count=outer.counts["cold_customers"],
            seed=seed,
            eligible=_with_features(user_features),
            first_purchase=protocol.first_purchase,
        )
    if protocol.name == "temporal":
        before = events.select(events.timestamps < outer.counts["cutoff"])
        inner = Protocol("temporal", test_fraction=protocol.test_fraction)
        return make_split(before, inner, seed)
    return _split_matrix(outer.train, protocol, seed)


def _events_in(events: Events, train: Interactions) -> Events:
    """The events whose (customer, item) pair is in ``train``: the train part as events."""
    m = train.matrix
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * m.shape[1]
    keys += m.indices
    event_keys = events.user_codes.astype(np.int64) * m.shape[1] + events.item_codes
    return events.select(np.isin(event_keys, keys))
