"""``growthrec serve``'s own failures (one line each), and the model holder's memory promise:
after a swap the old model is gone, so one model is resident (two only while swapping)."""

from __future__ import annotations

import gc
import socket
import sys
import weakref

import attrs
import numpy as np
import pytest
from cli_helpers import assert_error
from serving_helpers import replace_file, shop_model, version_of

pytest.importorskip("fastapi")

from growthrec.core.interactions import IdMap
from growthrec.core.model import Model
from growthrec.serving.holder import ModelHolder, load_served
from growthrec.store.modelfile import save_model


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


@pytest.mark.parametrize("ids", ["int", "str"])
def test_customer_lookup_is_idmaps(tmp_path, ids):
    """The service's binary search finds exactly the customers ``IdMap.index`` finds."""
    model = shop_model(tmp_path / "m.npz", seed=0)
    if ids == "str":
        names = np.array([f"c-{i:03d}" for i in model.train.users.ids.tolist()])
        train = attrs.evolve(model.train, users=IdMap.from_ids(names))
        model = Model(model.backend, model.params, model.arrays, train)
        save_model(model, tmp_path / "m.npz")
    served = load_served(tmp_path / "m.npz")
    queries = [str(i) for i in model.train.users.ids.tolist()]
    queries += ["7", "007", "+7", " 7", "7.0", "-7", "-0", "1e3", "9" * 30, "", "c-007", "C-007"]
    queries += ["c-7", "c-199", "c-200", "zzz"]
    expected = model.train.users.index(queries).tolist()
    assert [served.customer_index(q) for q in queries] == expected
    assert sum(i >= 0 for i in expected) >= 200  # every real id is found
