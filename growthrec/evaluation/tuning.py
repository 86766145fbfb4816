"""Parameter search on a validation split, trials ranked by one metric at one K.

Three ways to pick the settings: a whole grid, random draws (``candidates``), or a sequential
search (``sequential_search``: Optuna's TPE proposes each trial from how the earlier ones did,
within a trial budget; optional, ``pip install "growthrec[tune]"``). Without a grid, the
search looks where each backend's ``Param(search=...)`` declarations say (``default_space``).

Pruning: a backend with an iteration count (``Param(fidelity=True)``: ALS, BPR, iALS) fits
each trial first with a third of its iterations; a trial whose metric there is below the
median of the finished trials' at the same point (Optuna's ``MedianPruner``, after 5 finished
trials) stops, so a hopeless setting costs a third of a fit. Closed-form backends (EASE,
item-kNN, RP3beta) have no cheaper partial fit: their trials always run in full.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from growthrec.backends.contract import Backend, default_space, resolve_params
from growthrec.backends.registry import get_backend
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.seeds import Seed, resolve_rng
from growthrec.core.split import Split
from growthrec.errors import GrowthrecError, ParameterError
from growthrec.evaluation.runs import Evaluation, evaluate_backend

__all__ = [
    "INSTALL_HINT",
    "PRUNE_SHARE",
    "Search",
    "SearchSpace",
    "SearchTrial",
    "SearchUnavailableError",
    "Trial",
    "candidates",
    "default_search_space",
    "evaluate_settings",
    "parse_space",
    "run_trials",
    "sequential_search",
]

INSTALL_HINT = 'pip install "growthrec[tune]"'

#: Share of a trial's iterations fitted before it may be pruned.
PRUNE_SHARE = 1 / 3

#: Finished trials before pruning starts, so the median it compares with means something.
_PRUNE_AFTER = 5


class SearchUnavailableError(GrowthrecError):
    """Optuna, which the sequential search needs, is not installed."""


@attrs.frozen
class SearchSpace:
    """Values to try per parameter: a list of choices, or a (low, high) range for random search.

    ``log[name]`` says whether a range is drawn log-uniformly; a range it does not name is
    log-uniform when it is of positive floats, uniform otherwise.
    """

    choices: Mapping[str, tuple[Any, ...]] = attrs.field(factory=dict)
    ranges: Mapping[str, tuple[float, float]] = attrs.field(factory=dict)
    log: Mapping[str, bool] = attrs.field(factory=dict)

    def is_log(self, name: str) -> bool:
        """Whether the range of ``name`` is searched log-uniformly."""
        low = self.ranges[name][0]
        return self.log.get(name, isinstance(low, float) and low > 0)

    def without(self, names: Iterable[str]) -> SearchSpace:
        """This space with ``names`` left out (parameters the caller fixed)."""
        drop = set(names)
        return SearchSpace(
            {n: v for n, v in self.choices.items() if n not in drop},
            {n: v for n, v in self.ranges.items() if n not in drop},
            self.log,
        )

    def grid_size(self) -> int | None:
        """How many settings the choices make, or ``None`` with a range (endless)."""
        if self.ranges:
            return None
        return int(np.prod([len(v) for v in self.choices.values()], dtype=np.int64))


def default_search_space(backend: Backend) -> SearchSpace:
    """Where ``backend`` declares its parameters worth searching (``Param(search=...)``)."""
    choices: dict[str, tuple[Any, ...]] = {}
    ranges: dict[str, tuple[float, float]] = {}
    log: dict[str, bool] = {}
    for name, param in default_space(backend).items():
        values = tuple(param.coerce(v, backend.name) for v in param.search)
        if param.type in (int, float):
            ranges[name] = (values[0], values[1])
            log[name] = param.log
        else:
            choices[name] = values
    return SearchSpace(choices, ranges, log)


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
            log = space.is_log(name)
            if known[name].type is int and log:
                drawn = np.exp(rng.uniform(np.log(low), np.log(high + 1)))
                setting[name] = min(int(drawn), int(high))
            elif known[name].type is int:
                setting[name] = int(rng.integers(low, high + 1))
            elif log:
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
    **options: Any,
) -> list[Trial]:
    """Evaluate every setting on ``split``; trials best first by ``metric`` at ``k``.

    Ties keep the order tried, so the result is deterministic. A ``k`` deeper than the
    catalogue is ranked at the catalogue's size, as ``evaluate_model`` computes it. Features
    and ``coldstart`` go to every fit; on a cold-start split trials rank by the first task
    (the cold items, or customers from their features). ``options``: those of
    ``evaluate_settings``.
    """
    search = evaluate_settings(split, backend, settings, metric=metric, k=k, **options)
    return search.ranked(metric, min(int(k), max(split.train.n_items, 1)))


def evaluate_settings(
    split: Split,
    backend: str,
    settings: Sequence[Mapping[str, Any]],
    *,
    method: str = "grid",
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
    recency: float = 0.0,
) -> Search:
    """Every setting (a grid, or random draws: ``method``) evaluated in full, in order;
    ``recency`` (``Model.recency``) for every one."""
    evaluate = _Evaluator(
        split, backend, metric, k, ks, weighting, seed, n_threads,
        {"item_features": item_features, "user_features": user_features, "coldstart": coldstart,
         "recency": recency},
    )  # fmt: skip
    return Search(method, tuple(_timed_trials(evaluate, settings, on_trial)))


@attrs.frozen
class _Evaluator:
    """Fits one backend on one split and reads the metric tuning maximises."""

    split: Split
    backend: str
    metric: str
    k_asked: int
    ks: Sequence[int]
    weighting: str
    seed: int | None
    n_threads: int
    features: Mapping[str, Any]

    @property
    def k(self) -> int:
        return min(int(self.k_asked), max(self.split.train.n_items, 1))

    def __call__(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], Evaluation]:
        result = evaluate_backend(
            self.split,
            self.backend,
            params,
            ks=sorted({*self.ks, self.k}),
            weighting=self.weighting,
            seed=self.seed,
            n_threads=self.n_threads,
            **self.features,
        )
        if self.metric not in result.metrics[self.k]:
            raise ParameterError(
                f"unknown metric {self.metric!r}; choose one of {', '.join(result.metrics[self.k])}"
            )
        return dict(result.params), result


@attrs.frozen
class SearchTrial:
    """One trial of a search, in the order tried.

    ``state``: ``complete``; ``pruned`` (stopped after ``pruned_at``, the iterations fitted
    and the metric there); or ``repeat`` (a setting tried before, whose result it reuses,
    ``repeat_of`` its number). ``seconds``: the trial's wall time, fits and ranking.
    """

    number: int
    params: Mapping[str, Any]
    state: str
    value: float | None
    seconds: float
    evaluation: Evaluation | None = None
    pruned_at: tuple[int, float] | None = None
    repeat_of: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "number": self.number,
            "params": dict(self.params),
            "state": self.state,
            "value": self.value,
            "seconds": round(self.seconds, 4),
            "pruned_at": None
            if self.pruned_at is None
            else {"iterations": self.pruned_at[0], "value": self.pruned_at[1]},
            "repeat_of": self.repeat_of,
        }


@attrs.frozen
class Search:
    """What a search tried (``history``, in order) and how: ``method`` is ``grid``, ``random``
    or ``tpe``; ``budget`` the trials allowed (``None`` for a grid or random draws);
    ``pruning`` what pruning did, or ``None`` when it could not apply."""

    method: str
    history: tuple[SearchTrial, ...]
    budget: int | None = None
    pruning: str | None = None

    def ranked(self, metric: str, k: int) -> list[Trial]:
        """The complete trials, best first by ``metric`` at ``k`` (ties: the earlier first)."""
        done = [Trial(t.params, t.evaluation) for t in self.history if t.state == "complete"]
        return sorted(done, key=lambda t: -t.score(metric, k))

    @property
    def n_pruned(self) -> int:
        return sum(t.state == "pruned" for t in self.history)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "method": self.method,
            "budget": self.budget,
            "pruning": self.pruning,
            "n_pruned": self.n_pruned,
            "history": [t.as_dict() for t in self.history],
        }


def _optuna() -> Any:
    """The optuna module, quiet; one line naming the extra when it is missing."""
    try:
        import optuna
    except ImportError:
        raise SearchUnavailableError(
            f"the sequential search (--budget) needs optuna, which is not installed: {INSTALL_HINT}"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _distributions(optuna: Any, space: SearchSpace, backend: Backend) -> dict[str, Any]:
    known = {p.name: p for p in backend.params}
    out: dict[str, Any] = {}
    for name, values in space.choices.items():
        out[name] = optuna.distributions.CategoricalDistribution(values)
    for name, (low, high) in space.ranges.items():
        if known[name].type is int:
            out[name] = optuna.distributions.IntDistribution(
                int(low), int(high), log=space.is_log(name)
            )
        else:
            out[name] = optuna.distributions.FloatDistribution(
                float(low), float(high), log=space.is_log(name)
            )
    return out


def sequential_search(
    split: Split,
    backend: str,
    space: SearchSpace,
    *,
    budget: int,
    metric: str = "ndcg",
    k: int = 10,
    ks: Sequence[int] = (10,),
    weighting: str = "binary",
    seed: int | None = 0,
    n_threads: int = 1,
    prune: bool = True,
    fixed: Mapping[str, Any] | None = None,
    on_trial: Callable[[int, Mapping[str, Any]], None] | None = None,
    item_features: Features | None = None,
    user_features: Features | None = None,
    coldstart: ColdStart | None = None,
    recency: float = 0.0,
) -> Search:
    """Up to ``budget`` trials on ``split``, each proposed by Optuna's TPE from the earlier ones.

    The same ``seed`` gives the same trials (the sampler and every fit are seeded). A space of
    choices only with no more settings than ``budget`` is tried whole instead (a grid), since
    a search could only repeat itself. Pruning: see the module docstring; ``prune=False``
    fits every trial in full. A setting proposed twice reuses the first result. ``fixed``:
    parameters every trial takes as given (not searched); ``recency``: as ``evaluate_settings``.
    """
    impl = get_backend(backend)
    if budget < 1:
        raise ParameterError(f"--budget {budget} must be at least 1")
    space = space.without(fixed or {})  # what the caller fixed is not searched
    if not space.choices and not space.ranges:
        raise ParameterError(
            f"{backend}: nothing to search (it declares no search space); give --grid NAME=..."
        )
    features = {"item_features": item_features, "user_features": user_features}
    evaluate = _Evaluator(
        split, backend, metric, k, ks, weighting, seed, n_threads,
        {**features, "coldstart": coldstart, "recency": recency},
    )  # fmt: skip
    size = space.grid_size()
    if size is not None and size <= budget:
        names = list(space.choices)
        settings = [
            resolve_params(impl, {**(fixed or {}), **dict(zip(names, combo, strict=True))})
            for combo in itertools.product(*space.choices.values())
        ]
        return Search("grid", tuple(_timed_trials(evaluate, settings, on_trial)), budget)
    optuna = _optuna()
    fidelity = next((p.name for p in impl.params if getattr(p, "fidelity", False)), None)
    pruning = None
    if prune and fidelity is not None:
        pruning = f"median after {_PRUNE_AFTER} finished trials, at a third of {fidelity}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=min(10, max(3, budget // 4))
            ),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=_PRUNE_AFTER, n_warmup_steps=0),
        )
    distributions = _distributions(optuna, space, impl)
    seen: dict[str, SearchTrial] = {}
    history: list[SearchTrial] = []
    for number in range(budget):
        trial = study.ask(distributions)
        params = resolve_params(impl, {**(fixed or {}), **trial.params})
        if on_trial is not None:
            on_trial(number, params)
        key = repr(sorted(params.items()))
        start = time.perf_counter()
        if key in seen:
            first = seen[key]
            record = attrs.evolve(first, number=number, state="repeat", seconds=0.0,
                                  repeat_of=first.number)  # fmt: skip
            if first.state == "pruned":
                trial.report(first.pruned_at[1], step=0)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, first.value)
            history.append(record)
            continue
        record = None
        if pruning is not None and params[fidelity] >= 3:
            short = max(1, int(params[fidelity] * PRUNE_SHARE))
            early = evaluate({**params, fidelity: short})[1].metrics[evaluate.k][metric]
            trial.report(float(early), step=0)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                record = SearchTrial(
                    number, params, "pruned", None, time.perf_counter() - start,
                    pruned_at=(short, float(early)),
                )  # fmt: skip
        if record is None:
            params, result = evaluate(params)
            value = float(result.metrics[evaluate.k][metric])
            study.tell(trial, value)
            record = SearchTrial(
                number, params, "complete", value, time.perf_counter() - start, result
            )
        seen[key] = record
        history.append(record)
    return Search("tpe", tuple(history), budget, pruning)


def _timed_trials(
    evaluate: _Evaluator,
    settings: Sequence[Mapping[str, Any]],
    on_trial: Callable[[int, Mapping[str, Any]], None] | None,
) -> list[SearchTrial]:
    """Every setting evaluated in full, in order."""
    out = []
    for number, params in enumerate(settings):
        if on_trial is not None:
            on_trial(number, params)
        start = time.perf_counter()
        resolved, result = evaluate(params)
        value = float(result.metrics[evaluate.k][evaluate.metric])
        out.append(
            SearchTrial(number, resolved, "complete", value, time.perf_counter() - start, result)
        )
    return out
