"""``growthrec serve``'s own failures (one line each), and the model holder's memory promise:
after a swap the old model is gone, so one model is resident (two only while swapping)."""

from __future__ import annotations

import gc
import socket
import sys
import weakref

import pytest
from cli_helpers import assert_error
from serving_helpers import replace_file, shop_model, version_of

pytest.importorskip("fastapi")

from growthrec.serving.holder import ModelHolder


def test_missing_extra_is_one_line_saying_what_to_install(capsys, monkeypatch, tmp_path):
    model = tmp_path / "m.npz"
    shop_model(model, seed=0)
    for name in [
        m for m in sys.modules if m == "growthrec.serving" or m.startswith("growthrec.serving.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if not installed
    message = assert_error(capsys, 2, "serve", "--model", model)
    assert message == (
        "error: growthrec serve needs fastapi, which is not installed; install the service's "
        'extra with: pip install "growthrec[serve]"'
    )


def test_missing_model_file_is_exit_1(capsys, tmp_path):
    message = assert_error(capsys, 1, "serve", "--model", tmp_path / "none.npz")
    assert (
        message
        == f"error: {tmp_path / 'none.npz'}: no such model file (train one with 'growthrec train')"
    )


def test_port_in_use_names_the_option(capsys, tmp_path):
    model = tmp_path / "m.npz"
    shop_model(model, seed=0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        message = assert_error(capsys, 2, "serve", "--model", model, "--port", port)
    assert message == (
        f"error: --port {port}: already in use on 127.0.0.1 (another server runs there; "
        "choose another port)"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--port", "70000"], "argument --port: 70000 is not a port number (1 to 65535)"),
        (["--workers", "0"], "argument --workers: 0 must be at least 1"),
        (["--watch-interval", "0"], "argument --watch-interval: 0.0 must be between 0.05"),
    ],
)
def test_bad_options_are_usage_errors(capsys, tmp_path, argv, expected):
    message = assert_error(capsys, 2, "serve", "--model", tmp_path / "m.npz", *argv)
    assert expected in message


def test_swap_leaves_one_model_resident_and_a_bad_file_changes_nothing(tmp_path):
    a, b, served = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "served.npz"
    shop_model(a, seed=0, factors=8)
    shop_model(b, seed=0, factors=3)
    replace_file(served, a)
    outcomes = []
    holder = ModelHolder(served, on_outcome=outcomes.append)
    assert holder.reload("startup").status == "swapped"
    first = weakref.ref(holder.current.model)
    assert holder.current.version == version_of(a)

    assert holder.reload("again").status == "unchanged"
    replace_file(served, b)
    outcome = holder.reload("new file")
    assert (outcome.status, outcome.version, outcome.previous_version) == (
        "swapped",
        version_of(b),
        version_of(a),
    )
    gc.collect()
    assert first() is None  # the old model is freed once nothing reads it

    second = holder.current
    replace_file(served, b"PK\x03\x04 broken")
    failed = holder.reload("broken file")
    assert failed.status == "failed"
    assert failed.previous_version == version_of(b)
    assert "not a readable growthrec model file" in failed.message
    assert holder.current is second  # the very same value keeps serving
    assert [o.status for o in outcomes] == ["swapped", "unchanged", "swapped", "failed"]
