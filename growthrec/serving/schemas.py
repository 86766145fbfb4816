"""Request and response bodies of the service: the OpenAPI page is built from these.

Ids travel as strings (a JSON number is accepted and read as its text), as in every
``--json`` output of the command line. Request bodies refuse unknown fields, so a misspelt
option is a 422 naming it rather than silently ignored. The list options (allow and deny
lists, attribute filters, caps, re-ranking) are those of the ranking pipeline's ``ListSpec``
(``growthrec.pipeline.rules``), applied by the same code as the command line's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
)

from growthrec.core.reranking.spec import MMR_AGGREGATES, RERANKERS, SIMILARITIES
from growthrec.pipeline.rules import DEFAULT_CANDIDATES, FILTER_OPERATORS

__all__ = [
    "MAX_IDS",
    "MAX_N",
    "UNION_TAGS",
    "BestSellers",
    "Contribution",
    "CustomerRequest",
    "FilterRule",
    "Health",
    "HistoryItem",
    "Id",
    "ItemRow",
    "ModelDescription",
    "NewCustomerRequest",
    "RecommendationList",
    "ReloadResult",
    "RerankRequest",
    "SearchResult",
    "SimilarItems",
    "SimilarRequest",
]

#: Longest list a request may ask for.
MAX_N = 1000
#: Most ids one request may carry in a basket, an allow or a deny list.
MAX_IDS = 10_000
#: Most filters or caps in one request.
MAX_RULES = 20
#: Most candidates one request may have re-ranked.
MAX_CANDIDATES = 5_000


def _id_text(value: object) -> object:
    # A JSON integer is the id it spells; bool is refused (True is not an id).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: A customer or item id: a string, or an integer read as its decimal text.
Id = Annotated[str, StringConstraints(min_length=1, max_length=10_000), BeforeValidator(_id_text)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterRule(_Request):
    """One attribute filter, structured (the same as the text ``"price <= 50"``)."""

    column: str = Field(min_length=1, max_length=200, description="A catalogue column.")
    op: Literal[FILTER_OPERATORS] = Field(  # type: ignore[valid-type]
        description="`in` and `not in` take a list of values; `==` and `!=` one text value; "
        "`<=`, `>=`, `<`, `>` one number."
    )
    value: Annotated[str, StringConstraints(max_length=10_000)] | float | list[Id] = Field(
        description="The value (or values, for `in` / `not in`) to compare with."
    )


class RerankRequest(_Request):
    """How the top candidates are re-ordered before the first `n` are kept."""

    kind: Literal[RERANKERS] = Field(  # type: ignore[valid-type]
        "none",
        description="`mmr` (maximal marginal relevance), `dpp` (determinantal point process), "
        "`calibration` (the customer's category shares), or `none` (the popularity penalty "
        "only).",
    )
    strength: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="0 keeps the relevance order, 1 is the re-ranker's objective alone "
        "(MMR: 1 - lambda; DPP: 1 - theta; calibration: lambda).",
    )
    popularity_penalty: float = Field(
        0.0, ge=0.0, le=1.0, description="Lowers best sellers' relevance first (0: none)."
    )
    similarity: Literal[SIMILARITIES] = Field(  # type: ignore[valid-type]
        "categories",
        description="What MMR and the DPP compare items by: catalogue `categories` (the "
        "`category` column), item `features`, the model's `factors`, or `purchases` (SVD "
        "item vectors of the train matrix: the ruler intra-list diversity uses without "
        "categories; built on the first request that asks, then kept).",
    )
    window: int | None = Field(
        None, ge=2, le=MAX_N, description="DPP only: diverse over any `window` consecutive items."
    )
    aggregate: Literal[MMR_AGGREGATES] = Field(  # type: ignore[valid-type]
        "max",
        description="MMR only: penalise the largest (`max`) or the mean (`mean`) similarity to "
        "the items already chosen; `mean` raises intra-list diversity more for the same accuracy.",
    )
    coverage: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Catalogue coverage: the largest boost on the relevance of an item no "
        "customer's list shows (0: off). The boosts come from every customer's list under "
        "these settings, built on the first request that asks (or when the model loads, with "
        "`serve --warm`), then kept.",
    )


#: Tags of the filter union (text or object): left out of the field names errors give.
UNION_TAGS = ("text-filter", "object-filter")


def _filter_kind(value: object) -> str:
    return UNION_TAGS[0] if isinstance(value, str) else UNION_TAGS[1]


#: A filter: the text form, or a ``FilterRule`` object (so an error names one of the two).
FilterItem = Annotated[
    Annotated[Annotated[str, StringConstraints(max_length=10_000)], Tag(UNION_TAGS[0])]
    | Annotated[FilterRule, Tag(UNION_TAGS[1])],
    Discriminator(_filter_kind),
]


class ListOptions(_Request):
    """What every recommendation list request may set."""

    n: int = Field(10, ge=1, le=MAX_N, description="How many items to recommend.")
    exclude_purchased: bool = Field(
        True, description="Leave out what the customer (or the basket) already has."
    )
    allow: list[Id] | None = Field(
        None,
        max_length=MAX_IDS,
        description="Only these items may be recommended: an allow list, or the items "
        "available now (in stock). Ids not in the model's catalogue are ignored and listed "
        "in `ignored_items`. Omit to allow every item.",
    )
    deny: list[Id] = Field(
        default_factory=list,
        max_length=MAX_IDS,
        description="Items never to recommend (unknown ids are ignored and listed in "
        "`ignored_items`).",
    )
    explain: bool = Field(
        False,
        description="Add, for each recommended item, the purchases that contributed most "
        "(`because`), and the customer's purchase history (`history`).",
    )
    filters: list[FilterItem] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description="Catalogue attribute filters, all of which an item must pass: text such as "
        '`"price <= 50"`, `"category in books,toys"`, `"in_stock == true"`, or objects '
        '`{"column": "price", "op": "<=", "value": 50}`. See `item_attributes` of GET '
        "/v1/model for the columns.",
    )
    caps: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=200)],
        Annotated[int, Field(ge=1, le=MAX_N)],
    ] = Field(
        default_factory=dict,
        max_length=MAX_RULES,
        description='At most so many items per value of a catalogue column: `{"brand": 2}`.',
    )
    rerank: RerankRequest | None = Field(
        None, description="Re-ranking of the top `candidates` (diversity, calibration)."
    )
    candidates: int = Field(
        DEFAULT_CANDIDATES,
        ge=1,
        le=MAX_CANDIDATES,
        description="How many of the model's top items caps and re-ranking choose from.",
    )
    category: str = Field(
        "category",
        min_length=1,
        max_length=200,
        description="The catalogue column calibration and `categories` similarity read.",
    )


class CustomerRequest(ListOptions):
    """Recommendations for a customer the model was trained on."""

    customer: Id = Field(
        description="The customer's id. One the model does not know gets the best sellers, "
        'labelled `source: "fallback:popular"`.'
    )


class NewCustomerRequest(ListOptions):
    """Recommendations for a customer not in the training data: a basket, features, or both."""

    basket: list[Id] = Field(
        default_factory=list,
        max_length=MAX_IDS,
        description="Items the customer has (bought, or in the cart), folded into the model "
        "without retraining. Ids not in the catalogue are ignored and listed in "
        "`ignored_items`.",
    )
    features: dict[str, str] | None = Field(
        None,
        description="The customer's feature values, one per customer feature column the "
        "model learned (see `customer_features` of GET /v1/model), e.g. "
        '`{"segment": "students"}`.',
    )


class SimilarRequest(_Request):
    """Items like a given one."""

    item: Id = Field(description="The item's id.")
    n: int = Field(10, ge=1, le=MAX_N, description="How many similar items.")


class Contribution(BaseModel):
    """A purchase that led to a recommendation."""

    item: str = Field(description="An item from the customer's history or basket.")
    score: float = Field(
        description="The recommended item's score from this purchase alone (the model "
        "folded in on a basket of only this item): higher contributed more."
    )


class ItemRow(BaseModel):
    """One item of a list."""

    rank: int = Field(description="1 for the first item.")
    item: str = Field(description="The item's id.")
    score: float = Field(
        description="The model's score (higher first); in best-seller lists the share of "
        "training customers who bought the item."
    )
    buyers: int | None = Field(
        None, description="In best-seller lists: how many training customers bought it."
    )
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Catalogue columns stored in the model (a category)."
    )
    because: list[Contribution] | None = Field(
        None,
        description="With `explain`: the purchases that contributed most (positive "
        "contributions only, at most 3), best first.",
    )


class HistoryItem(BaseModel):
    """An item the customer has."""

    item: str
    attributes: dict[str, str] = Field(default_factory=dict)


class RecommendationList(BaseModel):
    """A recommendation list, and where it came from."""

    model_version: str = Field(description="Version of the model that made every item here.")
    customer: str | None = Field(None, description="The customer asked for, if one was.")
    source: Literal["model", "fold-in", "fallback:popular"] = Field(
        description="`model`: the customer's learned profile; `fold-in`: a new customer's "
        "basket and/or features; `fallback:popular`: the best sellers, given when the model "
        "cannot score the customer (see `fallback_reason`)."
    )
    fallback_reason: str | None = Field(None, description="Why the best sellers were given.")
    items: list[ItemRow] = Field(description="Best first; fewer than `n` when too few remain.")
    n_items: int = Field(description="How many items the list has.")
    short: bool = Field(
        description="Whether the list has fewer than `n` items: the rules (purchases excluded, "
        "allow/deny lists, filters, caps) left too few; nothing is made up to fill it."
    )
    ignored_items: list[str] = Field(
        default_factory=list,
        description="Ids in the basket, allow or deny lists that are not in the catalogue.",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What the answer could not do as asked (e.g. a filter no item passes).",
    )
    history: list[HistoryItem] | None = Field(
        None,
        description="With `explain`: what the customer bought (most recent first when the "
        "model knows purchase times), or the known basket items.",
    )


class SimilarItems(BaseModel):
    """Items like the given one."""

    model_version: str
    item: str = Field(description="The item asked about.")
    attributes: dict[str, str] = Field(default_factory=dict)
    items: list[ItemRow] = Field(description="Most similar first; the item itself left out.")


class BestSellers(BaseModel):
    """The items most training customers bought."""

    model_version: str
    items: list[ItemRow]


class SearchResult(BaseModel):
    """Ids containing the text searched for (those starting with it first)."""

    model_version: str
    query: str
    matches: list[str]
    total: int = Field(description="How many ids match in all.")


class ModelDescription(BaseModel):
    """The model being served."""

    model_version: str = Field(
        description="The content's fingerprint: the first 12 hex digits of SHA-256 over the "
        "model file's archive members (name, size, CRC-32)."
    )
    path: str = Field(description="The model file served.")
    store_version: str | None = Field(
        None,
        description="With `growthrec serve --store`: the store's version id of the champion "
        "served (`v0003`); it changes when a version is promoted or rolled back.",
    )
    backend: str
    params: dict[str, object]
    weighting: str
    recency: float = Field(
        0.0,
        description="Half-life of the customers' recency weights in purchase times (0: off).",
    )
    seed: int | None
    n_customers: int
    n_items: int
    n_purchases: int = Field(description="Customer-item pairs in the training data.")
    item_attributes: list[str]
    customer_features: list[str] = Field(
        description="Feature columns a new customer may give (empty: baskets only)."
    )
    file_bytes: int
    file_modified_at: float = Field(description="The file's mtime, Unix seconds.")
    loaded_at: float = Field(description="When this process loaded it, Unix seconds.")
    load_seconds: float
    warm_seconds: float = Field(
        0.0,
        description="Of `load_seconds`, the time spent ranking the list settings of "
        "`serve --warm` (0 without them): what they build once per model, built before it "
        "served.",
    )
    format_version: int | None = None
    growthrec_version: str | None = Field(None, description="growthrec that wrote the file.")
    trained_at: str | None = Field(None, description="When trained, if the file records it.")
    data_fingerprint: str | None = Field(
        None, description="Fingerprint of the training data, if the file records it."
    )


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["alive", "ready", "not ready"]
    model_version: str | None = None
    reason: str | None = None


class ReloadResult(BaseModel):
    """What an admin reload did."""

    status: Literal["swapped", "unchanged", "failed", "retry"] = Field(
        description="`swapped`: the new model serves; `unchanged`: same content as the "
        "serving one; `failed`: the file was rejected and the old model still serves; "
        "`retry`: the file was still being written."
    )
    model_version: str | None = Field(description="The version serving now.")
    previous_version: str | None
    message: str = ""
