"""Ids through ``growthrec spark-train`` come back byte for byte, as through ``load_events``.

Spark reads a CSV's id columns as text and makes them integers only under the rule of
``growthrec.data.loading`` (every id a canonical int64, or every one such an integer followed by
``.0``), decided over the whole column inside Spark. Each case here loads one file with both
loaders and asserts the same id maps, and the ids a user reads back.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from cli_helpers import run, run_json
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from growthrec.core.interactions import interactions_from_events
from growthrec.data.cleaning import Cleaning
from growthrec.data.files import write_table
from growthrec.data.loading import load_events


def _write_csv(path, rows: list[tuple[str, ...]], header=("user_id", "item_id")) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _both(spark, path, cleaning: Cleaning | None = None):
    """The file through ``load_events`` and ``load_pairs``: the same users, items and matrix."""
    from growthrec.spark import load_pairs

    cleaning = Cleaning() if cleaning is None else cleaning
    events, report = load_events(path, cleaning=cleaning)
    loaded = load_pairs(spark, path, cleaning=cleaning)
    loaded.pairs.unpersist()
    expected = interactions_from_events(events)
    assert loaded.train.users == events.users
    assert loaded.train.items == events.items
    assert (loaded.train.matrix != expected.matrix).nnz == 0
    assert loaded.report.dropped == report.dropped
    return loaded.train


@pytest.mark.parametrize(
    ("values", "kind", "ids"),
    [
        (["1", "22", "-3"], "int", [-3, 1, 22]),
        (["0", "10", "999", "1000"], "int", [0, 10, 999, 1000]),
        (["17850.0", "9.0", "0.0"], "int", [0, 9, 17850]),  # a float column as pandas writes it
        (["9223372036854775807", "-9223372036854775808"], "int", [-(2**63), 2**63 - 1]),
        (["007", "0042", "7"], "str", ["0042", "007", "7"]),
        (["0", "00"], "str", ["0", "00"]),
        (["1", "+1"], "str", ["+1", "1"]),
        (["42", " 42", "42 "], "str", [" 42", "42", "42 "]),  # spaces are part of the id
        (["1", "1e3"], "str", ["1", "1e3"]),
        (["1", "2.0"], "str", ["1", "2.0"]),  # a mix of the two integer forms is text
        (["1", "1.5"], "str", ["1", "1.5"]),  # was an error when Spark inferred doubles
        (["1", "-0"], "str", ["-0", "1"]),
        (["1", "NA", "nan", "NULL"], "str", ["1", "NA", "NULL", "nan"]),
        (["A1", "10", "9"], "str", ["10", "9", "A1"]),  # mixed text and numbers
        (["9223372036854775808", "1"], "str", ["1", "9223372036854775808"]),
        (["-9223372036854775809", "1"], "str", ["-9223372036854775809", "1"]),
        (["a,b", 'say "hi"', "  "], "str", ["  ", "a,b", 'say "hi"']),  # quoted in the file
    ],
)
def test_spark_reads_a_csv_id_column_as_load_events_does(spark, tmp_path, values, kind, ids):
    path = tmp_path / "t.csv"
    # The item column holds the same values in reverse: both id columns follow the rule.
    _write_csv(path, list(zip(values, reversed(values), strict=True)))
    train = _both(spark, path)
    assert (train.users.kind, train.users.ids.tolist()) == (kind, ids)
    assert (train.items.kind, train.items.ids.tolist()) == (kind, ids)


def test_missing_ids_are_empty_fields_and_do_not_make_the_column_text(spark, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('user_id,item_id\n1,A\n,B\n"",C\n2,D\n17,\n')
    train = _both(spark, path)
    assert (train.users.kind, train.users.ids.tolist()) == ("int", [1, 2])
    assert train.items.ids.tolist() == ["A", "D"]


def test_a_dropped_row_still_counts_for_the_column(spark, tmp_path):
    """ "007" on a return (dropped) still makes the user column text, as in load_events."""
    path = tmp_path / "t.csv"
    _write_csv(
        path,
        [("7", "1", "2"), ("12", "2", "1"), ("007", "1", "-1")],
        header=("user_id", "item_id", "quantity"),
    )
    train = _both(spark, path)
    assert (train.users.kind, train.users.ids.tolist()) == ("str", ["12", "7"])
    assert (train.items.kind, train.items.ids.tolist()) == ("int", [1, 2])


def test_windows_line_endings_are_not_part_of_an_id(spark, tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"user_id,item_id\r\n1,0042\r\n22,42\r\n")
    train = _both(spark, path)
    assert (train.users.kind, train.users.ids.tolist()) == ("int", [1, 22])
    assert train.items.ids.tolist() == ["0042", "42"]


def test_parquet_id_columns_keep_their_types(spark, tmp_path):
    """Parquet text stays text ("7" too), whole floats become integers, as in load_events."""
    path = write_table(
        {"user_id": np.array([17850.0, 9.0, np.nan]), "item_id": np.array(["007", "7", "x"])},
        tmp_path / "t.parquet",
    )
    train = _both(spark, path)
    assert (train.users.kind, train.users.ids.tolist()) == ("int", [9, 17850])
    assert (train.items.kind, train.items.ids.tolist()) == ("str", ["007", "7"])


#: Printable text (no control characters: Spark reads one record per line) and no lone
#: surrogates; a leading BOM would be the file's, not the id's.
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=8).filter(
    lambda text: text.strip("\ufeff") == text
)
IDS = st.lists(
    st.sampled_from(["007", "42", "+1", " 42", "1e3", "17850.0", "-0", "a,b", '"', "NA"])
    | ANY_TEXT
    | st.integers(-(2**63), 2**63 - 1).map(str),
    min_size=1,
    max_size=4,
    unique=True,
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(users=IDS, items=IDS)
@example(users=["7", "42", "-5"], items=["0042", "42"])
@example(users=["17850.0", "9.0"], items=['say "hi"', " 42", "a\u2028b"])
def test_any_ids_load_in_spark_as_in_load_events(spark, tmp_path_factory, users, items):
    path = tmp_path_factory.mktemp("ids") / "t.csv"
    count = max(len(users), len(items))
    _write_csv(path, [(users[n % len(users)], items[n % len(items)]) for n in range(count)])
    _both(spark, path)


def test_spark_train_gives_back_the_ids_of_the_file(spark, tmp_path, capsys):
    """Customer 007 and SKU 0042 stay 007 and 0042 in the model, recommend and --json."""
    data, model = tmp_path / "shop.csv", tmp_path / "spark.npz"
    users = ["007", "7", "0042", "12"]
    items = ["0042", "42", "7", "A-1", "+1"]
    _write_csv(data, [(u, i) for n, u in enumerate(users) for i in items[: 2 + n]])
    summary = run_json(
        capsys, "spark-train", "--data", data, "--factors", "2", "--param", "iterations=2",
        "--output", tmp_path,
    )  # fmt: skip
    assert summary["model"]["path"] == str(model)
    assert (summary["data"]["n_users"], summary["data"]["n_items"]) == (4, 5)
    payload = run_json(
        capsys, "recommend", "--model", model, "--user-id", "007", "--n", 5, "--include-purchased"
    )
    (result,) = payload["results"]
    assert result["user"] == "007"
    assert sorted(entry["item"] for entry in result["items"]) == sorted(items)
    code, _, err = run(capsys, "recommend", "--model", model, "--user-id", "42")
    assert code == 1 and "42" in err  # 0042 is a customer; 42 is not
