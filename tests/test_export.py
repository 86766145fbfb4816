"""``growthrec export`` run in-process: file content, formats, subsets, atomicity, errors."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from cli_helpers import assert_error, run, run_json

import growthrec.cli.export
from growthrec.core.interactions import build_interactions
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend, recommend_in_batches
from growthrec.store.modelfile import load_model, save_model

COLUMNS = ["user_id", "rank", "item_id", "score"]


pytestmark = pytest.mark.usefixtures("plain_console")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """An svd model of a small shop: 200 customers (integer ids), 40 products (text ids)."""
    shop = generate_shop(200, 40, 0.1, seed=1)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    model = fit_model(data, "svd", {"factors": 8}, seed=0)
    return save_model(model, tmp_path_factory.mktemp("models") / "svd.npz")


def read_back(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    options = pa_csv.ConvertOptions(column_types={"item_id": pa.string()})
    return pa_csv.read_csv(path, convert_options=options)


def expected_rows(model_path: Path, user_ids: list[object] | None, n: int) -> list[tuple]:
    """What ``recommend`` gives, in the file's long form: (user, rank, item, score) rows."""
    model = load_model(model_path)
    if user_ids is None:
        users = np.arange(model.train.n_users)
    else:
        users = model.train.users.index(user_ids)
    items, scores = recommend(model, users, n)
    rows = []
    for user, row_items, row_scores in zip(users, items, scores, strict=True):
        user_id = model.train.users.external([user])[0].item()
        kept = row_items[row_items >= 0]
        item_ids = model.train.items.external(kept).tolist()
        for rank, (item_id, score) in enumerate(zip(item_ids, row_scores, strict=False), 1):
            rows.append((user_id, rank, item_id, float(score)))
    return rows


def assert_rows(table: pa.Table, expected: list[tuple]) -> None:
    assert table.column_names == COLUMNS
    got = list(zip(*(table.column(c).to_pylist() for c in COLUMNS), strict=True))
    assert [row[:3] for row in got] == [row[:3] for row in expected]
    np.testing.assert_allclose([r[3] for r in got], [r[3] for r in expected], rtol=1e-6)


@pytest.mark.parametrize("name", ["recs.parquet", "recs.csv", "recs.csv.gz"])
def test_every_users_top_n_as_recommend_gives_it(model_file, tmp_path, capsys, name):
    target = tmp_path / "out" / name
    code, out, err = run(capsys, "export", "--model", model_file, "--n", 5, "--output", target)
    assert code == 0, err
    assert err == ""
    assert "Recommendations exported" in out
    table = read_back(target)
    assert table.num_rows == 200 * 5
    assert_rows(table, expected_rows(model_file, None, 5))
    assert sorted(p.name for p in target.parent.iterdir()) == [name]  # no temporary file left


def test_small_batches_give_the_same_file(model_file, tmp_path, capsys, monkeypatch):
    real = recommend_in_batches
    monkeypatch.setattr(
        growthrec.cli.export,
        "recommend_in_batches",
        lambda *args, **kwargs: real(*args, **{**kwargs, "batch_users": 64}),
    )
    target = tmp_path / "recs.parquet"
    summary = run_json(capsys, "export", "--model", model_file, "--n", 7, "--output", target)
    assert (summary["n_users"], summary["output"]["rows"]) == (200, 1400)
    assert_rows(read_back(target), expected_rows(model_file, None, 7))


def test_parquet_column_types(model_file, tmp_path, capsys):
    target = tmp_path / "recs.parquet"
    run_json(capsys, "export", "--model", model_file, "--output", target)
    schema = pq.read_schema(target)
    assert schema.names == COLUMNS
    assert [str(schema.field(c).type) for c in COLUMNS] == ["int64", "int32", "string", "float"]


def test_only_the_users_asked_for_in_their_order(model_file, tmp_path, capsys):
    listed = tmp_path / "users.txt"
    listed.write_text("17\n\n3\n")
    target = tmp_path / "recs.csv"
    summary = run_json(
        capsys,
        "export",
        "--model",
        model_file,
        "--user-id",
        "120",
        "5",
        "--users-file",
        listed,
        "--n",
        3,
        "--output",
        target,
    )
    assert (summary["n_users"], summary["output"]["rows"]) == (4, 12)
    table = read_back(target)
    assert table.column("user_id").to_pylist() == [120] * 3 + [5] * 3 + [17] * 3 + [3] * 3
    assert_rows(table, expected_rows(model_file, [120, 5, 17, 3], 3))


def test_short_lists_leave_out_the_padding(model_file, tmp_path, capsys):
    # 40 products: asking for 100 gives every customer what they have not bought, no -1 rows.
    target = tmp_path / "recs.parquet"
    summary = run_json(capsys, "export", "--model", model_file, "--n", 100, "--output", target)
    model = load_model(model_file)
    unbought = 40 - np.diff(model.train.matrix.indptr)
    assert summary["output"]["rows"] == int(unbought.sum())
    table = read_back(target)
    assert_rows(table, expected_rows(model_file, None, 100))
    ranks = np.asarray(table.column("rank"))
    users = np.asarray(table.column("user_id"))
    starts = np.r_[True, users[1:] != users[:-1]]
    assert (ranks[starts] == 1).all() and (np.diff(ranks)[~starts[1:]] == 1).all()


def test_json_summary(model_file, tmp_path, capsys):
    target = tmp_path / "recs.parquet"
    summary = run_json(
        capsys, "export", "--model", model_file, "--n", 4, "--output", target, "--threads", 2
    )
    assert set(summary) == {
        "output",
        "model",
        "n",
        "n_users",
        "n_fallback_users",
        "n_short_lists",
        "list_spec",
        "seconds",
    }
    assert summary["n_short_lists"] == 0
    assert summary["list_spec"]["rerank"]["kind"] == "none"
    assert summary["list_spec"]["exclude_purchased"] is True
    assert summary["output"]["path"] == str(target)
    assert summary["output"]["format"] == "parquet"
    assert summary["output"]["bytes"] == target.stat().st_size
    assert summary["model"]["path"] == str(model_file)
    assert (summary["n"], summary["n_users"], summary["output"]["rows"]) == (4, 200, 800)
    assert summary["seconds"] >= 0


def test_include_purchased(model_file, tmp_path, capsys):
    target = tmp_path / "recs.parquet"
    run_json(
        capsys,
        "export",
        "--model",
        model_file,
        "--n",
        40,
        "--include-purchased",
        "--output",
        target,
    )
    assert read_back(target).num_rows == 200 * 40


def test_a_failure_mid_write_leaves_no_file(model_file, tmp_path, capsys, monkeypatch):
    """The disk fills after the first batch: no file, no temporary file, the old file intact."""
    real = recommend_in_batches

    def failing(*args, **kwargs):
        for n, batch in enumerate(real(*args, **{**kwargs, "batch_users": 50})):
            if n == 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            yield batch

    monkeypatch.setattr(growthrec.cli.export, "recommend_in_batches", failing)
    for name in ("new.parquet", "new.csv.gz"):
        err = assert_error(capsys, 1, "export", "--model", model_file, "--output", tmp_path / name)
        assert "No space left on device" in err
    existing = tmp_path / "old.csv"
    existing.write_text("keep me\n")
    assert_error(capsys, 1, "export", "--model", model_file, "--output", existing)
    assert existing.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]


def test_errors_are_one_line(model_file, tmp_path, capsys):
    out = tmp_path / "recs.parquet"
    err = assert_error(capsys, 1, "export", "--model", tmp_path / "missing.npz", "--output", out)
    assert "no such model file" in err
    assert "must be at least 1" in assert_error(
        capsys, 2, "export", "--model", model_file, "--n", 0, "--output", out
    )
    err = assert_error(
        capsys, 1, "export", "--model", model_file, "--user-id", "99999", "--output", out
    )
    assert "user 99999 is not in the model's training data" in err
    err = assert_error(
        capsys,
        1,
        "export",
        "--model",
        model_file,
        "--users-file",
        tmp_path / "nope.txt",
        "--output",
        out,
    )
    assert "no such users file" in err
    err = assert_error(
        capsys, 2, "export", "--model", model_file, "--output", tmp_path / "recs.json"
    )
    assert "unknown file type" in err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_error(capsys, 1, "export", "--model", model_file, "--output", blocker / "recs.parquet")
    assert not out.exists()


def test_recommend_in_batches_is_recommend_cut_in_pieces(model_file):
    model = load_model(model_file)
    users = np.array([5, 0, 199, 42, 7])
    pieces = list(recommend_in_batches(model, users, 4, batch_users=2, n_threads=2))
    assert [p[0].tolist() for p in pieces] == [[5, 0], [199, 42], [7]]
    items, scores = recommend(model, users, 4)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in pieces]), items)
    # The same scores up to float32 rounding: BLAS may sum in another order for other shapes.
    np.testing.assert_allclose(np.concatenate([p[2] for p in pieces]), scores, rtol=1e-6)
    with pytest.raises(ParameterError, match="batch_users=0"):
        list(recommend_in_batches(model, users, 4, batch_users=0))
