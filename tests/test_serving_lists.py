"""The list options of the service are the ranking pipeline's ``ListSpec``, over HTTP.

A real server (uvicorn on a free port) serves a model whose catalogue has a category, a price
and a brand; every answer is compared with ``recommend`` / ``recommend_new_customers`` given
the same ``ListSpec``, so the service is shown to apply exactly the pipeline's rules.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving_helpers import Server, shop_model

from growthrec.core.reranking import RerankSpec
from growthrec.pipeline.lists import recommend, recommend_new_customers
from growthrec.pipeline.rules import Filter, ListSpec, parse_filter
from growthrec.store.modelfile import load_model

COLUMNS = ("category", "price", "brand")


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lists")
    shop_model(folder / "model.npz", seed=0, factors=8, columns=COLUMNS)
    return folder / "model.npz"


@pytest.fixture(scope="module")
def model(path):
    return load_model(path)


@pytest.fixture(scope="module")
def server(path):
    with Server(path, log=path.with_suffix(".log")) as s:
        s.wait_ready()
        yield s


def _post(server: Server, body: dict, endpoint: str = "/v1/recommendations") -> httpx.Response:
    return server.client.post(endpoint, json=body)


def _items(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["item"] for row in response.json()["items"]]


def _expected(model, user: int, spec: ListSpec) -> list[str]:
    index, _ = recommend(model, np.array([user]), spec=spec)
    return [str(i) for i in model.train.items.ids[index[0][index[0] >= 0]]]


def _attribute(model, column: str, items: list[str]) -> list[str]:
    return model.item_attributes[column][model.train.items.index(items)].tolist()


# -- every option gives the pipeline's list --------------------------------------------------


def test_text_filters_are_the_pipelines(server, model):
    user = 11
    body = {"customer": str(model.train.users.ids[user]), "n": 8, "filters": ["price <= 20"]}
    got = _items(_post(server, body))
    spec = ListSpec(n=8, filters=(parse_filter("price <= 20"),))
    assert got == _expected(model, user, spec)
    assert got and all(float(p) <= 20 for p in _attribute(model, "price", got))


def test_structured_filters_equal_their_text(server, model):
    customer = str(model.train.users.ids[3])
    as_text = _post(
        server,
        {"customer": customer, "n": 6, "filters": ["category in home,office", "price > 10"]},
    )
    structured = _post(
        server,
        {
            "customer": customer,
            "n": 6,
            "filters": [
                {"column": "category", "op": "in", "value": ["home", "office"]},
                {"column": "price", "op": ">", "value": 10},
            ],
        },
    )
    assert _items(as_text) == _items(structured)
    assert set(_attribute(model, "category", _items(as_text))) <= {"home", "office"}
    spec = ListSpec(
        n=6,
        filters=(Filter("category", "in", ("home", "office")), Filter("price", ">", ("10",))),
    )
    assert _items(as_text) == _expected(model, 3, spec)


def test_caps_and_rerank_are_the_pipelines(server, model):
    user = 20
    customer = str(model.train.users.ids[user])
    capped = _items(_post(server, {"customer": customer, "n": 6, "caps": {"category": 1}}))
    assert capped == _expected(model, user, ListSpec(n=6, caps=(("category", 1),)))
    categories = _attribute(model, "category", capped)
    assert len(set(categories)) == len(categories)  # one item per category

    rerank = {"kind": "mmr", "strength": 0.7, "similarity": "categories"}
    body = {"customer": customer, "n": 6, "rerank": rerank, "candidates": 30}
    diverse = _items(_post(server, body))
    spec = ListSpec(n=6, rerank=RerankSpec("mmr", 0.7, 0.0, "categories"), candidates=30)
    assert diverse == _expected(model, user, spec)
    plain = _items(_post(server, {"customer": customer, "n": 6}))
    assert diverse != plain  # strength 0.7 over 30 candidates changes this customer's list

    calibrated = _post(
        server,
        {"customer": customer, "n": 5, "rerank": {"kind": "calibration", "strength": 0.5}},
    )
    spec = ListSpec(n=5, rerank=RerankSpec("calibration", 0.5))
    assert _items(calibrated) == _expected(model, user, spec)


def test_coverage_boosts_are_the_pipelines(server, model):
    # Lists of two from ten candidates show 35 of the 40 items; the boosts show all 40.
    spec = ListSpec(n=2, rerank=RerankSpec(coverage=0.5), candidates=10)
    every = np.arange(model.train.n_users)
    boosted, _ = recommend(model, every, spec=spec)
    plain, _ = recommend(model, every, spec=attrs.evolve(spec, rerank=RerankSpec()))
    assert np.unique(boosted).size > np.unique(plain).size
    moved = np.flatnonzero((boosted != plain).any(axis=1))
    for user in (*moved[:3].tolist(), 0):
        customer = str(model.train.users.ids[user])
        body = {"customer": customer, "n": 2, "rerank": {"coverage": 0.5}, "candidates": 10}
        assert _items(_post(server, body)) == _expected(model, user, spec)
    answer = _post(server, {"customer": "1", "rerank": {"coverage": 2}})
    assert answer.status_code == 422
    assert "rerank.coverage" in answer.text


def test_allow_list_leaves_a_short_list_and_says_so(server, model):
    user = 4
    bought = set(model.train.matrix[user].indices.tolist())
    available = [str(model.train.items.ids[i]) for i in range(40) if i not in bought][:3]
    body = {"customer": str(model.train.users.ids[user]), "n": 10, "allow": available}
    answer = _post(server, body).json()
    assert sorted(row["item"] for row in answer["items"]) == sorted(available)
    assert (answer["n_items"], answer["short"]) == (3, True)
    full = _post(server, {"customer": str(model.train.users.ids[user]), "n": 10}).json()
    assert (full["n_items"], full["short"], full["notes"]) == (10, False, [])


def test_a_filter_nothing_passes_is_an_empty_short_list_with_a_note(server, model):
    body = {"customer": str(model.train.users.ids[0]), "n": 5, "filters": ["price < 0"]}
    response = _post(server, body)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["items"], answer["n_items"], answer["short"]) == ([], 0, True)
    assert answer["notes"] == ["filter price < 0: no item of the catalogue is left (of 40)"]


def test_new_customer_with_rules(server, model):
    basket = [str(i) for i in model.train.items.ids[[1, 5, 9]]]
    body = {"basket": basket, "n": 5, "filters": ["price >= 5"], "caps": {"brand": 1}}
    got = _items(_post(server, body, "/v1/recommendations/new-customer"))
    spec = ListSpec(n=5, filters=(parse_filter("price >= 5"),), caps=(("brand", 1),))
    index, _ = recommend_new_customers(model, [basket], spec=spec)
    assert got == [str(i) for i in model.train.items.ids[index[0][index[0] >= 0]]]
    brands = _attribute(model, "brand", got)
    assert len(set(brands)) == len(brands)


def test_the_fallback_keeps_the_rules(server, model):
    body = {
        "customer": "nobody",
        "n": 4,
        "filters": ["category == home"],
        "caps": {"brand": 1},
        "rerank": {"kind": "mmr", "strength": 0.5},
    }
    answer = _post(server, body).json()
    assert answer["source"] == "fallback:popular"
    items = [row["item"] for row in answer["items"]]
    home = np.flatnonzero(model.item_attributes["category"] == "home")
    buyers = np.bincount(model.train.matrix.indices, minlength=40)
    expected, brands = [], set()
    for i in home[np.argsort(-buyers[home], kind="stable")]:
        if model.item_attributes["brand"][i] not in brands:
            brands.add(model.item_attributes["brand"][i])
            expected.append(str(model.train.items.ids[i]))
    assert items == expected[:4]
    assert answer["notes"] == [
        "re-ranking is not applied to best sellers (no customer to re-rank for)"
    ]


# -- bad values are 422s naming the field ----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "detail"),
    [
        (
            {"filters": ["price <= 20", "colour == red"]},
            "filters[1]: filter colour == red: the catalogue has no column 'colour' "
            "(columns: category, price, brand)",
        ),
        (
            {"filters": ["price ~ 20"]},
            "filters[0]: 'price ~ 20': expected COLUMN OP VALUE with OP one of in, not in, ==, "
            "!=, <=, >=, <, >, e.g. 'price <= 50' or 'category in books,toys'",
        ),
        (
            {"filters": ["category <= 5"]},
            "filters[0]: filter category <= 5: the catalogue's 'category' holds 'beauty', "
            "not a number",
        ),
        (
            {"filters": [{"column": "price", "op": "<=", "value": "cheap"}]},
            "filters[0]: filter price <= cheap: 'cheap' is not a number, and <= compares numbers",
        ),
        (
            {"filters": [{"column": "price", "op": "~", "value": 1}]},
            "filters[0].op: Input should be 'in', 'not in', '==', '!=', '<=', '>=', '<' or '>'",
        ),
        (
            {"caps": {"colour": 2}},
            "caps.colour: the catalogue has no column 'colour' (columns: category, price, brand)",
        ),
        ({"caps": {"brand": 0}}, "caps.brand: Input should be greater than or equal to 1"),
        (
            {"rerank": {"kind": "mmr", "strength": 1.5}},
            "rerank.strength: Input should be less than or equal to 1",
        ),
        (
            {"rerank": {"kind": "shuffle"}},
            "rerank.kind: Input should be 'none', 'mmr', 'dpp' or 'calibration'",
        ),
        (
            {"rerank": {"strength": 0.5}},
            "rerank: strength=0.5 needs a re-ranker (mmr, dpp or calibration)",
        ),
        (
            {"rerank": {"kind": "mmr", "strength": 0.5, "window": 3}},
            "rerank: window=3 applies to the dpp re-ranker only",
        ),
        (
            {"rerank": {"kind": "calibration", "strength": 0.5}, "category": "colour"},
            "rerank: calibration needs item categories, but the catalogue has no column "
            "'colour' (columns: category, price, brand); set `category` to one, or use "
            '"similarity": "purchases"',
        ),
        (
            {"rerank": {"kind": "dpp", "strength": 0.5, "similarity": "features"}},
            "rerank.similarity: features: this model was trained without item features",
        ),
        ({"candidates": 0}, "candidates: Input should be greater than or equal to 1"),
        (
            {"filters": [7]},
            "filters[0]: Input should be a valid dictionary or object to extract fields from",
        ),
    ],
)
def test_bad_list_options_are_422_naming_the_field(server, model, options, detail):
    for endpoint, body in (
        ("/v1/recommendations", {"customer": str(model.train.users.ids[0]), **options}),
        ("/v1/recommendations/new-customer", {"basket": [str(model.train.items.ids[0])]}),
    ):
        response = _post(server, {**body, **options}, endpoint)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == detail
        (error,) = response.json()["errors"]  # one field, named the same way
        assert f"{error['field']}: {error['message']}" == detail
