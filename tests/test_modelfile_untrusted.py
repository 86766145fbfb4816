"""A model file is untrusted input: every damaged or crafted file is one clear error, exit 1.

Each case below damages a real model file in one way (metadata, training matrix, id maps,
learned arrays, sizes) and asserts that ``load_model`` refuses it with one line naming the file
and the problem, and that ``recommend`` and ``export`` exit 1 with that line, no traceback and
no output file.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error

from growthrec.core.interactions import build_interactions
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ModelFileError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.store.modelfile import MAX_UNPACK_RATIO, load_model, save_model

Arrays = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def shop():
    shop = generate_shop(60, 12, 0.2, seed=3)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    attributes = {"category": np.array([f"c{i % 3}" for i in range(data.n_items)])}
    return data, attributes


@pytest.fixture(scope="module")
def good(tmp_path_factory, shop) -> dict[str, Path]:
    """Real model files of three backends, to damage."""
    data, attributes = shop
    folder = tmp_path_factory.mktemp("good")
    fits = {
        "svd": {"factors": 4},
        "itemknn": {"neighbors": 5},
        "als": {"factors": 3, "weighting": "bm25", "iterations": 2},
    }
    return {
        name: save_model(
            fit_model(data, name, params, seed=0, item_attributes=attributes),
            folder / f"{name}.npz",
        )
        for name, params in fits.items()
    }


def _arrays(path: Path) -> Arrays:
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _meta(arrays: Arrays) -> dict:
    return json.loads(str(arrays["meta"]))


def _with_meta(arrays: Arrays, **changes: object) -> Arrays:
    meta = _meta(arrays)
    meta.update(changes)
    return {**arrays, "meta": np.array(json.dumps(meta))}


def _without(arrays: Arrays, name: str) -> Arrays:
    return {k: v for k, v in arrays.items() if k != name}


def _set(arrays: Arrays, name: str, value: np.ndarray) -> Arrays:
    return {**arrays, name: value}


def _poke(arrays: Arrays, name: str, index: int, value: object) -> Arrays:
    changed = arrays[name].copy()
    changed[index] = value
    return _set(arrays, name, changed)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _write_zip(path: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(f"{name}.npy", content)
    return path


def _write(path: Path, arrays: Arrays) -> Path:
    return _write_zip(path, {name: _npy(value) for name, value in arrays.items()})


# (backend of the base file, damage, words the message must hold)
Damage = Callable[[Arrays], Arrays]
CASES: dict[str, tuple[str, Damage, str]] = {
    # metadata
    "n_users as text": ("svd", lambda a: _with_meta(a, n_users="60"), "n_users is '60'"),
    "n_users negative": ("svd", lambda a: _with_meta(a, n_users=-1), "n_users is -1"),
    "n_items zero": ("svd", lambda a: _with_meta(a, n_items=0), "n_items is 0"),
    "n_items off by one": (
        "svd",
        lambda a: _with_meta(a, n_items=_meta(a)["n_items"] + 1),
        "item_ids has shape (12,), expected (13,)",
    ),
    "n_users a float": ("svd", lambda a: _with_meta(a, n_users=60.5), "n_users is 60.5"),
    "backend a list": ("svd", lambda a: _with_meta(a, backend=["svd"]), "backend is ['svd']"),
    "params a list": ("svd", lambda a: _with_meta(a, params=[4]), "params is [4]"),
    "params of the wrong type": (
        "svd",
        lambda a: _with_meta(a, params={"factors": "many"}),
        "params: svd: parameter factors='many' is not a valid int",
    ),
    "params out of range": (
        "svd",
        lambda a: _with_meta(a, params={"factors": 0}),
        "params: svd: parameter factors=0 must be at least 1",
    ),
    "params unknown name": (
        "svd",
        lambda a: _with_meta(a, params={"factors": 4, "depth": 3}),
        "unknown parameter 'depth'",
    ),
    "params disagree with the factors": (
        "svd",
        lambda a: _with_meta(a, params={"factors": 8}),
        "item_factors has shape (12, 4), expected (12, 8) (items x factors)",
    ),
    "weighting unknown": ("svd", lambda a: _with_meta(a, weighting="tfidf"), "weighting is"),
    "seed text": ("svd", lambda a: _with_meta(a, seed="abc"), "seed is 'abc'"),
    "seed boolean": ("svd", lambda a: _with_meta(a, seed=True), "seed is True"),
    "metadata not a scalar string": (
        "svd",
        lambda a: _set(a, "meta", np.array([1.0, 2.0])),
        "unreadable metadata",
    ),
    # training matrix
    "negative index": (
        "svd",
        lambda a: _poke(a, "train_indices", 3, -2),
        "train_indices[3] = -2 is outside the 12 items",
    ),
    "index past the catalogue": (
        "svd",
        lambda a: _poke(a, "train_indices", 0, 10**6),
        "train_indices[0] = 1000000 is outside the 12 items",
    ),
    "indptr not monotone": (
        "svd",
        lambda a: _poke(a, "train_indptr", 5, a["train_indptr"][7]),
        "train_indptr decreases",
    ),
    "indptr not ending at nnz": (
        "svd",
        lambda a: _poke(a, "train_indptr", -1, a["train_indptr"][-1] - 1),
        "train_indptr runs from 0 to",
    ),
    "indptr not starting at 0": (
        "svd",
        lambda a: _poke(a, "train_indptr", 0, 1),
        "train_indptr runs from 1 to",
    ),
    "indptr of the wrong length": (
        "svd",
        lambda a: _set(a, "train_indptr", a["train_indptr"][:-1]),
        "train_indptr has shape (60,), expected (61,)",
    ),
    "indices unsorted in a row": (
        "svd",
        lambda a: _set(
            a,
            "train_indices",
            np.concatenate([a["train_indices"][1::-1], a["train_indices"][2:]]),
        ),
        "not sorted and distinct",
    ),
    "indices as floats": (
        "svd",
        lambda a: _set(a, "train_indices", a["train_indices"].astype(np.float64)),
        "train_indices has dtype float64, expected integers",
    ),
    "data of another length": (
        "svd",
        lambda a: _set(a, "train_data", a["train_data"][:-1]),
        "train_data has shape",
    ),
    "data NaN": ("svd", lambda a: _poke(a, "train_data", 2, np.nan), "train_data[2] = nan"),
    "data as integers": (
        "svd",
        lambda a: _set(a, "train_data", a["train_data"].astype(np.int64)),
        "train_data has dtype int64, expected floats",
    ),
    "timestamps not aligned": (
        "svd",
        lambda a: _set(a, "train_timestamps", a["train_timestamps"][:5]),
        "train_timestamps has shape (5,)",
    ),
    "timestamps infinite": (
        "svd",
        lambda a: _poke(a, "train_timestamps", 0, np.inf),
        "train_timestamps holds a value that is not a finite number",
    ),
    "training indices missing": (
        "svd",
        lambda a: _without(a, "train_indices"),
        "train_indices is missing",
    ),
    "more pairs than cells": (
        "svd",
        lambda a: _set(a, "train_indices", np.zeros(60 * 12 + 1, np.int32)),
        "expected at most 60 x 12 entries",
    ),
    # id maps and catalogue columns
    "user ids duplicated": (
        "svd",
        lambda a: _poke(a, "user_ids", 1, a["user_ids"][0]),
        "user_ids: id map: ids must be unique",
    ),
    "item ids too few": (
        "svd",
        lambda a: _set(a, "item_ids", a["item_ids"][:-1]),
        "item_ids has shape (11,), expected (12,)",
    ),
    "item ids empty text": (
        "svd",
        lambda a: _poke(a, "item_ids", 0, ""),
        "item_ids: ids: empty id at index 0",
    ),
    "item ids as floats": (
        "svd",
        lambda a: _set(a, "item_ids", np.arange(12.0)),
        "item_ids has dtype float64",
    ),
    "ids absurdly long": (
        "svd",
        lambda a: _set(a, "user_ids", a["user_ids"].astype(str).astype("U20000")),
        "longer than 10000 characters",
    ),
    "catalogue column too short": (
        "svd",
        lambda a: _set(a, "item_attribute__category", a["item_attribute__category"][:3]),
        "item_attribute__category has shape (3,), expected (12,)",
    ),
    # learned arrays
    "factors missing": (
        "svd",
        lambda a: _without(a, "array__item_factors"),
        "array item_factors is missing",
    ),
    "factors transposed": (
        "svd",
        lambda a: _set(a, "array__item_factors", a["array__item_factors"].T.copy()),
        "item_factors has shape (4, 12), expected (12, 4)",
    ),
    "factors NaN": (
        "svd",
        lambda a: _poke(a, "array__item_factors", 2, np.nan),
        "array item_factors holds nan",
    ),
    "factors infinite": (
        "svd",
        lambda a: _poke(a, "array__singular_values", 0, -np.inf),
        "array singular_values holds -inf",
    ),
    "factors as integers": (
        "svd",
        lambda a: _set(a, "array__item_factors", a["array__item_factors"].astype(np.int32)),
        "item_factors has dtype int32, expected float",
    ),
    "an array the backend does not make": (
        "svd",
        lambda a: _set(a, "array__user_factors", np.zeros((60, 4), np.float32)),
        "array user_factors is not one the svd backend makes",
    ),
    "object array": (
        "svd",
        lambda a: _set(a, "array__item_factors", np.array([None, 1], dtype=object)),
        "dtype object",
    ),
    "structured array": (
        "svd",
        lambda a: _set(a, "array__item_factors", np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])),
        "is not plain numbers or text",
    ),
    "user factors of another length": (
        "als",
        lambda a: _set(a, "array__user_factors", a["array__user_factors"][:-1]),
        "user_factors has shape (59, 3), expected (60, 3) (users x factors)",
    ),
    "bm25 statistics missing": (
        "als",
        lambda a: _without(a, "array__bm25_idf"),
        "array bm25_idf is missing (als needs it)",
    ),
    "neighbour index past the catalogue": (
        "itemknn",
        lambda a: _poke(a, "array__similarity_indices", 0, 12),
        "similarity_indices outside 0..11",
    ),
    "neighbour indptr not monotone": (
        "itemknn",
        lambda a: _poke(a, "array__similarity_indptr", 3, 10**4),
        "similarity_indptr",
    ),
    "more neighbours than the parameter allows": (
        "itemknn",
        lambda a: _set(a, "array__similarity_data", np.ones(12 * 5 + 1, np.float32)),
        "array similarity_data has 61 elements, more than its at most 60",
    ),
}


def _load_error(path: Path) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert info.value.__cause__ is None
    return message


def _assert_cli_refuses(capsys, path: Path, message: str, tmp_path: Path) -> None:
    """``recommend`` and ``export`` exit 1 with the load error as their one line, write nothing."""
    user = str(load_model_user(path))
    line = assert_error(capsys, 1, "recommend", "--model", path, "--user-id", user)
    assert line == f"error: {message}"
    output = tmp_path / "out.csv"
    line = assert_error(capsys, 1, "export", "--model", path, "--output", output)
    assert line == f"error: {message}"
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def load_model_user(path: Path) -> object:
    """A user id from the file, read raw (the damaged file cannot be loaded to ask), else 1."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            ids = npz["user_ids"].ravel()
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return 1
    return ids[0].item() if ids.size else 1


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_model_file_is_one_clear_error(case, good, tmp_path, capsys, plain_console):
    backend, damage, expected = CASES[case]
    path = _write(tmp_path / "bad.npz", damage(_arrays(good[backend])))
    message = _load_error(path)
    assert expected in message
    _assert_cli_refuses(capsys, path, message, tmp_path)


def test_undamaged_rewrite_loads(good, tmp_path):
    """Control: the same rewriting without damage gives a model that loads and recommends."""
    for backend, source in good.items():
        path = _write(tmp_path / f"{backend}.npz", _arrays(source))
        model = load_model(path)
        items, _ = recommend(model, np.arange(model.train.n_users), 3)
        assert (items >= 0).all()
        assert model.backend == backend


# Archives themselves


def test_truncated_archive(good, tmp_path, capsys, plain_console):
    path = tmp_path / "bad.npz"
    path.write_bytes(good["svd"].read_bytes()[:-300])
    message = _load_error(path)
    assert "not a readable growthrec model file" in message
    _assert_cli_refuses(capsys, path, message, tmp_path)


def test_metadata_missing(good, tmp_path, capsys, plain_console):
    path = _write(tmp_path / "bad.npz", _without(_arrays(good["svd"]), "meta"))
    message = _load_error(path)
    assert message.endswith("not a growthrec model file")
    _assert_cli_refuses(capsys, path, message, tmp_path)


def test_metadata_not_json(good, tmp_path, capsys, plain_console):
    path = _write(tmp_path / "bad.npz", _set(_arrays(good["svd"]), "meta", np.array("{oops")))
    message = _load_error(path)
    assert "unreadable metadata" in message
    _assert_cli_refuses(capsys, path, message, tmp_path)


def test_header_declaring_more_than_the_member_holds(good, tmp_path, capsys, plain_console):
    """A header claiming 10⁹ floats over 48 bytes of data is refused before any allocation."""
    members = {name: _npy(value) for name, value in _arrays(good["svd"]).items()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**9,)}
    )
    members["array__singular_values"] = header.getvalue() + bytes(48)
    path = _write_zip(tmp_path / "bad.npz", members)
    message = _load_error(path)
    assert "array__singular_values: the archive says it unpacks to" in message
    assert "its header declares 4000000" in message
    _assert_cli_refuses(capsys, path, message, tmp_path)


def _bomb(good: Path, path: Path) -> Path:
    """A real model whose metadata claims 25 million customers, with 200 MB of compressed
    zero ids: a file of a few hundred KB that would unpack to 200 MB (and 8 GB at 1e9)."""
    arrays = _arrays(good)
    n_users = 25_000_000
    arrays = _with_meta(arrays, n_users=n_users)
    arrays["user_ids"] = np.zeros(n_users, np.int64)
    arrays["train_indptr"] = np.zeros(n_users + 1, np.int64)
    return _write_zip(path, {name: _npy(v) for name, v in arrays.items()}, compress=True)


def test_decompression_bomb_is_refused_before_reading(good, tmp_path, capsys, plain_console):
    path = _bomb(good["svd"], tmp_path / "bad.npz")
    size = path.stat().st_size
    assert size < 2_000_000
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    assert unpacked > 400_000_000 > MAX_UNPACK_RATIO * size  # the control: it is a bomb
    message = _load_error(path)
    assert f"unpack to {unpacked} bytes" in message
    assert "decompression bomb" in message
    _assert_cli_refuses(capsys, path, message, tmp_path)


def test_decompression_bomb_does_not_allocate(good, tmp_path):
    """Measured in a fresh process: loading the bomb peaks far below what it would unpack to."""
    path = _bomb(good["svd"], tmp_path / "bomb.npz")
    script = (
        "import resource, sys\n"
        "from growthrec.store.modelfile import load_model\n"
        "from growthrec.errors import ModelFileError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    load_model({str(path)!r})\n"
        "except ModelFileError:\n"
        "    pass\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    grown_mib = int(result.stdout.strip())
    print(f"peak memory growth loading the bomb: {grown_mib} MiB")
    assert grown_mib < 20


def test_out_of_range_indices_cannot_crash_the_process(good, tmp_path):
    """Indices past the catalogue used to reach scipy (a segfault); now exit 1, one line."""
    arrays = _arrays(good["svd"])
    indices = arrays["train_indices"].copy()
    indices[:] = 2**30
    path = _write(tmp_path / "bad.npz", _set(arrays, "train_indices", indices))
    output = tmp_path / "out.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "growthrec",
            "export",
            "--model",
            str(path),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1
    assert "train_indices[0] = 1073741824 is outside the 12 items" in result.stderr
    assert result.stdout == ""
    assert not output.exists()


def test_members_outside_the_format_are_never_read(good, tmp_path):
    """An extra member (a note, a future field) is ignored, even if it could not be parsed."""
    members = {name: _npy(value) for name, value in _arrays(good["svd"]).items()}
    members["notes"] = b"\x93NUMPY garbage that is not an npy header"
    path = _write_zip(tmp_path / "extra.npz", members)
    assert load_model(path).backend == "svd"
