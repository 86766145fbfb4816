"""The model store's pieces: manifest, versions, aliases, lock; the paired bootstrap; warm start."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.core.interactions import interactions_from_matrix
from growthrec.core.metrics import ndcg_at_k
from growthrec.evaluation.bootstrap import ndcg_per_user, paired_bootstrap
from growthrec.evaluation.retraining import item_shift, warm_start_factors
from growthrec.pipeline.fitting import fit_model
from growthrec.store.versions import (
    EXIT_STORE_BUSY,
    StoreBusyError,
    StoreError,
    champion_path,
    lock_store,
    manifest_stamp,
    new_manifest,
    next_version_id,
    orphan_versions,
    promote_version,
    read_manifest,
    rollback_champion,
    version_entry,
    write_manifest,
    write_version,
)


@pytest.fixture
def model():
    matrix = sp.csr_matrix(np.eye(6, 4, dtype=np.float32) + np.eye(6, 4, k=-2, dtype=np.float32))
    return fit_model(interactions_from_matrix(matrix), "popularity")


def _store_with(tmp_path, model, n: int):
    """A store holding versions v0001..v000n, the first of them champion."""
    manifest = new_manifest()
    for number in range(1, n + 1):
        version = f"v{number:04d}"
        write_version(tmp_path, version, model)
        manifest["versions"].append(
            version_entry(version, model, recipe={}, data={"fingerprint": "0" * 16})
        )
    promote_version(manifest, "v0001", "first")
    write_manifest(tmp_path, manifest)
    return manifest


def test_manifest_round_trip_and_champion_path(tmp_path, model):
    _store_with(tmp_path, model, 2)
    manifest = read_manifest(tmp_path)
    assert manifest["aliases"] == {"champion": "v0001", "challenger": None}
    assert champion_path(tmp_path) == tmp_path / "versions" / "v0001.npz"
    assert [e["action"] for e in manifest["versions"][0]["history"]] == ["promoted"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_store_without_champion_says_so(tmp_path):
    write_manifest(tmp_path, new_manifest())
    with pytest.raises(StoreError, match="has no champion yet"):
        champion_path(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "other"}', "format is not 'growthrec-store'"),
        ("[1, 2]", "format is not 'growthrec-store'"),
        ("not json", "unreadable store manifest"),
    ],
)
def test_damaged_manifests_are_one_error(tmp_path, content, message):
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(StoreError, match=message):
        read_manifest(tmp_path)


def test_an_alias_naming_no_version_is_damage(tmp_path):
    manifest = new_manifest()
    manifest["aliases"]["champion"] = "v0007"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="alias champion names 'v0007', which is not a version"):
        read_manifest(tmp_path)


def test_version_ids_skip_orphan_files(tmp_path, model):
    manifest = _store_with(tmp_path, model, 1)
    write_version(tmp_path, "v0002", model)  # written, never recorded
    assert orphan_versions(tmp_path, manifest) == ["v0002"]
    assert next_version_id(tmp_path, manifest) == "v0003"
    with pytest.raises(StoreError, match="versions are never rewritten"):
        write_version(tmp_path, "v0002", model)


def test_promote_and_rollback_keep_a_stack_of_champions(tmp_path, model):
    manifest = _store_with(tmp_path, model, 3)
    promote_version(manifest, "v0002", "better")
    promote_version(manifest, "v0003", "better still")
    assert manifest["champions"] == ["v0001", "v0002", "v0003"]
    assert rollback_champion(manifest, "bad")["id"] == "v0002"
    assert rollback_champion(manifest, "bad too")["id"] == "v0001"
    with pytest.raises(StoreError, match="v0001 is the store's first champion"):
        rollback_champion(manifest, "again")
    with pytest.raises(StoreError, match="no version 'v0009'"):
        promote_version(manifest, "v0009", "typo")
    actions = [e["action"] for e in manifest["versions"][2]["history"]]
    assert actions == ["promoted", "rolled back"]


def test_the_stamp_changes_with_every_manifest_write(tmp_path, model):
    manifest = _store_with(tmp_path, model, 2)
    stamp = manifest_stamp(tmp_path)
    assert manifest_stamp(tmp_path) == stamp
    promote_version(manifest, "v0002", "better")
    write_manifest(tmp_path, manifest)
    assert manifest_stamp(tmp_path) != stamp  # a new inode: os.replace
    assert champion_path(tmp_path).name == "v0002.npz"


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path):
    with lock_store(tmp_path):
        with (
            pytest.raises(StoreBusyError, match=r"holds the store's lock \(pid \d+ since ") as info,
            lock_store(tmp_path, wait=0.3),
        ):
            pass
        assert info.value.exit_code == EXIT_STORE_BUSY == 75
    with lock_store(tmp_path):  # released on exit
        pass


# the paired bootstrap


def test_ndcg_per_user_averages_to_ndcg_at_k():
    rng = np.random.default_rng(3)
    truth = sp.random(50, 30, density=0.1, format="csr", random_state=4)
    truth.data[:] = 1
    lists = np.array([rng.permutation(30)[:10] for _ in range(50)])
    per_user = ndcg_per_user(lists, truth, 10)
    has_truth = np.diff(truth.indptr) > 0
    assert per_user[has_truth].mean() == pytest.approx(ndcg_at_k(lists, truth, 10))
    assert np.all(per_user[~has_truth] == 0)


def test_ndcg_per_user_by_hand():
    truth = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=np.float32))
    lists = np.array([[3, 1, 0], [0, 2, -1]])
    expected_first = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert ndcg_per_user(lists, truth, 3) == pytest.approx([expected_first, 0.0])


def test_bootstrap_of_a_constant_difference_is_that_difference():
    result = paired_bootstrap(np.full(40, -0.25), n_resamples=100)
    assert (result.mean, result.lower, result.n_pairs) == (-0.25, -0.25, 40)


def test_bootstrap_lower_bound_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    values = rng.normal(0.01, 0.1, size=4000)
    result = paired_bootstrap(values, n_resamples=4000, confidence=0.95, seed=1)
    normal = values.mean() - 1.645 * values.std(ddof=1) / np.sqrt(values.size)
    assert result.lower == pytest.approx(normal, abs=0.0008)
    assert result.lower < result.mean


@pytest.mark.parametrize("bad", [{"confidence": 1.0}, {"n_resamples": 0}])
def test_bootstrap_arguments_are_checked(bad):
    with pytest.raises(ValueError, match=r"confidence|n_resamples"):
        paired_bootstrap(np.ones(3), **bad)


# guardrail measures and warm start


def test_item_shift_is_total_variation():
    ids = np.array(["a", "b", "c"])
    assert item_shift(ids, np.array([1, 1, 2]), ids, np.array([1, 1, 2])) == 0.0
    assert item_shift(ids[:1], np.array([5]), ids[1:], np.array([1, 1])) == 1.0
    assert item_shift(ids, np.array([2, 2, 0]), ids, np.array([0, 2, 2])) == pytest.approx(0.5)


def test_warm_start_matches_ids_of_old_and_new_data():
    pytest.importorskip("implicit")
    old = interactions_from_matrix(
        sp.csr_matrix(np.ones((3, 2), dtype=np.float32)), user_ids=[10, 20, 30], item_ids=["x", "y"]
    )
    champion = fit_model(old, "als", {"factors": 2, "iterations": 2}, seed=0)
    new = interactions_from_matrix(
        sp.csr_matrix(np.ones((3, 3), dtype=np.float32)),
        user_ids=[20, 40, 10],
        item_ids=["y", "z", "x"],
    )
    start = warm_start_factors(champion, new)
    users, items = champion.arrays["user_factors"], champion.arrays["item_factors"]
    np.testing.assert_array_equal(start["user_factors"][[0, 2]], users[[1, 0]])
    np.testing.assert_array_equal(start["item_factors"][[0, 2]], items[[1, 0]])
    assert np.all((start["user_factors"][1] >= 0) & (start["user_factors"][1] < 0.01))
    assert np.all((start["item_factors"][1] >= 0) & (start["item_factors"][1] < 0.01))
