"""The plug: backends register through one hook, in-process or through an installed entry point."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import growthrec
from growthrec.backends import hookspecs
from growthrec.backends.registry import (
    BLOCK_ENV,
    BUILTIN_MODULES,
    available_backends,
    get_backend,
    plugin_manager,
)
from growthrec.errors import PluginError, UnknownBackendError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "growthrec-cooccurrence"


class _ConstantBackend:
    name = "constant"
    description = "scores every item by its index (a test double)"
    params = (growthrec.Param("scale", 1.0, "multiplier", minimum=0),)

    def fit(self, matrix, params, rng):
        return {"weights": np.arange(matrix.shape[1], dtype=np.float32) * params["scale"]}

    def score(self, arrays, params, rows, users):
        return np.broadcast_to(arrays["weights"], (rows.shape[0], rows.shape[1]))


class _Plugin:
    def __init__(self, backend: object) -> None:
        self.backend = backend

    @growthrec.hookimpl
    def register_backends(self, register):
        register(self.backend)


class _MisspeltPlugin:
    @growthrec.hookimpl
    def register_backend(self, register):  # missing "s": must fail loudly
        register(_ConstantBackend())


def _registered(plugin: object, name: str):
    pm = plugin_manager()
    pm.register(plugin, name=name)
    return pm


def test_builtins_register_through_the_same_hook() -> None:
    pm = plugin_manager()
    registered = available_backends()
    assert {"svd", "popularity"} <= set(registered)
    assert registered["svd"].plugin == "growthrec.backends.svd"
    assert registered["popularity"].plugin == "growthrec.backends.popularity"
    assert registered["svd"].distribution.startswith("growthrec ")
    # No side door: each built-in module is a plugin with a register_backends hookimpl.
    plugins = {pm.get_name(impl.plugin) for impl in pm.hook.register_backends.get_hookimpls()}
    assert set(BUILTIN_MODULES) <= plugins


def test_in_process_plugin_registers_and_trains(small_shop) -> None:
    plugin = _Plugin(_ConstantBackend())
    _registered(plugin, "test-constant")
    try:
        registration = available_backends()["constant"]
        assert registration.plugin == "test-constant"
        model = fit_model(small_shop, "constant", {"scale": "2"})
        assert model.params == {"scale": 2.0}
        items, _ = recommend(model, np.arange(3), 2, exclude_seen=False)
        last = small_shop.n_items - 1
        assert items.tolist() == [[last, last - 1]] * 3
    finally:
        plugin_manager().unregister(plugin)
    assert "constant" not in available_backends()


def test_duplicate_backend_name_names_both_plugins() -> None:
    impostor = _ConstantBackend()
    impostor.name = "svd"
    plugin = _Plugin(impostor)
    _registered(plugin, "impostor-plugin")
    try:
        with pytest.raises(PluginError, match=r"growthrec.backends.svd") as info:
            available_backends()
        assert "impostor-plugin" in str(info.value)
    finally:
        plugin_manager().unregister(plugin)


def test_misspelt_hook_fails_loudly() -> None:
    plugin = _MisspeltPlugin()
    _registered(plugin, "misspelt-plugin")
    try:
        with pytest.raises(PluginError, match=r"misspelt-plugin.*register_backend"):
            available_backends()
    finally:
        plugin_manager().unregister(plugin)


def test_registering_something_that_is_not_a_backend_is_an_error() -> None:
    plugin = _Plugin(object())
    _registered(plugin, "broken-plugin")
    try:
        with pytest.raises(PluginError, match=r"broken-plugin.*not a backend"):
            available_backends()
    finally:
        plugin_manager().unregister(plugin)


def test_unknown_backend_lists_the_available_ones() -> None:
    with pytest.raises(
        UnknownBackendError, match=r"'nope'.*popularity, rp3beta, spark, sparse_ease, svd"
    ):
        get_backend("nope")


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "growthrec", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=300,
    )


def test_blocked_plugin_is_skipped() -> None:
    result = _run_cli("backends", "--json", env={BLOCK_ENV: "growthrec.backends.popularity"})
    assert result.returncode == 0, result.stderr
    names = {entry["name"] for entry in json.loads(result.stdout)}
    assert "svd" in names
    assert "popularity" not in names


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """The example plugin package pip-installed into a folder of its own (no deps, no network)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_installed_example_plugin_shows_up_and_trains(installed_example, tmp_path) -> None:
    env = {"PYTHONPATH": os.pathsep.join([str(installed_example), str(REPO)])}
    listed = _run_cli("backends", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    entry = {e["name"]: e for e in json.loads(listed.stdout)}["cooccurrence"]
    assert entry["plugin"] == "cooccurrence"
    assert entry["distribution"] == "growthrec-cooccurrence 0.1.0"
    assert entry["params"] == [
        {
            "name": "min_count",
            "type": "int",
            "default": 1,
            "help": "ignore pairs bought together fewer times",
        }
    ]
    data = tmp_path / "tx.csv"
    assert (
        _run_cli(
            "generate", "--users", "200", "--items", "30", "--output", str(data), env=env
        ).returncode
        == 0
    )
    trained = _run_cli(
        "train",
        "--data",
        str(data),
        "--model",
        "cooccurrence",
        "--param",
        "min_count=2",
        "--output",
        str(tmp_path),
        "--json",
        env=env,
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["model"]["backend"] == "cooccurrence"
    assert summary["model"]["params"] == {"min_count": 2}
    recs = _run_cli(
        "recommend",
        "--model",
        summary["model"]["path"],
        "--user-id",
        "1",
        "--n",
        "3",
        "--json",
        env=env,
    )
    assert recs.returncode == 0, recs.stderr
    assert len(json.loads(recs.stdout)["results"][0]["items"]) == 3


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    readme = (REPO / "README.md").read_text()
    hooks = [
        (name, fn)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "growthrec_spec")
    ]
    assert [name for name, _ in hooks] == ["register_backends"]
    for name, fn in hooks:
        signature = inspect.signature(fn)
        parameters = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
        assert f"def {name}({parameters}) -> {signature.return_annotation}" in readme
