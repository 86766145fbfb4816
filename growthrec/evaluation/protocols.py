"""Evaluation protocols as values: the split to make, and a validation split inside its train."""

from __future__ import annotations

from typing import Any

import attrs

from growthrec.core.interactions import Events, Interactions, interactions_from_events
from growthrec.core.split import Split, split_leave_one_out, split_ratio, split_temporal
from growthrec.errors import ParameterError

__all__ = ["PROTOCOLS", "Protocol", "make_split", "make_validation_split"]

PROTOCOLS = ("leave-one-out", "ratio", "temporal")


@attrs.frozen
class Protocol:
    """How to hold data out: leave-one-out (latest or random item), ratio holdout, or temporal."""

    name: str = "leave-one-out"
    by: str = "auto"  # leave-one-out: "latest", "random", or "auto" (latest when there are times)
    test_ratio: float = 0.2  # ratio holdout: share of each customer's items held out
    cutoff: float | None = None  # temporal: Unix seconds; None = leave the last test_fraction
    test_fraction: float = 0.2  # temporal: share of events after the default cutoff

    def __attrs_post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ParameterError(
                f"unknown protocol {self.name!r}; choose one of {', '.join(PROTOCOLS)}"
            )
        if self.by not in ("auto", "latest", "random"):
            raise ParameterError(f"by={self.by!r}; choose auto, latest or random")

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def make_split(events: Events, protocol: Protocol, seed: int | None = 0) -> Split:
    """The split ``protocol`` asks for, over all of ``events``."""
    if protocol.name == "temporal":
        return split_temporal(events, cutoff=protocol.cutoff, test_fraction=protocol.test_fraction)
    return _split_matrix(interactions_from_events(events), protocol, seed)


def _split_matrix(data: Interactions, protocol: Protocol, seed: int | None) -> Split:
    if protocol.name == "ratio":
        return split_ratio(data, test_ratio=protocol.test_ratio, seed=seed)
    by = protocol.by
    if by == "auto":
        by = "latest" if data.timestamps is not None else "random"
    return split_leave_one_out(data, by=by, seed=seed)


def make_validation_split(events: Events, protocol: Protocol, seed: int | None = 0) -> Split:
    """A validation split carved from the train part of ``make_split``: the test part is unseen.

    Tuning on it and reporting on ``make_split``'s test part keeps the test set out of every
    choice. Temporal: the cutoff moves back so the last ``test_fraction`` of the train events
    validate; the others re-apply the same protocol to the train matrix.
    """
    outer = make_split(events, protocol, seed)
    if protocol.name == "temporal":
        before = events.select(events.timestamps < outer.counts["cutoff"])
        inner = Protocol("temporal", test_fraction=protocol.test_fraction)
        return make_split(before, inner, seed)
    return _split_matrix(outer.train, protocol, seed)
