"""The accuracy / beyond-accuracy trade-off of re-ranking, measured as one value.

``sweep_tradeoff`` fits one backend on a validation split (carved from the train part) and on
the test split, and runs each re-ranker curve (``mmr``, ``dpp``, ``calibration``,
``popularity``, or a composition such as ``popularity+mmr``) over a range of its strength,
every list through the same pipeline as ``growthrec recommend``. At each strength it records
NDCG@K and Recall@K beside coverage, intra-list diversity, the Gini index of exposure, the
long-tail share, novelty and (with categories) miscalibration, and the paired standard error
of the NDCG change against the plain list (per-customer NDCG, the same customers both ways).

The strength of each curve is *chosen on the validation split*: the one with the largest gain
in ``choose_by`` (coverage by default) among those losing at most ``max_ndcg_loss`` (3%) of
the plain list's NDCG; the test split only reports that strength's figures. The *knee* of a
curve is its Kneedle point (Satopää et al. 2011): with NDCG loss and the metric's gain each
scaled to [0, 1] over the curve, the strength furthest above the diagonal (the global maximum
of the difference curve); none when no point lies above it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from growthrec.core.coldstart import ColdStart
from growthrec.core.features import Features
from growthrec.core.item_vectors import purchase_seed
from growthrec.core.model import Model
from growthrec.core.reranking import RerankSpec
from growthrec.core.split import Split
from growthrec.errors import ParameterError
from growthrec.evaluation.bootstrap import ndcg_per_user
from growthrec.evaluation.runs import categories_from, evaluate_lists, item_vectors_for_diversity
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import item_categories
from growthrec.pipeline.rules import ListSpec

__all__ = [
    "ACCURACY",
    "CURVE_PARTS",
    "DEFAULT_CURVES",
    "DEFAULT_STRENGTHS",
    "LOWER_IS_BETTER",
    "TRADEOFF_METRICS",
    "Choice",
    "Curve",
    "SplitSweep",
    "Tradeoff",
    "TradeoffPoint",
    "choose_strengths",
    "diversity_basis",
    "kneedle",
    "parse_curve",
    "sweep_lists",
    "sweep_tradeoff",
]

#: Accuracy metrics on the y axes.
ACCURACY = ("ndcg", "recall")
#: Beyond-accuracy metrics on the x axes, in this order (those the data allows).
TRADEOFF_METRICS = ("coverage", "diversity", "gini", "long_tail", "novelty", "miscalibration")
#: Metrics where lower is better: their gain is a decrease.
LOWER_IS_BETTER = frozenset({"gini", "miscalibration"})
#: What a curve is made of; ``popularity`` and ``coverage`` compose with one of the others.
CURVE_PARTS = ("mmr", "mmr-mean", "dpp", "calibration", "popularity", "coverage")
#: The parts that adjust relevance before a re-ranker: swept with the strength, or fixed.
ADJUSTMENTS = ("popularity", "coverage")
DEFAULT_CURVES = ("mmr", "dpp", "calibration", "popularity", "popularity+mmr")
DEFAULT_STRENGTHS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


@attrs.frozen
class Curve:
    """One curve of the sweep: a re-ranker ``kind`` (``none`` for an adjustment alone) and
    the popularity penalty and coverage boosts, each swept with the strength (its value None)
    or fixed at its value; ``penalised`` and ``covered`` say whether each takes part."""

    kind: str
    penalised: bool = False
    popularity: float | None = None
    covered: bool = False
    coverage: float | None = None

    @property
    def name(self) -> str:
        """``mmr``, ``popularity``, ``popularity+mmr``, ``popularity=0.1+coverage=0.5+mmr``."""
        parts = []
        for part, used, value in (
            ("popularity", self.penalised, self.popularity),
            ("coverage", self.covered, self.coverage),
        ):
            if used:
                parts.append(part if value is None else f"{part}={value:g}")
        if self.kind != "none":
            parts.append(self.kind)
        return "+".join(parts)

    @property
    def fixed(self) -> bool:
        """Whether a fixed adjustment changes the list at strength 0 (so it starts there)."""
        return (self.penalised and self.popularity is not None) or (
            self.covered and self.coverage is not None
        )

    def spec_at(self, strength: float, similarity: str, window: int | None = None) -> RerankSpec:
        """The re-ranking at ``strength``: the re-ranker's strength, and the swept
        adjustments' values."""
        beta = coverage = 0.0
        if self.penalised:
            beta = strength if self.popularity is None else self.popularity
        if self.covered:
            coverage = strength if self.coverage is None else self.coverage
        mean = self.kind == "mmr-mean"  # MMR penalising the mean similarity (RerankSpec.aggregate)
        return RerankSpec(
            "mmr" if mean else self.kind,
            strength if self.kind != "none" else 0.0,
            beta,
            similarity,
            window if self.kind == "dpp" else None,
            "mean" if mean else "max",
            coverage,
        )


def parse_curve(text: str) -> Curve:
    """``"mmr"``, ``"popularity"``, ``"popularity+mmr"``, ``"popularity=0.1+dpp"`` or
    ``"coverage=0.5+mmr-mean"`` as a ``Curve``; a mistake is one line naming the text."""
    parts = [p.strip() for p in text.split("+")]
    if not text.strip() or any(not p for p in parts):
        raise ParameterError(
            f"--rerankers {text!r}: expected re-rankers joined by '+', e.g. popularity+mmr"
        )
    kinds: list[str] = []
    given: dict[str, float | None] = {}
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip()
        if name not in CURVE_PARTS:
            raise ParameterError(
                f"--rerankers {text!r}: unknown re-ranker {name!r}; choose from "
                f"{', '.join(CURVE_PARTS)}, or join popularity with one (popularity+mmr)"
            )
        if name in ADJUSTMENTS:
            if name in given:
                raise ParameterError(f"--rerankers {text!r}: {name} given twice")
            given[name] = _fixed_value(text, name, value) if sep else None
        else:
            if sep:
                raise ParameterError(
                    f"--rerankers {text!r}: only popularity and coverage take a fixed value "
                    "(popularity=0.1+mmr); the others follow --strengths"
                )
            kinds.append(name)
    if len(kinds) > 1:
        raise ParameterError(
            f"--rerankers {text!r}: one pass holds one of mmr, dpp and calibration "
            "(compose popularity or coverage with one of them)"
        )
    if not kinds and all(v is not None for v in given.values()):
        raise ParameterError(
            f"--rerankers {text!r}: fixed values need something to sweep "
            "(popularity=0.1+mmr, coverage=0.5+popularity)"
        )
    return Curve(
        kinds[0] if kinds else "none",
        "popularity" in given,
        given.get("popularity"),
        "coverage" in given,
        given.get("coverage"),
    )


def _fixed_value(text: str, name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and 0.0 < number <= 1.0):
        raise ParameterError(
            f"--rerankers {text!r}: {name}={value.strip()} must be a number in (0, 1]"
        )
    return number


@attrs.frozen
class TradeoffPoint:
    """One curve at one strength on one split: the metrics at K, each metric's relative change
    against the plain list, and the paired standard error of the NDCG change (relative to the
    plain NDCG, like the change), from per-customer NDCG over the same customers."""

    curve: str
    strength: float
    metrics: Mapping[str, float]
    changes: Mapping[str, float]
    ndcg_change_se: float
    n_short_lists: int = 0

    @property
    def ndcg_change(self) -> float:
        return self.changes["ndcg"]

    def gain(self, metric: str) -> float:
        """The relative improvement in ``metric`` (a decrease for Gini and miscalibration)."""
        change = self.changes[metric]
        return -change if metric in LOWER_IS_BETTER else change

    def as_dict(self) -> dict[str, Any]:
        return {
            "curve": self.curve,
            "strength": self.strength,
            "metrics": dict(self.metrics),
            "changes": {m: v if math.isfinite(v) else None for m, v in self.changes.items()},
            "ndcg_change_se": self.ndcg_change_se,
            "n_short_lists": self.n_short_lists,
        }


@attrs.frozen
class SplitSweep:
    """Every curve's points on one split (``validation`` or ``test``), strength 0 (the plain
    list) first on each, and each curve's knee per beyond-accuracy metric."""

    name: str
    protocol: str
    n_users: int
    plain: Mapping[str, float]
    points: tuple[TradeoffPoint, ...]
    knees: Mapping[str, Mapping[str, float | None]]
    diversity_basis: str = ""

    def curve(self, name: str) -> list[TradeoffPoint]:
        """The points of curve ``name``, by strength."""
        return sorted((p for p in self.points if p.curve == name), key=lambda p: p.strength)

    def at(self, name: str, strength: float) -> TradeoffPoint:
        """Curve ``name``'s point at ``strength``."""
        for point in self.points:
            if point.curve == name and point.strength == strength:
                return point
        raise ParameterError(f"{self.name}: curve {name!r} has no point at strength {strength:g}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.name,
            "protocol": self.protocol,
            "n_users": self.n_users,
            "plain": dict(self.plain),
            "points": [p.as_dict() for p in self.points],
            "knees": {c: dict(k) for c, k in self.knees.items()},
            "diversity_basis": self.diversity_basis,
        }


@attrs.frozen
class Choice:
    """A curve's strength chosen on validation, with its validation and test points."""

    curve: str
    strength: float
    validation: TradeoffPoint
    test: TradeoffPoint
    within_limit: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "curve": self.curve,
            "strength": self.strength,
            "within_limit": self.within_limit,
            "validation": self.validation.as_dict(),
            "test": self.test.as_dict(),
        }


@attrs.frozen
class Tradeoff:
    """What ``sweep_tradeoff`` measured: both splits' sweeps and the strengths chosen."""

    backend: str
    params: Mapping[str, Any]
    k: int
    seed: int | None
    similarity: str
    candidates: int
    strengths: tuple[float, ...]
    curves: tuple[str, ...]
    metrics: tuple[str, ...]
    max_ndcg_loss: float
    choose_by: str
    validation: SplitSweep
    test: SplitSweep
    chosen: tuple[Choice, ...]

    def sweep(self, split: str) -> SplitSweep:
        """The ``validation`` or ``test`` sweep."""
        if split not in ("validation", "test"):
            raise ParameterError(f"split={split!r}: choose validation or test")
        return self.validation if split == "validation" else self.test

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form with stable keys."""
        return {
            "backend": self.backend,
            "params": dict(self.params),
            "k": self.k,
            "seed": self.seed,
            "similarity": self.similarity,
            "candidates": self.candidates,
            "strengths": list(self.strengths),
            "curves": list(self.curves),
            "metrics": list(self.metrics),
            "knee": "kneedle",
            "rule": {
                "choose_by": self.choose_by,
                "max_ndcg_loss": self.max_ndcg_loss,
                "chosen_on": "validation",
            },
            "validation": self.validation.as_dict(),
            "test": self.test.as_dict(),
            "chosen": [c.as_dict() for c in self.chosen],
        }


def kneedle(points: Sequence[TradeoffPoint], metric: str) -> float | None:
    """The Kneedle strength of one curve for ``metric`` (see the module doc), or None.

    x is the NDCG loss, y the metric's gain, both min-max scaled over the curve's points; the
    knee is the point with the largest y - x (the smallest strength on a tie), if above 0 and
    not the plain list itself.
    """
    if len(points) < 3:
        return None
    x = np.array([-p.ndcg_change for p in points])
    y = np.array([p.gain(metric) for p in points])
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    x_range, y_range = np.ptp(x), np.ptp(y)
    if x_range <= 0 or y_range <= 0:
        return None
    difference = (y - y.min()) / y_range - (x - x.min()) / x_range
    best = int(np.argmax(difference))
    strength = float(points[best].strength)
    return strength if difference[best] > 1e-12 and strength > 0 else None


def _checked_strengths(strengths: Sequence[float]) -> tuple[float, ...]:
    values = []
    for s in strengths:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            raise ParameterError(f"--strengths: {s!r} is not a number in [0, 1]")
        if not 0.0 <= s <= 1.0:
            raise ParameterError(
                f"--strengths: {s:g} is outside [0, 1] (0 keeps the model's order, 1 is the "
                "re-ranker's objective alone)"
            )
        values.append(float(s))
    out = tuple(sorted(set(values) | {0.0}))
    if len(out) < 2:
        raise ParameterError("--strengths: give at least one strength above 0, e.g. 0,0.1,0.2")
    return out


#: Up to this many categories, diversity compares items by their category rows (cosine).
_DENSE_CATEGORIES = 512


def diversity_basis(model: Model, column: str) -> tuple[str, dict[str, np.ndarray]]:
    """What intra-list diversity compares items by (one ruler for every curve of a split),
    named, and the keyword ``evaluate_lists`` takes.

    With the catalogue's ``column``: 1 - cosine of the items' category rows, an item of
    several categories (``a|b``) counting in each, as MMR and the DPP compare them (whole
    category strings as codes would call two films of genres ``Action|Drama`` and
    ``Action`` unlike); past ``_DENSE_CATEGORIES`` categories, the strings as codes. Without
    it: item vectors from a truncated SVD of the model's train part.
    """
    if column in model.item_attributes:
        table = item_categories(model, column)
        if table.n_categories <= _DENSE_CATEGORIES:
            rows = table.matrix().toarray().astype(np.float32)
            return f"{column} rows (cosine)", {"item_vectors": rows}
        return f"{column} values", {"categories": categories_from(model.item_attributes[column])}
    return "item vectors (svd of train)", {
        "item_vectors": item_vectors_for_diversity(model.train, seed=purchase_seed(model.seed))
    }


def sweep_lists(
    model: Model,
    test: Any,
    curves: Sequence[Curve],
    strengths: Sequence[float],
    *,
    k: int = 10,
    spec: ListSpec | None = None,
    similarity: str = "categories",
    window: int | None = None,
    n_threads: int = 1,
    name: str = "test",
    protocol: str = "",
    on_step: Callable[[str], None] | None = None,
) -> SplitSweep:
    """Every curve of ``curves`` at every strength, for ``model``'s lists against ``test``
    (a held-out CSR matrix): ``spec``'s rules with each curve's re-ranking at top ``k``."""
    strengths = _checked_strengths(strengths)
    base = ListSpec(n=k) if spec is None else attrs.evolve(spec, n=k)
    basis_name, basis = diversity_basis(model, base.category)

    def measured(rerank: RerankSpec) -> tuple[dict[str, float], np.ndarray, int, int]:
        result = evaluate_lists(
            model,
            test,
            (k,),
            n_threads=n_threads,
            spec=attrs.evolve(base, rerank=rerank),
            keep_lists=True,
            **basis,
        )
        assert result.lists is not None and result.users is not None
        per_user = ndcg_per_user(result.lists, test[result.users], k)
        metrics = result.metrics[min(k, model.train.n_items)]
        return dict(metrics), per_user, result.n_users, result.n_short_lists

    if on_step is not None:
        on_step(f"{name}: the plain list")
    plain, plain_ndcg, n_users, plain_short = measured(RerankSpec())
    kept = [m for m in ("ndcg", "recall", *TRADEOFF_METRICS) if m in plain]
    plain = {m: plain[m] for m in kept}
    points: list[TradeoffPoint] = []
    for curve in curves:
        # A curve with a fixed popularity penalty or coverage starts from it alone, not the
        # plain list; the others start from the plain list itself.
        fixed = curve.fixed
        if not fixed:
            points.append(
                TradeoffPoint(curve.name, 0.0, plain, {m: 0.0 for m in kept}, 0.0, plain_short)
            )
        for strength in strengths if fixed else strengths[1:]:
            if on_step is not None:
                on_step(f"{name}: {curve.name} at {strength:g}")
            metrics, per_user, _, short = measured(curve.spec_at(strength, similarity, window))
            metrics = {m: metrics[m] for m in kept}
            points.append(
                TradeoffPoint(
                    curve.name,
                    strength,
                    metrics,
                    {m: _relative(metrics[m], plain[m]) for m in kept},
                    _paired_se(per_user - plain_ndcg, plain["ndcg"]),
                    short,
                )
            )
    sweep = SplitSweep(name, protocol, n_users, plain, tuple(points), {}, basis_name)
    knees = {
        curve.name: {m: kneedle(sweep.curve(curve.name), m) for m in kept if m not in ACCURACY}
        for curve in curves
    }
    return attrs.evolve(sweep, knees=knees)


def _relative(value: float, plain: float) -> float:
    """(value - plain) / plain; 0 when both are 0, +-inf when only the plain one is."""
    if plain == 0:
        return 0.0 if value == 0 else math.copysign(math.inf, value)
    return (value - plain) / plain


def _paired_se(differences: np.ndarray, plain_ndcg: float) -> float:
    """Standard error of the mean per-customer difference, relative to the plain NDCG."""
    n = differences.size
    if n < 2 or plain_ndcg == 0:
        return 0.0
    return float(np.std(differences, ddof=1) / math.sqrt(n) / plain_ndcg)


def choose_strengths(
    validation: SplitSweep,
    test: SplitSweep,
    curves: Sequence[str],
    *,
    max_ndcg_loss: float = 0.03,
    choose_by: str = "coverage",
) -> tuple[Choice, ...]:
    """Per curve, the strength with the largest ``choose_by`` gain on ``validation`` among
    those losing at most ``max_ndcg_loss`` of the plain NDCG there (the smallest strength on a
    tie), with its ``test`` point. Strength 0 is the plain list and always qualifies, except
    on a curve with a fixed popularity penalty: when none of its points does, the one losing
    least is taken and ``within_limit`` says so."""
    out = []
    for name in curves:
        points = validation.curve(name)
        allowed = [p for p in points if p.ndcg_change >= -max_ndcg_loss - 1e-12]
        if allowed:
            best = max(allowed, key=lambda p: (p.gain(choose_by), -p.strength))
        else:
            best = max(points, key=lambda p: (p.ndcg_change, -p.strength))
        out.append(Choice(name, best.strength, best, test.at(name, best.strength), bool(allowed)))
    return tuple(out)


def _check_curves(
    curves: Sequence[Curve], attributes: Mapping[str, np.ndarray], similarity: str, column: str
) -> None:
    """A curve that needs item categories on a catalogue without them: one line."""
    if not curves:
        raise ParameterError("--rerankers: give at least one, e.g. mmr,popularity")
    names = [c.name for c in curves]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ParameterError(f"--rerankers: {twice[0]} given twice")
    if column in attributes:
        return
    known = ", ".join(attributes) or "none: no catalogue"
    for curve in curves:
        if curve.kind == "calibration":
            raise ParameterError(
                f"--rerankers {curve.name}: calibration needs item categories, and the catalogue "
                f"has no column {column!r} (columns: {known}); drop it or name the column with "
                "--category-col"
            )
        if curve.kind in ("mmr", "mmr-mean", "dpp") and similarity == "categories":
            raise ParameterError(
                f"--rerankers {curve.name}: {curve.kind} by categories needs item categories, "
                f"and the catalogue has no column {column!r} (columns: {known}); use "
                "--similarity purchases, factors or features, or name the column with "
                "--category-col"
            )


def sweep_tradeoff(
    split: Split,
    validation: Split,
    backend: str,
    params: Mapping[str, Any] | None = None,
    *,
    curves: Sequence[Curve | str] = DEFAULT_CURVES,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    k: int = 10,
    spec: ListSpec | None = None,
    similarity: str = "categories",
    window: int | None = None,
    weighting: str = "binary",
    recency: float = 0.0,
    seed: int | None = 0,
    n_threads: int = 1,
    max_ndcg_loss: float = 0.03,
    choose_by: str = "coverage",
    item_attributes: Mapping[str, np.ndarray] | None = None,
    item_features: Features | None = None,
    user_features: Features | None = None,
    coldstart: ColdStart | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Tradeoff:
    """Fit ``backend`` on ``validation``'s and ``split``'s train parts, sweep every curve on
    both (``sweep_lists``), choose each curve's strength on validation
    (``choose_strengths``) and report its test figures (see the module doc).

    ``validation`` must be carved from ``split``'s train part
    (``growthrec.evaluation.make_validation_split``) so the test part never decides anything.
    """
    if split.cold_items is not None or split.cold_users is not None:
        raise ParameterError(
            f"{split.protocol}: the trade-off sweep ranks warm customers over the whole "
            "catalogue; use leave-one-out, ratio or temporal"
        )
    parsed = tuple(parse_curve(c) if isinstance(c, str) else c for c in curves)
    strengths = _checked_strengths(strengths)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ParameterError(f"k={k!r} must be a whole number of at least 1")
    if not (math.isfinite(max_ndcg_loss) and 0.0 <= max_ndcg_loss < 1.0):
        raise ParameterError(
            f"max_ndcg_loss={max_ndcg_loss:g}: the share of NDCG a strength may lose must lie "
            "in [0, 1), e.g. 0.03"
        )
    attributes = dict(item_attributes or {})
    base = ListSpec(n=int(k)) if spec is None else attrs.evolve(spec, n=int(k))
    _check_curves(parsed, attributes, similarity, base.category)
    possible = ("coverage", "diversity", "gini", "long_tail", "novelty")
    if base.category in attributes:
        possible += ("miscalibration",)
    if choose_by not in possible:
        raise ParameterError(f"choose_by={choose_by!r}: choose one of {', '.join(possible)}")
    fitting = {
        "weighting": weighting,
        "recency": recency,
        "seed": seed,
        "item_features": item_features,
        "user_features": user_features,
        "coldstart": coldstart,
        "item_attributes": attributes or None,
    }
    options = {
        "k": int(k),
        "spec": base,
        "similarity": similarity,
        "window": window,
        "n_threads": n_threads,
        "on_step": on_step,
    }
    sweeps = {}
    model = None
    for name, part in (("validation", validation), ("test", split)):
        if on_step is not None:
            on_step(f"{name}: fitting {backend}")
        model = fit_model(part.train, backend, params, **fitting)
        sweeps[name] = sweep_lists(
            model,
            part.test,
            parsed,
            strengths,
            name=name,
            protocol=part.protocol,
            **options,
        )
    assert model is not None
    names = tuple(c.name for c in parsed)
    chosen = choose_strengths(
        sweeps["validation"],
        sweeps["test"],
        names,
        max_ndcg_loss=max_ndcg_loss,
        choose_by=choose_by,
    )
    metrics = tuple(m for m in TRADEOFF_METRICS if m in sweeps["test"].plain)
    return Tradeoff(
        backend,
        dict(model.params),
        int(k),
        seed,
        similarity,
        base.candidates,
        strengths,
        names,
        metrics,
        float(max_ndcg_loss),
        choose_by,
        sweeps["validation"],
        sweeps["test"],
        chosen,
    )
