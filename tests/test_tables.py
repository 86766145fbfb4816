"""Reading transactions and catalogues (CSV, CSV.gz, Parquet), their errors, and atomic writes."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from growthrec.core.interactions import IdMap
from growthrec.data.catalog import catalog_attributes, read_catalog
from growthrec.data.cleaning import Cleaning
from growthrec.data.files import write_table
from growthrec.data.loading import Columns, read_interactions
from growthrec.errors import DataError

FORMATS = ["csv", "parquet"]

# These tests read repeated rows as repeat purchases; ``load_events`` drops exact duplicates
# by default (tests/test_loading.py covers the cleaning rules).
KEEP_DUPLICATES = Cleaning(drop_duplicates=False)

# 2025-03-01 14:30:00 UTC and one day later.
T0 = 1_740_839_400
T1 = T0 + 86_400


def _events(ids: str = "int") -> dict[str, list]:
    """Five rows; (1, A) is bought twice, so four distinct pairs."""
    users = [1, 1, 2, 3, 1] if ids == "int" else ["u1", "u1", "u2", "u3", "u1"]
    return {"user_id": users, "item_id": ["A", "B", "A", "C", "A"]}


def _dense(data) -> list[list[float]]:
    return data.matrix.toarray().tolist()


def _error(path: Path, **kwargs) -> str:
    """The one-line DataError message of reading ``path``, which must name the file."""
    with pytest.raises(DataError) as info:
        read_interactions(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert info.value.__cause__ is None or info.value.__suppress_context__
    return message


# Reading: ids, weights, times, column names


@pytest.mark.parametrize("fmt", FORMATS)
def test_integer_ids(tmp_path, fmt):
    data = read_interactions(
        write_table(_events("int"), tmp_path / f"t.{fmt}"), cleaning=KEEP_DUPLICATES
    )
    assert data.users.ids.dtype == np.int64
    assert data.users.ids.tolist() == [1, 2, 3]
    assert data.items.ids.tolist() == ["A", "B", "C"]
    # No quantity column: each row counts 1 and the duplicate (1, A) sums to 2.
    assert _dense(data) == [[2, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert data.nnz == 4
    assert data.timestamps is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_string_ids(tmp_path, fmt):
    data = read_interactions(
        write_table(_events("str"), tmp_path / f"t.{fmt}"), cleaning=KEEP_DUPLICATES
    )
    assert data.users.kind == "str"
    assert data.users.ids.tolist() == ["u1", "u2", "u3"]
    assert _dense(data) == [[2, 1, 0], [1, 0, 0], [0, 0, 1]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_float_ids_become_integers(tmp_path, fmt):
    columns = {"user_id": np.array([17850.0, 17850.0, 13047.0]), "item_id": [85123.0, 71053.0, 1.0]}
    data = read_interactions(write_table(columns, tmp_path / f"t.{fmt}"))
    assert data.users.ids.dtype == np.int64
    assert data.users.ids.tolist() == [13047, 17850]
    assert data.items.ids.tolist() == [1, 71053, 85123]
    assert data.users.index([17850]).tolist() == [1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_quantity_is_the_default_weight_and_duplicates_are_summed(tmp_path, fmt):
    columns = {**_events(), "quantity": [2, 1, 5, 1, 3]}
    data = read_interactions(write_table(columns, tmp_path / f"t.{fmt}"))
    assert _dense(data) == [[5, 1, 0], [5, 0, 0], [0, 0, 1]]
    assert data.matrix.dtype == np.float32


@pytest.mark.parametrize("fmt", FORMATS)
def test_fractional_weights(tmp_path, fmt):
    columns = {**_events(), "quantity": [0.5, 1.25, 2.0, 1.0, 0.25]}
    data = read_interactions(write_table(columns, tmp_path / f"t.{fmt}"))
    assert _dense(data)[0] == [0.75, 1.25, 0.0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_iso_text_timestamps(tmp_path, fmt):
    times = [
        "2025-03-01 14:30:00",
        "2025-03-01T14:30:00",
        "2025-03-02 14:30:00",
        "2025-03-01 14:30:00",
        "2025-03-01 10:00:00",
    ]
    columns = {**_events(), "timestamp": times}
    if fmt == "parquet":  # keep them text: arrow parses them, not the writer
        columns["timestamp"] = pa.array(times, pa.string())
    data = read_interactions(write_table(columns, tmp_path / f"t.{fmt}"))
    # Pairs in CSR order: (1,A) latest of T0 and 10:00 -> T0; (1,B) T0; (2,A) T1; (3,C) T0.
    np.testing.assert_array_equal(data.timestamps, [T0, T0, T1, T0])


@pytest.mark.parametrize("fmt", FORMATS)
def test_unix_seconds_timestamps(tmp_path, fmt):
    columns = {**_events(), "timestamp": [T0 - 5, T0, T1, T0 + 7, T0 + 3]}
    data = read_interactions(write_table(columns, tmp_path / f"t.{fmt}"))
    np.testing.assert_array_equal(data.timestamps, [T0 + 3, T0, T1, T0 + 7])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_arrow_timestamps(tmp_path, fmt, unit):
    seconds = np.array([T0, T0 + 60, T1, T0, T0 - 60])
    values = pa.array(seconds.astype("datetime64[s]").astype(f"datetime64[{unit}]"))
    columns = {**_events(), "timestamp": values}
    data = read_interactions(write_table(columns, tmp_path / f"t.{fmt}"))
    np.testing.assert_array_equal(data.timestamps, [T0, T0 + 60, T1, T0])


@pytest.mark.parametrize("fmt", FORMATS)
def test_sub_second_and_utc_timestamps(tmp_path, fmt):
    values = pa.array(
        [(T0 * 1000 + 123), (T0 * 1000), (T1 * 1000 + 999), T0 * 1000, T0 * 1000],
        pa.timestamp("ms", tz="UTC"),
    )
    data = read_interactions(write_table({**_events(), "timestamp": values}, tmp_path / f"t.{fmt}"))
    np.testing.assert_array_equal(data.timestamps, [T0, T0, T1, T0])


def test_dates_are_midnight(tmp_path):
    day = dt.date(2025, 3, 1)
    values = pa.array([day] * 5, pa.date32())
    data = read_interactions(
        write_table({**_events(), "timestamp": values}, tmp_path / "t.parquet")
    )
    np.testing.assert_array_equal(data.timestamps, np.full(4, T0 - 14 * 3600 - 30 * 60))


@pytest.mark.parametrize("fmt", FORMATS)
def test_other_columns_are_ignored_without_quantity_or_timestamp(tmp_path, fmt):
    columns = {**_events(), "qty": [9, 9, 9, 9, 9], "when": [T0] * 5, "price": [1.0] * 5}
    data = read_interactions(write_table(columns, tmp_path / f"t.{fmt}"), cleaning=KEEP_DUPLICATES)
    assert _dense(data) == [[2, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert data.timestamps is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_custom_column_names(tmp_path, fmt):
    columns = {
        "customer": [10, 10, 20],
        "sku": ["X", "Y", "X"],
        "qty": [3, 1, 2],
        "when": ["2025-03-01 14:30:00", "2025-03-02 14:30:00", "2025-03-01 14:30:00"],
        "quantity": [100, 100, 100],  # a default-named column that must not be used
    }
    path = write_table(columns, tmp_path / f"t.{fmt}")
    data = read_interactions(path, Columns(user="customer", item="sku", weight="qty", time="when"))
    assert data.users.ids.tolist() == [10, 20]
    assert data.items.ids.tolist() == ["X", "Y"]
    assert _dense(data) == [[3, 1], [2, 0]]
    np.testing.assert_array_equal(data.timestamps, [T0, T1, T0])


def test_csv_gz_round_trip(tmp_path):
    columns = {**_events("str"), "quantity": [2, 1, 5, 1, 3], "timestamp": [T0] * 5}
    path = write_table(columns, tmp_path / "t.csv.gz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzip
    assert gzip.decompress(path.read_bytes()).startswith(b'"user_id","item_id"')
    data = read_interactions(path)
    plain = read_interactions(write_table(columns, tmp_path / "t.csv"))
    assert _dense(data) == _dense(plain) == [[5, 1, 0], [5, 0, 0], [0, 0, 1]]
    assert data.users == plain.users
    np.testing.assert_array_equal(data.timestamps, plain.timestamps)


def test_written_csv_is_plain_csv(tmp_path):
    path = write_table({"user_id": [1, 2], "item_id": ["A", "B"]}, tmp_path / "t.csv")
    assert path.read_text().splitlines() == ['"user_id","item_id"', '1,"A"', '2,"B"']


def test_parquet_pq_suffix(tmp_path):
    path = write_table(_events(), tmp_path / "t.pq")
    assert pq.read_schema(path).names == ["user_id", "item_id"]
    assert read_interactions(path).nnz == 4


# Errors: one line, naming the file and the column or row


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_file(tmp_path, fmt):
    assert "no such file" in _error(tmp_path / f"nope.{fmt}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_file(tmp_path, fmt):
    path = tmp_path / f"empty.{fmt}"
    path.write_bytes(b"")
    message = _error(path)
    assert "empty" in message.lower() or "0 bytes" in message


def test_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("user_id,item_id,quantity\n")
    assert "header but no rows" in _error(path)


def test_parquet_without_rows(tmp_path):
    path = tmp_path / "none.parquet"
    pq.write_table(pa.table({"user_id": pa.array([], pa.int64()), "item_id": []}), path)
    assert "no rows" in _error(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_column_lists_the_available_ones(tmp_path, fmt):
    path = write_table({"customer": [1, 2], "item_id": ["A", "B"]}, tmp_path / f"t.{fmt}")
    message = _error(path)
    assert "no column 'user_id'" in message
    assert "'customer', 'item_id'" in message


def test_missing_named_weight_column(tmp_path):
    path = write_table(_events(), tmp_path / "t.csv")
    message = _error(path, columns=Columns(weight="qty"))
    assert "no column 'qty'" in message


def test_unparsable_weight_names_value_row_and_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id,quantity\n1,A,1\n2,B,2\n3,C,abc\n")
    message = _error(path)
    assert "column 'quantity'" in message
    assert "'abc'" in message
    assert "row 3 (line 4)" in message


def test_unparsable_weight_in_parquet_names_the_row(tmp_path):
    columns = {**_events(), "quantity": pa.array(["1", "2", "x7", "1", "1"], pa.string())}
    message = _error(write_table(columns, tmp_path / "t.parquet"))
    assert "'x7'" in message
    assert "row 3" in message


def test_unparsable_date_names_value_and_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id,timestamp\n1,A,2025-03-01 14:30:00\n2,B,notadate\n")
    message = _error(path)
    assert "column 'timestamp'" in message
    assert "'notadate'" in message
    assert "row 2 (line 3)" in message
    assert "2025-03-01 14:30:00" in message  # says what a date should look like


@pytest.mark.parametrize("fmt", FORMATS)
def test_null_integer_id_names_the_row(tmp_path, fmt):
    columns = {"user_id": pa.array([1, 2, None, 4], pa.int64()), "item_id": ["A", "B", "C", "D"]}
    message = _error(
        write_table(columns, tmp_path / f"t.{fmt}"), cleaning=Cleaning(drop_missing=False)
    )
    assert "column 'user_id' is empty at row 3" in message
    if fmt == "csv":
        assert "(line 4)" in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_string_id_names_the_row(tmp_path, fmt):
    columns = {"user_id": ["u1", "u2"], "item_id": pa.array(["A", None], pa.string())}
    if fmt == "csv":
        columns["item_id"] = ["A", ""]
    message = _error(
        write_table(columns, tmp_path / f"t.{fmt}"), cleaning=Cleaning(drop_missing=False)
    )
    assert "column 'item_id' is empty at row 2" in message


def test_fractional_id_is_refused_in_a_parquet_float_column(tmp_path):
    path = write_table({"user_id": [2.0, 1.5], "item_id": ["A", "B"]}, tmp_path / "t.parquet")
    assert _error(path).endswith(
        "column 'user_id' has 1.5 at row 2; ids must be text or whole numbers"
    )


def test_fractional_id_in_a_csv_is_text_as_written(tmp_path):
    path = write_table({"user_id": [1.5, 2.0], "item_id": ["A", "B"]}, tmp_path / "t.csv")
    assert path.read_text().splitlines()[1:] == ['1.5,"A"', '2,"B"']
    data = read_interactions(path)
    assert data.users.kind == "str"
    assert data.users.ids.tolist() == ["1.5", "2"]


PNG_START = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00"


@pytest.mark.parametrize(
    "content",
    [PNG_START, PNG_START + bytes(range(256)) * 8, b"\x89\xff,item_id\n1,2\n"]
    + [np.random.default_rng(seed).bytes(300) for seed in range(10)],
    ids=["png", "png-long", "bad-header", *(f"random{seed}" for seed in range(10))],
)
def test_binary_garbage_with_csv_suffix(tmp_path, content):
    path = tmp_path / "garbage.csv"
    path.write_bytes(content)
    assert "not a readable CSV file" in _error(path)


def test_binary_garbage_with_parquet_suffix(tmp_path):
    path = tmp_path / "garbage.parquet"
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    assert "not a readable PARQUET file" in _error(path)


@pytest.mark.parametrize("name", ["t.xlsx", "t.json", "t.gz", "t"])
def test_unknown_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("user_id,item_id\n1,A\n")
    message = _error(path)
    assert "unknown file type" in message
    assert ".csv" in message and ".parquet" in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_negative_weight(tmp_path, fmt):
    columns = {**_events(), "quantity": [1, 2, -3, 1, 1]}
    message = _error(
        write_table(columns, tmp_path / f"t.{fmt}"), cleaning=Cleaning(drop_nonpositive=False)
    )
    assert "column 'quantity'" in message
    assert "-3" in message
    assert "row 3" in message
    assert "not negative" in message


def test_missing_weight_value(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id,quantity\n1,A,1\n2,B,\n")
    assert "column 'quantity' is empty at row 2 (line 3)" in _error(path)


def test_unknown_suffix_for_writing(tmp_path):
    with pytest.raises(DataError, match="unknown file type"):
        write_table({"a": [1]}, tmp_path / "t.xlsx")
    assert list(tmp_path.iterdir()) == []


# Catalogue


@pytest.mark.parametrize("fmt", FORMATS)
def test_catalog_attributes_align_with_the_id_map(tmp_path, fmt):
    catalog = {
        "item_id": ["C", "A", "Z"],  # unordered; Z is not in the id map; B is unlisted
        "category": ["toys", "home", "garden"],
        "price": [2.5, 10.0, 1.0],
    }
    table = read_catalog(write_table(catalog, tmp_path / f"items.{fmt}"))
    assert table.column_names == ["item_id", "category", "price"]
    items = IdMap(np.array(["A", "B", "C"]), np.arange(3))
    attributes = catalog_attributes(table, items)
    assert set(attributes) == {"category", "price"}
    assert attributes["category"].tolist() == ["home", "", "toys"]
    assert attributes["price"].tolist() == ["10", "", "2.5"]
    assert attributes["category"].dtype.kind == "U"


def test_catalog_with_item_column_not_first_and_integer_ids(tmp_path):
    catalog = {"category": ["a", "b"], "item_id": [200, 100]}
    table = read_catalog(write_table(catalog, tmp_path / "items.csv"))
    assert table.column_names[0] == "item_id"
    items = IdMap(np.array([100, 150, 200]), np.arange(3))
    assert catalog_attributes(table, items)["category"].tolist() == ["b", "", "a"]


def test_catalog_custom_item_column(tmp_path):
    table = read_catalog(
        write_table({"sku": ["A"], "brand": ["acme"]}, tmp_path / "items.csv"), item_column="sku"
    )
    items = IdMap(np.array(["A", "B"]), np.arange(2))
    attributes = catalog_attributes(table, items, item_column="sku")
    assert attributes == {"brand": attributes["brand"]}
    assert attributes["brand"].tolist() == ["acme", ""]


def test_catalog_with_null_values_gives_empty_strings(tmp_path):
    catalog = {"item_id": ["A", "B"], "category": pa.array(["toys", None], pa.string())}
    table = read_catalog(write_table(catalog, tmp_path / "items.parquet"))
    items = IdMap(np.array(["A", "B"]), np.arange(2))
    assert catalog_attributes(table, items)["category"].tolist() == ["toys", ""]


def test_catalog_without_item_column(tmp_path):
    path = write_table({"sku": ["A"], "category": ["x"]}, tmp_path / "items.csv")
    with pytest.raises(DataError, match="no column 'item_id'; the file has 'sku', 'category'"):
        read_catalog(path)


def test_missing_catalog(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_catalog(tmp_path / "items.csv")


# Atomic writes


def _fail_midway(table, where, *args, **kwargs):
    where.write(b"user_id,item_id\n1,")
    raise OSError("No space left on device")


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_failed_write_leaves_no_file_and_no_temp(tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(pa_csv, "write_csv", _fail_midway)
    monkeypatch.setattr(pq, "write_table", _fail_midway)
    target = tmp_path / "out" / f"t.{fmt}"
    with pytest.raises(OSError, match="No space left"):
        write_table(_events(), target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = write_table(_events(), tmp_path / "t.csv")
    before = target.read_bytes()
    monkeypatch.setattr(pa_csv, "write_csv", _fail_midway)
    with pytest.raises(OSError):
        write_table({"user_id": [9], "item_id": ["Z"]}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_write_creates_folders_and_leaves_only_the_target(tmp_path):
    target = write_table(_events(), tmp_path / "a" / "b" / "t.parquet")
    write_table(_events(), target)
    assert [p.name for p in target.parent.iterdir()] == ["t.parquet"]
    assert pq.read_table(target).num_rows == 5
