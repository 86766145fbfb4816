"""``serve --warm``: list settings ranked on every model before it serves, so what they build
once per model (coverage boosts, purchase vectors) is built before the first request; a model
that cannot take them is refused like one that fails the smoke test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error
from serving_helpers import Server, replace_file, shop_model, version_of, wait_until

pytest.importorskip("fastapi")

from growthrec.core.reranking import RerankSpec
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.prepared import prepare
from growthrec.pipeline.rules import ListSpec
from growthrec.serving.holder import ModelHolder, load_served
from growthrec.serving.warmup import read_warm_lists, warm_up

BOOSTED = {"n": 2, "candidates": 10, "rerank": {"coverage": 0.5}}
BY_CATEGORY = {"rerank": {"kind": "mmr", "strength": 0.3}}


def _write(path, entries) -> str:
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return str(path)


def _coverage_tables(model) -> list[tuple]:
    return [key for key in prepare(model).derived if key[0] == "coverage"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[", "not JSON (line 1: Expecting value)"),
        ("{}", "expected a JSON array of list settings"),
        ("[]", "expected a JSON array of list settings"),
        ([BOOSTED, {"customer": "7"}], "entry 1: customer: Extra inputs are not permitted"),
        ([{"rerank": {"coverage": 2}}], "entry 0: rerank.coverage: Input should be less than"),
        ([{"n": 0}], "entry 0: n: Input should be greater than or equal to 1"),
    ],
)
def test_bad_warm_files_are_one_line(tmp_path, capsys, content, expected):
    warm = _write(tmp_path / "warm.json", content)
    model = tmp_path / "m.npz"
    shop_model(model, seed=0)
    message = assert_error(capsys, 2, "serve", "--model", model, "--warm", warm)
    assert message.startswith(f"error: --warm {warm}: ")
    assert expected in message


def test_a_missing_warm_file_is_one_line(tmp_path, capsys):
    model = tmp_path / "m.npz"
    shop_model(model, seed=0)
    message = assert_error(capsys, 2, "serve", "--model", model, "--warm", tmp_path / "no.json")
    missing = tmp_path / "no.json"
    assert message == f"error: --warm {missing}: cannot be read (No such file or directory)"


def test_warm_up_builds_the_boosts_before_the_model_serves(tmp_path):
    path = tmp_path / "m.npz"
    shop_model(path, seed=0)
    lists = read_warm_lists(Path(_write(tmp_path / "warm.json", [BOOSTED])))
    served = load_served(path, warm=lambda model: warm_up(model, lists))
    assert served.warm_seconds > 0
    # The coverage boosts of exactly that setting are in the model's prepared tables.
    assert len(_coverage_tables(served.model)) == 1
    unwarmed = load_served(path)
    assert unwarmed.warm_seconds == 0 and not _coverage_tables(unwarmed.model)
    # Warming changes no list.
    spec = ListSpec(n=2, candidates=10, rerank=_coverage_tables(served.model)[0][-1])
    every = np.arange(served.model.train.n_users)
    assert np.array_equal(
        recommend(served.model, every, spec=spec)[0], recommend(unwarmed.model, every, spec=spec)[0]
    )


def test_a_model_that_cannot_take_the_settings_is_refused(tmp_path):
    with_catalogue, without = tmp_path / "a.npz", tmp_path / "b.npz"
    shop_model(with_catalogue, seed=0)
    shop_model(without, seed=0, columns=())
    served = tmp_path / "served.npz"
    replace_file(served, with_catalogue)
    lists = read_warm_lists(Path(_write(tmp_path / "warm.json", [BOOSTED, BY_CATEGORY])))
    holder = ModelHolder(served, warm=lambda model: warm_up(model, lists))
    assert holder.reload("startup").status == "swapped"
    kept = holder.current
    replace_file(served, without)
    outcome = holder.reload("new file")
    assert outcome.status == "failed"
    assert outcome.message.startswith(f"{served}: the warm-up failed (warm-up list 1: rerank: ")
    assert "categories" in outcome.message
    assert holder.current is kept and kept.version == version_of(with_catalogue)


def test_a_real_server_warms_every_model_it_loads(tmp_path):
    a, b, served = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "served.npz"
    model = shop_model(a, seed=0)
    shop_model(b, seed=1)
    replace_file(served, a)
    warm = _write(tmp_path / "warm.json", [BOOSTED])
    with Server(served, "--warm", warm, log=tmp_path / "server.log") as server:
        assert server.wait_ready() == version_of(a)
        described = server.client.get("/v1/model").json()
        assert 0 < described["warm_seconds"] <= described["load_seconds"]
        customer = str(model.train.users.ids[5])
        body = {"customer": customer, **BOOSTED}
        answer = server.client.post("/v1/recommendations", json=body).json()
        spec = ListSpec(n=2, candidates=10, rerank=RerankSpec(coverage=0.5))
        index, _ = recommend(model, np.array([5]), spec=spec)
        assert [row["item"] for row in answer["items"]] == [
            str(i) for i in model.train.items.ids[index[0][index[0] >= 0]]
        ]
        replace_file(served, b)
        wait_until(lambda: server.version() == version_of(b), timeout=30)
        assert server.client.get("/v1/model").json()["warm_seconds"] > 0
        assert server.log().count("(warm-up ") == 2  # at start and on the swap
