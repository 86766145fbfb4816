"""``growthrec serve`` for real: uvicorn on a free loopback port, every endpoint over HTTP.

Answers are checked against the pipeline's own functions on the same model file, so the
service is shown to serve exactly the lists ``recommend`` makes.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from serving_helpers import Server, replace_file, shop_model, version_of, wait_until

from growthrec.pipeline.lists import (
    popular_items,
    recommend,
    recommend_baskets,
    similar_items,
)
from growthrec.store.modelfile import load_model

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Two different good models (a, b) and the path the service watches."""
    folder = tmp_path_factory.mktemp("serving")
    a, b = folder / "a.npz", folder / "b.npz"
    shop_model(a, seed=0, factors=8)
    shop_model(b, seed=0, factors=3)
    served = folder / "served.npz"
    replace_file(served, a)
    return {"a": a, "b": b, "served": served, "folder": folder}


@pytest.fixture(scope="module")
def server(files):
    with Server(files["served"], "--admin-token", TOKEN, log=files["folder"] / "log") as s:
        s.wait_ready()
        yield s


def _items(response: httpx.Response) -> list[str]:
    return [row["item"] for row in response.json()["items"]]


def _ids(model, index: np.ndarray) -> list[str]:
    return [str(i) for i in model.train.items.ids[index[index >= 0]]]


def _post(server: Server, path: str, body: dict) -> httpx.Response:
    return server.client.post(path, json=body)


def _metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from the Prometheus exposition text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- the lists -------------------------------------------------------------------------------


def test_known_customer_gets_recommend_list_with_version(server, files):
    model = load_model(files["a"])
    user = model.train.users.ids[7]
    response = _post(server, "/v1/recommendations", {"customer": str(user), "n": 5})
    assert response.status_code == 200
    body = response.json()
    expected, scores = recommend(model, np.array([7]), 5)
    assert _items(response) == _ids(model, expected[0])
    assert [row["score"] for row in body["items"]] == pytest.approx(scores[0].tolist(), abs=1e-5)
    assert [row["rank"] for row in body["items"]] == [1, 2, 3, 4, 5]
    assert body["source"] == "model"
    assert body["customer"] == str(user)
    assert body["model_version"] == version_of(files["a"])
    assert response.headers["x-model-version"] == body["model_version"]
    assert set(body["items"][0]["attributes"]) == {"category"}


def test_customer_id_as_json_number_is_the_same_customer(server):
    as_text = _post(server, "/v1/recommendations", {"customer": "12", "n": 4})
    as_number = _post(server, "/v1/recommendations", {"customer": 12, "n": 4})
    assert as_text.json()["items"] == as_number.json()["items"]


def test_purchases_excluded_unless_asked(server, files):
    model = load_model(files["a"])
    bought = set(_ids(model, model.train.matrix[3].indices))
    user = str(model.train.users.ids[3])
    n = model.train.n_items
    excluded = _items(_post(server, "/v1/recommendations", {"customer": user, "n": n}))
    assert not bought & set(excluded)
    assert len(excluded) == n - len(bought)
    kept = _post(
        server, "/v1/recommendations", {"customer": user, "n": n, "exclude_purchased": False}
    )
    assert set(_items(kept)) == set(_ids(model, np.arange(n)))


def test_allow_and_deny_lists(server, files):
    model = load_model(files["a"])
    user = str(model.train.users.ids[0])
    top = _items(_post(server, "/v1/recommendations", {"customer": user, "n": 6}))
    denied = _post(
        server,
        "/v1/recommendations",
        {"customer": user, "n": 4, "deny": [top[0], top[2], "NOPE-1"]},
    )
    assert _items(denied) == [top[1], *top[3:6]]
    assert denied.json()["ignored_items"] == ["NOPE-1"]
    allowed = _post(
        server,
        "/v1/recommendations",
        {"customer": user, "n": 10, "allow": [top[4], top[1], "NOPE-2"], "deny": [top[4]]},
    )
    assert _items(allowed) == [top[1]]
    assert allowed.json()["ignored_items"] == ["NOPE-2"]


def test_explain_gives_history_and_contributions(server, files):
    model = load_model(files["a"])
    user_row = 5
    history = set(_ids(model, model.train.matrix[user_row].indices))
    body = _post(
        server,
        "/v1/recommendations",
        {"customer": str(model.train.users.ids[user_row]), "n": 3, "explain": True},
    ).json()
    assert {row["item"] for row in body["history"]} == history
    assert "category" in body["history"][0]["attributes"]
    for row in body["items"]:
        because = row["because"]
        assert len(because) <= 3
        assert all(c["score"] > 0 for c in because)
        assert {c["item"] for c in because} <= history
        assert [c["score"] for c in because] == sorted((c["score"] for c in because), reverse=True)


def test_unknown_customer_gets_labelled_best_sellers(server, files):
    model = load_model(files["a"])
    response = _post(server, "/v1/recommendations", {"customer": "no-such-customer", "n": 4})
    assert response.status_code == 200
    body = response.json()
    expected, buyers = popular_items(model, 4)
    assert body["source"] == "fallback:popular"
    assert (
        body["fallback_reason"] == "customer no-such-customer is not in the model's training data"
    )
    assert _items(response) == _ids(model, expected[0])
    assert [row["buyers"] for row in body["items"]] == buyers[0].astype(int).tolist()


def test_new_customer_basket_is_folded_in(server, files):
    model = load_model(files["a"])
    basket = [str(i) for i in model.train.items.ids[[2, 9, 11]]]
    response = _post(
        server,
        "/v1/recommendations/new-customer",
        {"basket": [*basket, "UNKNOWN-SKU"], "n": 5, "explain": True},
    )
    assert response.status_code == 200
    body = response.json()
    expected, _ = recommend_baskets(model, [basket], 5)
    assert _items(response) == _ids(model, expected[0])
    assert body["source"] == "fold-in"
    assert body["ignored_items"] == ["UNKNOWN-SKU"]
    assert [row["item"] for row in body["history"]] == basket
    assert all({c["item"] for c in row["because"]} <= set(basket) for row in body["items"])


def test_new_customer_without_known_items_gets_best_sellers(server, files):
    model = load_model(files["a"])
    body = _post(
        server, "/v1/recommendations/new-customer", {"basket": ["X1", "X2"], "n": 3}
    ).json()
    assert body["source"] == "fallback:popular"
    assert body["fallback_reason"] == "no basket item is in the model's catalogue"
    assert body["ignored_items"] == ["X1", "X2"]
    assert [row["item"] for row in body["items"]] == _ids(model, popular_items(model, 3)[0][0])


def test_new_customer_features_on_a_model_without_them_is_422(server):
    response = _post(
        server, "/v1/recommendations/new-customer", {"features": {"segment": "students"}}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("features: customer features: this model was")


def test_similar_items_and_best_sellers(server, files):
    model = load_model(files["a"])
    item = str(model.train.items.ids[4])
    response = _post(server, "/v1/similar-items", {"item": item, "n": 6})
    expected, _ = similar_items(model, np.array([4]), 6)
    assert _items(response) == _ids(model, expected[0])
    assert item not in _items(response)
    assert response.json()["attributes"] == {"category": str(model.item_attributes["category"][4])}
    best = server.client.get("/v1/best-sellers", params={"n": 7})
    assert _items(best) == _ids(model, popular_items(model, 7)[0][0])
    assert best.headers["x-model-version"] == version_of(files["a"])


def test_model_description(server, files):
    model = load_model(files["a"])
    body = server.client.get("/v1/model").json()
    assert body["model_version"] == version_of(files["a"])
    assert body["backend"] == "svd"
    assert body["params"] == dict(model.params)
    assert (body["n_customers"], body["n_items"]) == (200, 40)
    assert body["n_purchases"] == model.train.nnz
    assert body["item_attributes"] == ["category"]
    assert body["customer_features"] == []
    assert body["file_bytes"] == files["a"].stat().st_size
    assert body["format_version"] == 1
    assert body["trained_at"] is None  # the model file does not record it


def test_search(server):
    items = server.client.get("/v1/items/search", params={"q": "0001", "limit": 5}).json()
    assert items["matches"] == ["SKU00001", "SKU00010", "SKU00011", "SKU00012", "SKU00013"]
    assert items["total"] == 11  # SKU00001 and SKU00010..19
    customers = server.client.get("/v1/customers/search", params={"q": "19"}).json()
    assert customers["matches"][:2] == ["19", "190"]
    assert customers["matches"][-1] == "119"  # containing, after those starting with it
    assert set(customers["matches"]) == {"19", "119", *(str(i) for i in range(190, 200))}


# -- bad requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"customer": "1", "n": 0}, "n: Input should be greater than or equal to 1"),
        ({"customer": "1", "n": 5000}, "n: Input should be less than or equal to 1000"),
        ({"n": 3}, "customer: Field required"),
        ({"customer": ["1"]}, "customer: Input should be a valid string"),
        ({"customer": "1", "alow": ["A"]}, "alow: Extra inputs are not permitted"),
        ({"customer": "1", "deny": "A"}, "deny: Input should be a valid list"),
        ({"customer": "1", "deny": ["A", 7, None]}, "deny[2]: Input should be a valid string"),
        ({"customer": ""}, "customer: String should have at least 1 character"),
    ],
)
def test_bad_request_is_422_naming_the_field(server, body, message):
    response = _post(server, "/v1/recommendations", body)
    assert response.status_code == 422
    assert response.json()["detail"] == message


def test_malformed_json_and_bad_query_are_422(server):
    broken = server.client.post(
        "/v1/recommendations",
        content=b'{"customer": ',
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["detail"].startswith("body: JSON decode error")
    query = server.client.get("/v1/best-sellers", params={"n": "many"})
    assert query.status_code == 422
    assert query.json()["detail"].startswith("n: Input should be a valid integer")


def test_unknown_item_for_similar_items_is_422(server):
    response = _post(server, "/v1/similar-items", {"item": "NOPE"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "item: item NOPE is not in the model's catalogue",
        "errors": [{"field": "item", "message": "item NOPE is not in the model's catalogue"}],
    }


# -- operations ------------------------------------------------------------------------------


def test_health_openapi_and_page(server, files):
    assert server.client.get("/livez").json()["status"] == "alive"
    ready = server.client.get("/readyz")
    assert ready.json() == {
        "status": "ready",
        "model_version": version_of(files["served"]),
        "reason": None,
    }
    schema = server.client.get("/openapi.json").json()
    for path in (
        "/v1/recommendations",
        "/v1/recommendations/new-customer",
        "/v1/similar-items",
        "/v1/best-sellers",
        "/v1/model",
        "/v1/admin/reload",
        "/livez",
        "/readyz",
    ):
        assert path in schema["paths"], path
    fields = schema["components"]["schemas"]["CustomerRequest"]["properties"]
    assert fields["n"]["description"] == "How many items to recommend."
    page = server.client.get("/")
    assert page.status_code == 200
    assert '<input id="customer"' in page.text
    assert "fetch(" in server.client.get("/static/app.js").text


def test_metrics_count_requests_fallbacks_empty_lists_and_model(server, files):
    before = server.client.get("/metrics").text
    for _ in range(3):
        _post(server, "/v1/recommendations", {"customer": "ghost"})
    _post(server, "/v1/recommendations", {"customer": "1", "n": 0})
    model = load_model(files["a"])
    bought = str(model.train.items.ids[model.train.matrix[0].indices[0]])
    empty = _post(
        server,
        "/v1/recommendations",
        {"customer": str(model.train.users.ids[0]), "allow": [bought]},
    )
    assert empty.json()["items"] == []
    after = server.client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def grew(name: str, **labels: str) -> float:
        return _metric(text, name, **labels) - _metric(before, name, **labels)

    assert grew("growthrec_requests_total", endpoint="recommendations", status="200") == 4
    assert grew("growthrec_requests_total", endpoint="recommendations", status="422") == 1
    assert (
        grew("growthrec_fallbacks_total", endpoint="recommendations", reason="unknown_customer")
        == 3
    )
    assert grew("growthrec_empty_lists_total", endpoint="recommendations") == 1
    assert grew("growthrec_request_seconds_count", endpoint="recommendations") == 5
    assert (
        _metric(text, "growthrec_request_seconds_bucket", endpoint="recommendations", le="+Inf")
        >= 5
    )
    assert _metric(text, "growthrec_model_info", version=version_of(files["served"])) == 1
    assert _metric(text, "growthrec_ready") == 1
    assert _metric(text, "growthrec_model_swaps_total") >= 1


def test_admin_reload_needs_the_token(server):
    assert server.client.post("/v1/admin/reload").status_code == 401
    wrong = server.client.post("/v1/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"].startswith("authorization: give the admin token")
    same = server.client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert same.status_code == 200
    assert same.json()["status"] == "unchanged"


# -- the swap --------------------------------------------------------------------------------


def _expected_lists(path: Path, users: list[int], n: int) -> dict[str, list[str]]:
    model = load_model(path)
    index, _ = recommend(model, np.array(users), n)
    return {str(model.train.users.ids[u]): _ids(model, index[row]) for row, u in enumerate(users)}


def test_swap_by_file_and_admin_and_a_corrupt_file_keeps_the_old_model(server, files):
    users = list(range(0, 200, 7))
    expected = {
        version_of(files["a"]): _expected_lists(files["a"], users, 5),
        version_of(files["b"]): _expected_lists(files["b"], users, 5),
    }
    answers: list[tuple[str, str, list[str]]] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                for user in expected[version_of(files["a"])]:
                    r = client.post("/v1/recommendations", json={"customer": user, "n": 5})
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                        continue
                    body = r.json()
                    answers.append((body["model_version"], user, _items(r)))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        # 1. a new file at the watched path: picked up by the watcher
        replace_file(files["served"], files["b"])
        wait_until(lambda: server.version() == version_of(files["b"]), timeout=30)
        # 2. a corrupt file: refused (logged and counted), b keeps serving
        failed_before = _metric(
            server.client.get("/metrics").text, "growthrec_model_swap_failures_total"
        )
        replace_file(files["served"], b"PK\x03\x04 this is not a model")
        wait_until(
            lambda: (
                _metric(server.client.get("/metrics").text, "growthrec_model_swap_failures_total")
                == failed_before + 1
            ),
            timeout=30,
        )
        assert server.version() == version_of(files["b"])
        admin = server.client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert admin.status_code == 422
        assert admin.json()["status"] == "failed"
        assert admin.json()["model_version"] == version_of(files["b"])
        assert "not a readable growthrec model file" in admin.json()["message"]
        # 3. back to a, by the admin endpoint (the watcher may win the race: both are fine)
        replace_file(files["served"], files["a"])
        admin = server.client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert admin.status_code == 200
        assert admin.json()["model_version"] == version_of(files["a"])
        assert admin.json()["status"] in ("swapped", "unchanged")
        wait_until(lambda: len(answers) > 200, timeout=60)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    seen = {version for version, _, _ in answers}
    assert seen == set(expected)
    mixed = [a for a in answers if expected[a[0]][a[1]] != a[2]]
    assert mixed == []  # every answer is exactly its version's list
    log = server.log()
    assert re.search(
        r"model file rejected \(file changed\), still serving " + version_of(files["b"]), log
    )
    assert f"model {version_of(files['a'])} -> {version_of(files['b'])} (file changed)" in log


def test_not_ready_until_a_good_model_arrives(files, tmp_path):
    watched = tmp_path / "model.npz"
    watched.write_bytes(b"not a model at all")
    with Server(watched, log=tmp_path / "log") as server:
        server.wait_alive()
        wait_until(
            lambda: "not a readable" in (server.client.get("/readyz").json()["reason"] or "")
        )
        ready = server.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        assert str(watched) in ready.json()["reason"]
        early = _post(server, "/v1/recommendations", {"customer": "1"})
        assert early.status_code == 503
        assert early.json()["detail"].startswith("no model is serving yet (")
        assert early.headers["retry-after"] == "1"
        assert server.client.get("/livez").json() == {
            "status": "alive",
            "model_version": None,
            "reason": None,
        }
        metrics = server.client.get("/metrics").text
        assert _metric(metrics, "growthrec_ready") == 0
        assert _metric(metrics, "growthrec_model_swap_failures_total") == 1
        assert server.client.post("/v1/admin/reload").status_code == 404  # no token, no admin
        replace_file(watched, files["a"])
        assert server.wait_ready() == version_of(files["a"])
        assert _post(server, "/v1/recommendations", {"customer": "1"}).status_code == 200
        assert server.stop() == 0  # SIGTERM is the normal stop: requests finished, exit 0
        assert "error:" not in server.log()


def test_two_workers_serve_and_both_swap(files, tmp_path):
    watched = tmp_path / "model.npz"
    replace_file(watched, files["a"])
    warm = tmp_path / "warm.json"  # each worker reads it from the environment
    warm.write_text('[{"n": 2, "rerank": {"coverage": 0.3}}]')
    with Server(watched, "--workers", "2", "--warm", str(warm), log=tmp_path / "log") as server:
        assert server.wait_ready() == version_of(files["a"])
        started = f"model none -> {version_of(files['a'])} (startup)"
        wait_until(lambda: server.log().count(started) == 2)  # each worker loads its own
        assert server.log().count("(warm-up ") == 2  # and warms it up
        replace_file(watched, files["b"])

        def every_answer_is_b() -> bool:
            # fresh connections land on either worker: ten in a row from b
            for _ in range(10):
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    if client.get("/readyz").json()["model_version"] != version_of(files["b"]):
                        return False
            return True

        wait_until(every_answer_is_b, timeout=30)
        assert server.log().count(f"-> {version_of(files['b'])} (file changed)") == 2
