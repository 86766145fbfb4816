"""Parameter search on a validation split: grid or random, trials ranked by one metric at one K."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from growthrec.backends.contract import Backend, resolve_params
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.seeds import Seed, resolve_rng
from growthrec.core.split import Split
from growthrec.errors import ParameterError
from growthrec.evaluation.runs import Evaluation, evaluate_backend

__all__ = ["SearchSpace", "Trial", "candidates", "parse_space", "run_trials"]


@attrs.frozen
class SearchSpace:
    """Values to try per parameter: a list of choices, or a (low, high) range for random search."""

    choices: Mapping[str, tuple[Any, ...]] = attrs.field(factory=dict)
    ranges: Mapping[str, tuple[float, float]] = attrs.field(factory=dict)


@attrs.frozen
class Trial:
    """One parameter setting and how it did on the validation split."""

    params: Mapping[str, Any]
    evaluation: Evaluation

    def score(self, metric: str, k: int) -> float:
        return float(self.evaluation.metrics[k][metric])


def parse_space(specs: Sequence[str], backend: Backend) -> SearchSpace:
    """``name=a,b,c`` (choices) and ``name=low..high`` (a range) into a checked search space."""
    known = {p.name: p for p in backend.params}
    alias_of = {alias: p.name for p in backend.params for alias in getattr(p, "aliases", ())}
    choices: dict[str, tuple[Any, ...]] = {}
    ranges: dict[str, tuple[float, float]] = {}
    for spec in specs:
        name, sep, values = (part.strip() for part in spec.partition("="))
        if not sep or not name or not values:
            raise ParameterError(f"--grid {spec!r}: expected NAME=V1,V2 or NAME=LOW..HIGH")
        name = alias_of.get(name, name)  # a renamed parameter's old name names it too
        if name not in known:
            valid = ", ".join(known) or "none"
            raise ParameterError(
                f"{backend.name}: unknown parameter {name!r}; valid parameters: {valid}"
            )
        param = known[name]
        if ".." in values:
            low, high = (param.coerce(v.strip(), backend.name) for v in values.split("..", 1))
            if param.type not in (int, float) or not low < high:
                raise ParameterError(
                    f"--grid {spec!r}: a range needs a numeric parameter and LOW < HIGH"
                )
            ranges[name] = (low, high)
        else:
            choices[name] = tuple(
                dict.fromkeys(param.coerce(v.strip(), backend.name) for v in values.split(","))
            )
    return SearchSpace(choices, ranges)


def candidates(
    space: SearchSpace, backend: Backend, *, trials: int | None = None, seed: Seed = 0
) -> list[dict[str, Any]]:
    """The parameter settings to try: the whole grid, or ``trials`` random draws from it.

    Random search samples grid points without replacement and, for ranges, draws integers
    uniformly and positive floats log-uniformly. A grid with ranges needs ``trials``.
    """
    names = list(space.choices)
    grid = [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*space.choices.values())
    ]
    if trials is None:
        if space.ranges:
            raise ParameterError("a LOW..HIGH range needs random search: give --trials N")
        return [resolve_params(backend, g) for g in grid]
    if trials < 1:
        raise ParameterError(f"--trials {trials} must be at least 1")
    rng = resolve_rng(seed)
    if not space.ranges:
        picks = rng.permutation(len(grid))[: min(trials, len(grid))]
        return [resolve_params(backend, grid[i]) for i in picks]
    known = {p.name: p for p in backend.params}
    out = []
    for _ in range(trials):
        setting = dict(grid[rng.integers(len(grid))]) if grid else {}
        for name, (low, high) in space.ranges.items():
            if known[name].type is int:
                setting[name] = int(rng.integers(low, high + 1))
            elif low > 0:
                setting[name] = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            else:
                setting[name] = float(rng.uniform(low, high))
        out.append(resolve_params(backend, setting))
    return out


def run_trials(
    split: Split,
    backend: str,
    settings: Sequence[Mapping[str, Any]],
    *,
    metric: str = "ndcg",
    k: int = 10,
    ks: Sequence[int] = (10,),
    weighting: str = "binary",
    seed: int | None = 0,
    n_threads: int = 1,
    on_trial: Callable[[int, Mapping[str, Any]], None] | None = None,
    item_features: Features | None = None,
    user_features: Features | None = None,
    coldstart: ColdStart | None = None,
) -> list[Trial]:
    """Evaluate every setting on ``split``; trials best first by ``metric`` at ``k``.

    Ties keep the order tried, so the result is deterministic. A ``k`` deeper than the
    catalogue is ranked at the catalogue's size, as ``evaluate_model`` computes it. Features
    and ``coldstart`` go to every fit; on a cold-start split trials rank by the first task
    (the cold items, or customers from their features).
    """
    k = min(int(k), max(split.train.n_items, 1))
    trials = []
    for n, params in enumerate(settings):
        if on_trial is not None:
            on_trial(n, params)
        result = evaluate_backend(
            split,
            backend,
            params,
            ks=sorted({*ks, k}),
            weighting=weighting,
            seed=seed,
            n_threads=n_threads,
            item_features=item_features,
            user_features=user_features,
            coldstart=coldstart,
        )
        if metric not in result.metrics[k]:
            raise ParameterError(
                f"unknown metric {metric!r}; choose one of {', '.join(result.metrics[k])}"
            )
        trials.append(Trial(dict(result.params), result))
    return sorted(trials, key=lambda t: -t.score(metric, k))
