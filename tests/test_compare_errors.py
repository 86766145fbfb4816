"""``compare``: a backend named twice, a missing --tuned folder, parameters tuned on other data."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from cli_helpers import assert_error, run

from growthrec.cli.main import main

pytestmark = pytest.mark.usefixtures("plain_console")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "transactions.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["generate", "--users", "120", "--items", "30", "--density", "0.1", "--seed", "0"]
        assert main([*argv, "--output", str(path)]) == 0
    return path


def _compare(capsys, shop, *argv):
    code, out, err = run(capsys, "compare", "--data", shop, *argv, "--k", 5, "--json")
    assert code == 0, err
    return json.loads(out), err


@pytest.mark.parametrize(
    ("models", "twice"),
    [("svd,svd", "svd"), ("svd, popularity ,svd,popularity", "popularity, svd")],
)
def test_a_backend_named_twice_is_a_usage_error(capsys, shop, tmp_path, monkeypatch, models, twice):
    monkeypatch.chdir(tmp_path)
    message = assert_error(capsys, 2, "compare", "--data", shop, "--models", models)
    assert message == (
        f"error: --models {models}: {twice} named more than once; give each backend once "
        "(one set of parameters each)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_missing_tuned_folder_is_an_error(capsys, shop, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-such-dir"
    message = assert_error(
        capsys, 1, "compare", "--data", shop, "--models", "svd", "--tuned", missing
    )
    assert message == f"error: --tuned {missing}: no such folder or file (run 'growthrec tune')"
    assert list(tmp_path.iterdir()) == []


def _write_tuned(folder, fingerprint):
    record = {"backend": "svd", "params": {"factors": 3}, "weighting": "binary"}
    if fingerprint is not None:
        record["data_fingerprint"] = fingerprint
    folder.mkdir(exist_ok=True)
    (folder / "svd.params.json").write_text(json.dumps(record))
    return folder / "svd.params.json"


def test_parameters_tuned_on_other_data_warn_with_both_fingerprints(capsys, shop, tmp_path):
    params_file = _write_tuned(tmp_path / "tuned", "0123456789abcdef")
    payload, err = _compare(
        capsys, shop, "--models", "svd,popularity", "--tuned", tmp_path / "tuned"
    )
    fingerprint = payload["data"]["fingerprint"]
    assert len(fingerprint) == 16 and fingerprint != "0123456789abcdef"
    expected = (
        f"{params_file} was tuned on other data (fingerprint 0123456789abcdef); {shop} has "
        f"fingerprint {fingerprint}"
    )
    assert err == f"warning: {expected}\n"
    assert payload["warnings"] == [expected]
    # The parameters are still used: a warning, not a refusal.
    assert payload["results"][0]["params"]["factors"] == 3


def test_parameters_tuned_on_this_data_do_not_warn(capsys, shop, tmp_path):
    code, out, err = run(
        capsys,
        "tune",
        "--data",
        shop,
        "--model",
        "svd",
        "--grid",
        "factors=2,3",
        "--k",
        5,
        "--at",
        5,
        "--output",
        tmp_path,
        "--json",
    )
    assert code == 0, err
    best = json.loads(out)["best"]["params"]["factors"]
    payload, err = _compare(capsys, shop, "--models", "svd", "--tuned", tmp_path)
    assert err == ""
    assert payload["warnings"] == []
    assert payload["results"][0]["params"]["factors"] == best


def test_a_tuned_file_without_fingerprint_does_not_warn(capsys, shop, tmp_path):
    _write_tuned(tmp_path, None)
    payload, err = _compare(capsys, shop, "--models", "svd", "--tuned", tmp_path)
    assert err == ""
    assert payload["results"][0]["params"]["factors"] == 3
