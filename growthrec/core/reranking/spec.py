"""What a user asks of the re-ranking stage, as one validated value: which re-ranker, how hard."""

from __future__ import annotations

import math

import attrs

from growthrec.errors import ParameterError

__all__ = ["MMR_AGGREGATES", "RERANKERS", "SIMILARITIES", "RerankSpec"]

#: Re-rankers by name: ``none`` keeps the relevance order (the popularity penalty still applies).
RERANKERS = ("none", "mmr", "dpp", "calibration")
#: Where item similarity comes from: catalogue categories, item feature rows, the model's factors,
#: or purchase vectors (``growthrec.core.item_vectors``: the ruler intra-list diversity uses on
#: data without categories; any backend has them).
SIMILARITIES = ("categories", "features", "factors", "purchases")
#: How MMR sums up a candidate's similarity to the items already chosen: the largest (Carbonell
#: & Goldstein) or the mean (Ziegler et al. 2005; what intra-list diversity averages).
MMR_AGGREGATES = ("max", "mean")
#: What each strength means, for the one-line errors (all lie in [0, 1]; 0 = the plain ranking).
_STRENGTH_MEANING = {
    "none": "unused",
    "mmr": "1 - lambda of MMR",
    "dpp": "1 - theta of the DPP",
    "calibration": "lambda of calibration",
}


@attrs.frozen
class RerankSpec:
    """One pass of re-ranking: ``kind`` at ``strength`` in [0, 1] (0 keeps the relevance order,
    1 is the re-ranker's objective alone), after a popularity penalty in [0, 1] on relevance.

    ``similarity`` says which item table MMR and the DPP compare items with; calibration always
    uses the categories. ``window`` (DPP only) is the sliding window of Chen et al.: a list need
    only be diverse over any ``window`` consecutive items (``None``: the whole list).
    ``aggregate`` (MMR only) penalises the largest (``max``) or the mean (``mean``) similarity
    to the items already chosen; ``mean`` raises intra-list diversity, a mean, more per step.
    ``coverage`` in [0, 1] (0: off) raises the relevance of items no customer's list shows, a
    step per round, up to ``coverage`` (``growthrec.core.reranking.coverage``): catalogue
    coverage for little accuracy.
    """

    kind: str = "none"
    strength: float = 0.0
    popularity_penalty: float = 0.0
    similarity: str = "categories"
    window: int | None = None
    aggregate: str = "max"
    coverage: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.kind not in RERANKERS:
            raise ParameterError(
                f"rerank: unknown re-ranker {self.kind!r}; choose one of {', '.join(RERANKERS)}"
            )
        if self.similarity not in SIMILARITIES:
            raise ParameterError(
                f"rerank: unknown similarity {self.similarity!r}; "
                f"choose one of {', '.join(SIMILARITIES)}"
            )
        for name in ("strength", "popularity_penalty", "coverage"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(f"rerank: {name}={value!r} must be a number in [0, 1]")
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                meaning = {
                    "strength": _STRENGTH_MEANING[self.kind],
                    "popularity_penalty": "beta",
                    "coverage": "the largest boost",
                }[name]
                raise ParameterError(
                    f"rerank: {name}={value} is outside [0, 1] ({meaning}); "
                    "0 keeps the relevance order"
                )
        if self.kind == "none" and self.strength != 0:
            raise ParameterError(
                f"rerank: strength={self.strength} needs a re-ranker (mmr, dpp or calibration)"
            )
        if self.window is not None:
            if self.kind != "dpp":
                raise ParameterError(
                    f"rerank: window={self.window} applies to the dpp re-ranker only"
                )
            if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 2:
                raise ParameterError(f"rerank: window={self.window!r} must be an integer >= 2")
        if self.aggregate not in MMR_AGGREGATES:
            raise ParameterError(
                f"rerank: unknown aggregate {self.aggregate!r}; choose one of "
                f"{', '.join(MMR_AGGREGATES)}"
            )
        if self.aggregate != "max" and self.kind != "mmr":
            raise ParameterError(
                f"rerank: aggregate={self.aggregate} applies to the mmr re-ranker only"
            )

    @property
    def needs_categories(self) -> bool:
        """Whether this pass needs the category tables (calibration at strength > 0)."""
        return self.kind == "calibration" and self.strength > 0

    @property
    def needs_similarity(self) -> bool:
        """Whether this pass compares items with each other (MMR or the DPP, strength > 0)."""
        return self.kind in ("mmr", "dpp") and self.strength > 0
