"""The fast read of a model file (what a hot swap waits for) keeps every check of the slow one.

``load_model`` reads an uncompressed member straight into its array and sums its CRC-32 as it
goes; the sortedness check compares neighbouring indices without a wider copy. These tests
pin the cases that path could get wrong: a flipped byte, a cut file, Fortran-ordered arrays,
empty rows around a row boundary where the indices go down, and a compressed member (read
by numpy as before).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.core.interactions import IdMap, Interactions
from growthrec.core.model import Model
from growthrec.errors import ModelFileError
from growthrec.store import modelfile
from growthrec.store.modelfile import load_model, save_model


def _model(matrix: sp.csr_matrix, *, fortran: bool = False) -> Model:
    """An ``svd``-shaped model over ``matrix`` (factors made up: only loading is tested)."""
    n_users, n_items = matrix.shape
    rng = np.random.default_rng(0)
    items = rng.standard_normal((n_items, 3)).astype(np.float32)
    if fortran:
        items = np.asfortranarray(items)
    arrays = {"item_factors": items, "singular_values": np.ones(3, np.float32)}
    train = Interactions(
        sp.csr_matrix(matrix, dtype=np.float32),
        IdMap.from_ids(np.arange(n_users)),
        IdMap.from_ids(np.array([f"i{i}" for i in range(n_items)])),
    )
    return Model("svd", {"factors": 3}, arrays, train)


def _matrix(rows: list[list[int]], n_items: int = 6) -> sp.csr_matrix:
    indptr = np.cumsum([0, *(len(r) for r in rows)])
    indices = np.array([i for r in rows for i in r], dtype=np.int32)
    return sp.csr_matrix(
        (np.ones(indices.size, np.float32), indices, indptr), shape=(len(rows), n_items)
    )


def _rewrite(path: Path, target: Path, change) -> Path:
    """``path``'s archive with one member's raw bytes changed (stored, as save_model writes)."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            out.writestr(info.filename, change(info.filename, source.read(info)))
    return target


def _load_error(path: Path) -> str:
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    return str(caught.value)


def test_round_trip_with_empty_rows_and_a_fortran_array(tmp_path):
    # rows 0 and 3 empty; the index goes down at every row start (5 -> 0, 4 -> 1)
    matrix = _matrix([[], [2, 5], [0, 4], [], [1, 3], []])
    model = _model(matrix, fortran=True)
    path = save_model(model, tmp_path / "m.npz")
    loaded = load_model(path)
    assert np.array_equal(loaded.train.matrix.indptr, matrix.indptr)
    assert np.array_equal(loaded.train.matrix.indices, matrix.indices)
    assert loaded.train.matrix.indices.dtype == np.int32
    assert loaded.arrays["item_factors"].flags.f_contiguous
    assert np.array_equal(loaded.arrays["item_factors"], model.arrays["item_factors"])


@pytest.mark.parametrize(
    "rows",
    [
        [[], [3, 1]],  # unsorted right after an empty first row
        [[2], [], [4, 4]],  # a repeat after an empty row
        [[0, 5], [1, 2, 2]],  # a repeat at the end of the last row
    ],
)
def test_unsorted_or_repeated_indices_in_a_row_are_refused(tmp_path, rows):
    indptr = np.cumsum([0, *(len(r) for r in rows)])
    indices = np.array([i for r in rows for i in r], dtype=np.int32)
    matrix = sp.csr_matrix((len(rows), 6), dtype=np.float32)
    matrix.indptr, matrix.indices = indptr.astype(np.int32), indices
    matrix.data = np.ones(indices.size, np.float32)
    path = save_model(_model(matrix), tmp_path / "m.npz")
    assert _load_error(path) == (
        f"{path}: damaged model file (train_indices are not sorted and distinct within each row)"
    )


@pytest.mark.parametrize("crc32", ["isal", "zlib"])
def test_a_flipped_byte_is_the_crc_error_zipfile_gives(tmp_path, monkeypatch, crc32):
    """With ISA-L's CRC-32 (the serve extra) and with zlib's, which is used without it."""
    if crc32 == "zlib":
        monkeypatch.setattr(modelfile, "_crc32", zlib.crc32)
    else:
        assert modelfile._crc32 is pytest.importorskip("isal.isal_zlib").crc32
    path = save_model(_model(_matrix([[0, 1], [2], [3, 4, 5]])), tmp_path / "m.npz")
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("array__item_factors.npy")
    end = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size
    raw[end - 5] ^= 0x40  # one bit of the last factor; the archive's CRC-32 is unchanged
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    assert _load_error(bad) == (
        f"{bad}: not a readable growthrec model file (Bad CRC-32 for file "
        "'array__item_factors.npy')"
    )


def test_a_file_cut_inside_an_array_is_one_line(tmp_path):
    path = save_model(_model(_matrix([[0, 1], [2], [3, 4, 5]])), tmp_path / "m.npz")
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("train_indices.npy")
    # keep the central directory (so zipfile opens it) but zero the member's data length
    cut = tmp_path / "cut.npz"
    cut.write_bytes(raw[: info.header_offset + 40] + raw[-200:])
    message = _load_error(cut)
    assert message.startswith(f"{cut}: not a readable growthrec model file (")
    assert "\n" not in message


def test_compressed_members_still_load(tmp_path):
    model = _model(_matrix([[], [2, 5], [0, 4]]), fortran=True)
    path = save_model(model, tmp_path / "m.npz")
    packed = tmp_path / "packed.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(info.filename, source.read(info))
    loaded = load_model(packed)
    assert np.array_equal(loaded.arrays["item_factors"], model.arrays["item_factors"])
    assert np.array_equal(loaded.train.matrix.toarray(), model.train.matrix.toarray())


def test_member_name_in_the_local_header_must_match(tmp_path):
    path = save_model(_model(_matrix([[0, 1], [2]])), tmp_path / "m.npz")
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("train_data.npy")
    start = info.header_offset + 30
    assert raw[start : start + len(b"train_data")] == b"train_data"
    raw[start : start + 5] = b"xxxxx"  # the local header now names another member
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    message = _load_error(bad)
    assert message.startswith(f"{bad}: not a readable growthrec model file (")
    assert "train_data.npy" in message


def test_npy_helpers_agree(tmp_path):
    """The header this reader parses is numpy's own: a version-2 header loads too."""
    model = _model(_matrix([[0, 1], [2]]))
    path = save_model(model, tmp_path / "m.npz")
    v2 = tmp_path / "v2.npz"

    def as_version_2(name: str, raw: bytes) -> bytes:
        array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        out = io.BytesIO()
        np.lib.format.write_array(out, array, version=(2, 0))
        return out.getvalue()

    _rewrite(path, v2, as_version_2)
    loaded = load_model(v2)
    assert np.array_equal(loaded.arrays["item_factors"], model.arrays["item_factors"])


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "True False"), ({"NUMPY_MADVISE_HUGEPAGE": "1"}, "False True")],
)
def test_a_served_process_asks_for_small_pages_unless_the_user_chose(
    env: dict[str, str], expected: str
) -> None:
    """Huge pages made each swap's allocation wait for memory compaction; a user's explicit
    ``NUMPY_MADVISE_HUGEPAGE`` is left as they set it."""
    code = (
        "import numpy as np\n"
        "np._core.multiarray._set_madvise_hugepage(True)\n"
        "from growthrec.serving.holder import small_pages_for_models\n"
        "print(small_pages_for_models(), np._core.multiarray._get_madvise_hugepage())\n"
    )
    clean = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert " ".join(out) == expected
