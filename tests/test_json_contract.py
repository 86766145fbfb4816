"""Every command's ``--json`` output validates against its schema in ``schemas/``."""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from cli_helpers import run, run_json
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from growthrec.cli.main import build_parser

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
COMMON = "common.schema.json"

pytestmark = pytest.mark.usefixtures("plain_console")


def _schema_files() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.schema.json"))}


def _registry() -> Registry:
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in _schema_files().values()
    )


def validator(command: str) -> Draft202012Validator:
    """The validator of ``command``'s --json output, with the shared $defs resolvable."""
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
    return Draft202012Validator(schema, registry=_registry())


def check(command: str, payload: object) -> None:
    """``payload`` follows ``command``'s schema; every violation is listed on failure."""
    errors = sorted(validator(command).iter_errors(payload), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def _takes_json(parser: argparse.ArgumentParser) -> bool:
    """The parser, or one of its actions' parsers (``models list``, say), takes --json."""
    return any(
        "--json" in action.option_strings
        or (
            isinstance(action, argparse._SubParsersAction)
            and any(_takes_json(p) for p in action.choices.values())
        )
        for action in parser._actions
    )


def json_commands() -> list[str]:
    """The commands that take --json, from the real parser (one schema covers all of a
    command's actions)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(name for name, parser in sub.choices.items() if _takes_json(parser))


# the schemas themselves


def test_every_json_command_has_a_schema_and_every_schema_a_command():
    commands = json_commands()
    assert {"train", "recommend", "export", "evaluate", "compare", "tune"} <= set(commands)
    files = set(_schema_files()) - {COMMON}
    assert files == {f"{c}.schema.json" for c in commands}


@pytest.mark.parametrize("name", sorted(_schema_files()))
def test_schema_is_valid_draft_2020_12(name):
    schema = _schema_files()[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == name


def test_every_ref_resolves():
    registry = _registry()
    for name, schema in _schema_files().items():
        resolver = registry.resolver(base_uri=name)
        for ref in _refs(schema):
            resolver.lookup(ref)  # raises on a dangling reference


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


# fixtures: a small shop with numeric ids, as customers' files usually have


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """data/transactions.csv (60 customers x 15 products, integer ids) and data/items.csv."""
    from growthrec.cli.main import main

    path = tmp_path_factory.mktemp("shop") / "data" / "transactions.csv"
    argv = ["generate", "--users", "60", "--items", "15", "--density", "0.3", "--seed", "2"]
    assert main([*argv, "--output", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def model_file(shop, tmp_path_factory) -> Path:
    from growthrec.cli.main import main

    path = tmp_path_factory.mktemp("model") / "svd.npz"
    assert main(["train", "--data", str(shop), "--factors", "4", "--output", str(path)]) == 0
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# each command


def test_generate(tmp_path, capsys):
    target = tmp_path / "tx.csv"
    payload = run_json(
        capsys, "generate", "--users", 30, "--items", 8, "--density", 0.25, "--output", target
    )
    check("generate", payload)
    assert payload["transactions"]["path"] == str(target)
    assert payload["transactions"]["rows"] == len(_rows(target))
    assert payload["transactions"]["bytes"] == target.stat().st_size
    assert payload["catalog"]["rows"] == 8
    assert (payload["n_users"], payload["n_items"]) == (30, 8)


def test_train(shop, tmp_path, capsys):
    payload = run_json(capsys, "train", "--data", shop, "--factors", 3, "--output", tmp_path)
    check("train", payload)
    data, model = payload["data"], payload["model"]
    assert data["path"] == str(shop)
    assert data["rows_read"] == len(_rows(shop))
    assert data["n_users"] == len({r["user_id"] for r in _rows(shop)})
    assert data["n_interactions"] == len({(r["user_id"], r["item_id"]) for r in _rows(shop)})
    assert model["path"] == str(tmp_path / "svd.npz")
    assert model["bytes"] == (tmp_path / "svd.npz").stat().st_size
    assert payload["catalog"]["columns"] == ["category", "price", "brand", "line"]


def test_recommend_ids_are_strings(shop, model_file, capsys):
    payload = run_json(capsys, "recommend", "--model", model_file, "--user-id", "1", "--n", 3)
    check("recommend", payload)
    [result] = payload["results"]
    assert result["source"] == "model"
    assert all(isinstance(row["item"], str) for row in result["items"])
    items = {r["item_id"] for r in _rows(shop)}
    assert {row["item"] for row in result["items"]} <= items
    assert payload["model"]["path"] == str(model_file)
    assert payload["model"]["backend"] == "svd"


def test_recommend_fallback_score_is_a_buyer_share(shop, model_file, capsys):
    payload = run_json(
        capsys,
        "recommend",
        "--model",
        model_file,
        "--user-id",
        "no-such-customer",
        "--fallback",
        "popular",
        "--n",
        4,
    )
    check("recommend", payload)
    [result] = payload["results"]
    assert result["source"] == "fallback:popular"
    rows = _rows(shop)
    buyers = Counter(item for _, item in {(r["user_id"], r["item_id"]) for r in rows})
    customers = len({r["user_id"] for r in rows})
    for row in result["items"]:
        assert row["buyers"] == buyers[row["item"]]
        assert row["score"] == pytest.approx(buyers[row["item"]] / customers, abs=1e-6)
    assert result["items"][0]["buyers"] == max(buyers.values())


def test_recommend_basket(model_file, capsys):
    payload = run_json(
        capsys, "recommend", "--model", model_file, "--items", "SKU00001,SKU00002", "--n", 3
    )
    check("recommend", payload)
    [result] = payload["results"]
    assert (result["basket"], result["source"]) == (["SKU00001", "SKU00002"], "fold-in")


def test_recommend_basket_with_unknown_items(model_file, capsys):
    argv = ("recommend", "--model", model_file, "--items", "SKU00001,NOPE", "--json")
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    payload = json.loads(out)  # the warning about NOPE is on stderr, stdout stays one JSON value
    check("recommend", payload)
    assert payload["results"][0]["ignored_items"] == ["NOPE"]
    code, out, err = run(capsys, *argv[:4], "NOPE", "--fallback", "popular", "--json")
    assert code == 0, err
    payload = json.loads(out)
    check("recommend", payload)
    [result] = payload["results"]
    assert result["source"] == "fallback:popular"
    assert all(0 < row["score"] <= 1 for row in result["items"])


def test_export_with_fallback(model_file, tmp_path, capsys):
    target = tmp_path / "recs.parquet"
    payload = run_json(
        capsys,
        "export",
        "--model",
        model_file,
        "--user-id",
        "1",
        "99999",
        "--fallback",
        "popular",
        "--output",
        target,
    )
    check("export", payload)
    assert (payload["n_users"], payload["n_fallback_users"]) == (2, 1)
    assert payload["output"]["format"] == "parquet"


def test_export(model_file, tmp_path, capsys):
    target = tmp_path / "recs.csv"
    payload = run_json(capsys, "export", "--model", model_file, "--n", 2, "--output", target)
    check("export", payload)
    assert payload["output"] == {
        "path": str(target),
        "format": "csv",
        "rows": len(_rows(target)),
        "bytes": target.stat().st_size,
    }
    assert (payload["n_users"], payload["n_fallback_users"]) == (60, 0)


def test_evaluate(shop, capsys):
    payload = run_json(capsys, "evaluate", "--data", shop, "--factors", 3, "--k", 2, 4)
    check("evaluate", payload)
    assert payload["ks"] == [2, 4]
    assert [r["n_users"] for r in payload["results"]] == [payload["split"]["n_test_users"]] * 2


def test_compare(shop, capsys):
    payload = run_json(
        capsys, "compare", "--data", shop, "--models", "svd,popularity", "--param", "svd.factors=3"
    )
    check("compare", payload)
    assert [r["backend"] for r in payload["results"]] == ["svd", "popularity"]


def test_tune(shop, tmp_path, capsys):
    payload = run_json(
        capsys, "tune", "--data", shop, "--grid", "factors=2,3", "--output", tmp_path
    )
    check("tune", payload)
    assert len(payload["trials"]) == 2
    assert payload["best"]["params"] == payload["trials"][0]["params"]
    assert payload["output"]["path"] == str(tmp_path / "svd.params.json")
    assert (
        payload["data"]["fingerprint"]
        == json.loads((tmp_path / "svd.params.json").read_text())["data_fingerprint"]
    )


def test_backends(capsys):
    payload = run_json(capsys, "backends")
    check("backends", payload)
    assert {"svd", "popularity"} <= {entry["name"] for entry in payload}


def test_demo(capsys):
    payload = run_json(capsys, "demo", "--user-id", "7")
    check("demo", payload)
    assert payload["sample_user"]["user"] == "7"
    assert payload["data"]["n_users"] == 1000


def test_spark_train(spark, shop, tmp_path, capsys):
    payload = run_json(
        capsys,
        "spark-train",
        "--data",
        shop,
        "--factors",
        3,
        "--param",
        "iterations=2",
        "--output",
        tmp_path,
    )
    check("spark-train", payload)
    assert payload["data"]["paths"] == [str(shop)]
    assert payload["model"]["backend"] == "spark"


# the schemas catch drift


def test_old_or_misspelt_keys_are_refused(shop, model_file, capsys):
    payload = run_json(capsys, "recommend", "--model", model_file, "--user-id", "1", "--n", 2)
    check("recommend", payload)
    drifted = json.loads(json.dumps(payload))
    drifted["results"][0]["items"][0]["item"] = 7  # an id as a number
    with pytest.raises(ValidationError):
        validator("recommend").validate(drifted)
    drifted = json.loads(json.dumps(payload))
    drifted["backend"] = "svd"  # the old top-level key
    with pytest.raises(ValidationError):
        validator("recommend").validate(drifted)
    drifted = json.loads(json.dumps(payload))
    drifted["results"][0]["source"] = "popular"  # a fallback not labelled as such
    with pytest.raises(ValidationError):
        validator("recommend").validate(drifted)
