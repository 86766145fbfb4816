"""The model file: round trip, no pickle, one clear error per way a file can be wrong, atomicity."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from growthrec.core.interactions import build_interactions
from growthrec.data.synthetic import generate_shop
from growthrec.errors import GrowthrecError, ModelFileError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.store.modelfile import FORMAT_NAME, FORMAT_VERSION, load_model, save_model


@pytest.fixture(scope="module")
def shop_data():
    """A small synthetic shop as interactions (with times) and its category per item."""
    shop = generate_shop(200, 40, 0.1, seed=0)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    category = dict(zip(shop.catalog_item_id.tolist(), shop.catalog_category.tolist(), strict=True))
    attributes = {"category": np.array([category[i] for i in data.items.ids.tolist()])}
    return data, attributes


@pytest.fixture(scope="module", params=["svd", "popularity"])
def model(request, shop_data):
    data, attributes = shop_data
    params = {"factors": 8, "n_iter": 3} if request.param == "svd" else {}
    return fit_model(
        data, request.param, params, weighting="log1p", seed=7, item_attributes=attributes
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, shop_data) -> Path:
    """A real svd model file, to damage in various ways."""
    data, attributes = shop_data
    fitted = fit_model(data, "svd", {"factors": 8}, seed=0, item_attributes=attributes)
    return save_model(fitted, tmp_path_factory.mktemp("model") / "svd.npz")


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _rewrite_meta(source: Path, target: Path, **changes: object) -> Path:
    """A copy of a model file with its metadata JSON changed (``None`` removes a key)."""
    with np.load(source, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(str(arrays["meta"]))
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(target, **arrays)
    return target


def _load_error(path: Path) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert info.value.__cause__ is None
    assert info.value.exit_code == 1
    return message


# Round trip


def test_round_trip_keeps_everything(tmp_path, model):
    path = save_model(model, tmp_path / "model.npz")
    assert path == tmp_path / "model.npz"
    loaded = load_model(path)

    assert loaded.backend == model.backend
    assert dict(loaded.params) == dict(model.params)
    assert loaded.weighting == "log1p"
    assert loaded.seed == 7
    assert loaded == model  # backend, params, weighting, seed and both id maps
    np.testing.assert_array_equal(loaded.train.users.ids, model.train.users.ids)
    np.testing.assert_array_equal(loaded.train.items.ids, model.train.items.ids)
    assert loaded.train.users.ids.dtype.kind == "i"
    assert loaded.train.items.ids.dtype.kind == "U"
    assert loaded.train.matrix.shape == model.train.matrix.shape
    assert (loaded.train.matrix != model.train.matrix).nnz == 0
    assert loaded.train.matrix.dtype == np.float32
    np.testing.assert_array_equal(loaded.train.timestamps, model.train.timestamps)
    assert set(loaded.arrays) == set(model.arrays)
    for name, values in model.arrays.items():
        assert loaded.arrays[name].dtype == values.dtype
        np.testing.assert_array_equal(loaded.arrays[name], values)
    assert set(loaded.item_attributes) == {"category"}
    np.testing.assert_array_equal(
        loaded.item_attributes["category"], model.item_attributes["category"]
    )
    # Ids still map both ways after loading.
    assert loaded.train.users.index([model.train.users.ids[5]]).tolist() == [5]


def test_round_trip_gives_identical_recommendations(tmp_path, model):
    users = np.arange(model.train.n_users)
    before_items, before_scores = recommend(model, users, 10)
    loaded = load_model(save_model(model, tmp_path / "model.npz"))
    after_items, after_scores = recommend(loaded, users, 10)
    np.testing.assert_array_equal(after_items, before_items)
    np.testing.assert_array_equal(after_scores, before_scores)
    assert (before_items >= 0).all()


def test_model_without_timestamps_or_attributes_round_trips(tmp_path):
    data = build_interactions([1, 1, 2, 3, 3], ["a", "b", "b", "a", "c"])
    fitted = fit_model(data, "popularity")
    loaded = load_model(save_model(fitted, tmp_path / "m.npz"))
    assert loaded.train.timestamps is None
    assert dict(loaded.item_attributes) == {}
    assert loaded.seed is None
    np.testing.assert_array_equal(loaded.arrays["item_popularity"], [2, 2, 1])


def test_metadata_is_plain_json_with_format_and_version(model_file):
    with np.load(model_file, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        assert npz["meta"].dtype.kind == "U"
        assert all(npz[name].dtype.kind != "O" for name in npz.files)
    assert meta["format"] == FORMAT_NAME == "growthrec-model"
    # without features a model is written as format 1, which an older growthrec still reads
    assert meta["format_version"] == 1
    assert FORMAT_VERSION == 2
    assert meta["backend"] == "svd"
    assert meta["params"]["factors"] == 8


# No pickle


class _Payload:
    """Unpickling this creates a directory: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_object_array_metadata_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.npz"
    np.savez(evil, meta=np.array([_Payload(marker)], dtype=object))  # pickles the object

    message = _load_error(evil)
    assert "not a readable growthrec model file" in message
    assert not marker.exists()

    # Control: the payload is live; an unsafe loader would have run it.
    with np.load(evil, allow_pickle=True) as npz:
        npz["meta"]
    assert marker.is_dir()


def test_object_array_inside_a_valid_model_is_refused_without_running_code(tmp_path, model_file):
    marker = tmp_path / "code-ran"
    with np.load(model_file, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["array__evil"] = np.array([_Payload(marker)], dtype=object)
    evil = tmp_path / "evil-model.npz"
    np.savez(evil, **arrays)

    _load_error(evil)
    assert not marker.exists()


# One clear error per way a file can be wrong


def test_missing_file(tmp_path):
    message = _load_error(tmp_path / "nope.npz")
    assert "no such model file" in message
    assert "growthrec train" in message


def test_directory_is_not_a_model_file(tmp_path):
    assert "no such model file" in _load_error(tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_model_file(tmp_path, model_file, keep):
    content = model_file.read_bytes()
    broken = tmp_path / "truncated.npz"
    broken.write_bytes(content[: int(len(content) * keep)])
    assert "not a readable growthrec model file" in _load_error(broken)


def test_corrupted_array_data(tmp_path, model_file):
    # Same size, zip directory intact, but the bytes of the first member are scrambled.
    content = bytearray(model_file.read_bytes())
    content[100:400] = bytes(range(256)) + bytes(44)
    broken = tmp_path / "scrambled.npz"
    broken.write_bytes(bytes(content))
    assert "growthrec model file" in _load_error(broken)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    path = tmp_path / "random.npz"
    path.write_bytes(np.random.default_rng(seed).bytes(4096))
    assert "not a readable growthrec model file" in _load_error(path)


def test_random_bytes_with_zip_magic(tmp_path):
    path = tmp_path / "zipish.npz"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(0).bytes(2000))
    assert "not a readable growthrec model file" in _load_error(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    assert "not a readable growthrec model file" in _load_error(path)


@pytest.mark.parametrize("name", ["array.npy", "array.npz"])
def test_npy_file(tmp_path, name):
    path = tmp_path / name
    with path.open("wb") as handle:
        np.save(handle, np.arange(10.0))
    assert "not a readable growthrec model file (not an .npz archive)" in _load_error(path)


def test_plain_text_file(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("user_id,item_id\n1,A\n")
    assert "not a readable growthrec model file" in _load_error(path)


def test_plain_text_file_message_does_not_suggest_unpickling(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("user_id,item_id\n1,A\n")
    message = _load_error(path)
    assert "pickle" not in message


def test_npz_without_metadata(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.ones(3), bias=np.zeros(2))
    assert "not a growthrec model file" in _load_error(path)


def test_npz_of_another_format(tmp_path, model_file):
    path = _rewrite_meta(model_file, tmp_path / "other.npz", format="someone-elses-model")
    assert "not a growthrec model file" in _load_error(path)


def test_npz_whose_metadata_is_not_json(tmp_path):
    path = tmp_path / "badmeta.npz"
    np.savez(path, meta=np.array("{not json"))
    assert "unreadable metadata" in _load_error(path)


def test_newer_format_version_says_to_upgrade(tmp_path, model_file):
    path = _rewrite_meta(model_file, tmp_path / "future.npz", format_version=999)
    message = _load_error(path)
    assert "999" in message
    assert "upgrade growthrec" in message


def test_missing_format_version(tmp_path, model_file):
    path = _rewrite_meta(model_file, tmp_path / "noversion.npz", format_version=None)
    assert "no format version" in _load_error(path)


def test_metadata_missing_a_field(tmp_path, model_file):
    path = _rewrite_meta(model_file, tmp_path / "noweighting.npz", weighting=None)
    assert "weighting" in _load_error(path)


def test_unknown_backend_is_named(tmp_path, model_file):
    path = _rewrite_meta(model_file, tmp_path / "plugin.npz", backend="deep-magic")
    message = _load_error(path)
    assert "'deep-magic'" in message
    assert "not installed" in message


def test_missing_training_array(tmp_path, model_file):
    with np.load(model_file, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "train_indices"}
    path = tmp_path / "partial.npz"
    np.savez(path, **arrays)
    assert "damaged model file" in _load_error(path)


def test_model_file_error_is_a_growthrec_error():
    assert issubclass(ModelFileError, GrowthrecError)


# Atomic write


def _failing_savez(written: list[int]):
    def savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a model file")
        written.append(1)
        raise OSError("No space left on device")

    return savez


def test_failed_write_leaves_no_file_and_no_temp(tmp_path, monkeypatch, model):
    written: list[int] = []
    monkeypatch.setattr(np, "savez", _failing_savez(written))
    target = tmp_path / "models" / "model.npz"
    with pytest.raises(OSError, match="No space left"):
        save_model(model, target)
    assert written == [1]  # the fake really wrote part of the file first
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch, model):
    target = save_model(model, tmp_path / "model.npz")
    before = target.read_bytes()
    monkeypatch.setattr(np, "savez", _failing_savez([]))
    with pytest.raises(OSError):
        save_model(model, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    monkeypatch.undo()
    assert load_model(target).backend == model.backend


def test_successful_write_leaves_only_the_target(tmp_path, model):
    save_model(model, tmp_path / "a.npz")
    save_model(model, tmp_path / "a.npz")  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


# Size


def test_default_shop_svd_model_is_small(tmp_path):
    """The seed target: 1,000 users x 100 items, svd with 50 factors, well under 5 MB."""
    shop = generate_shop()
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    assert (data.n_users, data.n_items) == (1000, 100)
    path = save_model(fit_model(data, "svd", {"factors": 50}, seed=0), tmp_path / "svd.npz")
    size = path.stat().st_size
    print(f"default shop svd model file: {size} bytes")
    assert size < 1_000_000
    assert load_model(path).arrays["item_factors"].shape == (100, 50)
