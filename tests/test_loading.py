"""Loading real shop exports: cleaning rules and their counts, presets, catalogues, bad data."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core.interactions import IdMap, interactions_from_events
from growthrec.data.cleaning import Cleaning
from growthrec.data.files import write_table
from growthrec.data.loading import Columns, LoadReport, load_events, read_interactions
from growthrec.data.presets import (
    PRESETS,
    catalog_for,
    cleaning_for,
    default_catalog_path,
    get_preset,
)
from growthrec.errors import DataError, ParameterError

FORMATS = ["csv", "parquet"]
PRICE = Cleaning(require_positive=("price",))


def _dirty() -> dict[str, pa.Array]:
    """Eleven invoice lines; the comment says which rule drops each (the first that applies)."""
    return {
        "user_id": pa.array([1, 1, None, 2, 2, 3, 2, 1, None, 2, 1], pa.int64()),
        "item_id": pa.array(["A", "B", "A", "", "A", "C", "D", "A", "B", "C", "B"]),
        "quantity": pa.array([2, 1, 1, 1, -1, 0, 3, 2, -5, 1, 1], pa.int64()),
        "timestamp": pa.array(
            [
                "2025-03-01 10:00:00",  # 1  kept
                "2025-03-01 10:00:00",  # 2  kept
                "2025-03-01 11:00:00",  # 3  missing user
                "2025-03-01 11:00:00",  # 4  missing item ("")
                "2025-03-01 12:00:00",  # 5  negative quantity (a return)
                "2025-03-01 12:00:00",  # 6  zero quantity *and* zero price: counted as quantity
                "2025-03-02 09:00:00",  # 7  zero price (item D only here)
                "2025-03-01 10:00:00",  # 8  same as row 1
                "2025-03-01 10:00:00",  # 9  missing user, negative quantity, negative price
                "2025-03-03 09:00:00",  # 10 kept
                "2025-03-01 10:00:00",  # 11 same as row 2 (and below a minimum weight of 2)
            ],
            pa.string(),
        ),
        "price": pa.array([1.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, -1.0, 1.5, 2.0]),
    }


def _write(columns: dict, tmp_path: Path, fmt: str, name: str = "t") -> Path:
    return write_table(columns, tmp_path / f"{name}.{fmt}")


def _error(path: Path, kind: type[Exception] = DataError, **kwargs) -> str:
    """The one-line message of loading ``path``, which must name the file."""
    with pytest.raises(kind) as info:
        load_events(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# The cleaning rules, their order and their counts


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_rule_counts_its_rows_once_in_order(tmp_path, fmt):
    path = _write(_dirty(), tmp_path, fmt)
    events, report = load_events(path, cleaning=PRICE)
    assert report.dropped == {
        "missing user or item": 3,  # rows 3, 4, 9 (row 9 fails three rules)
        "non-positive weight": 2,  # rows 5, 6 (row 6 also has a zero price)
        "non-positive price": 1,  # row 7
        "duplicate rows": 2,  # rows 8, 11
    }
    assert list(report.dropped) == [
        "missing user or item",
        "non-positive weight",
        "non-positive price",
        "duplicate rows",
    ]
    assert (report.rows_read, report.rows_kept) == (11, 3)
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())
    assert (report.weight_column, report.time_column) == ("quantity", "timestamp")
    # Rows 1, 2 and 10; user 3 and item D only occurred in dropped rows.
    assert events.users.ids.tolist() == [1, 2]
    assert events.items.ids.tolist() == ["A", "B", "C"]
    assert events.user_codes.tolist() == [0, 0, 1]
    assert events.item_codes.tolist() == [0, 1, 2]
    assert events.weights.tolist() == [2.0, 1.0, 1.0]
    assert events.weights.dtype == np.float32
    assert events.timestamps.dtype == np.float64
    assert (report.n_users, report.n_items) == (2, 3)


def test_min_weight_comes_after_duplicates(tmp_path):
    path = _write(_dirty(), tmp_path, "csv")
    events, report = load_events(path, cleaning=Cleaning(min_weight=2, require_positive="price"))
    assert report.dropped == {
        "missing user or item": 3,
        "non-positive weight": 2,
        "non-positive price": 1,
        "duplicate rows": 2,  # row 11 (quantity 1) is counted here, not below
        "below min weight 2": 2,  # rows 2 and 10
    }
    assert report.rows_kept == 1
    assert events.users.ids.tolist() == [1]
    assert events.items.ids.tolist() == ["A"]


def test_without_a_weight_column_there_is_no_weight_rule(tmp_path):
    path = _write({"user_id": [1, 1, 2], "item_id": ["A", "A", "B"]}, tmp_path, "csv")
    events, report = load_events(path)
    assert report.dropped == {"missing user or item": 0, "duplicate rows": 1}
    assert report.weight_column is None and events.weights is None


def test_no_rule_enabled_reports_nothing(tmp_path):
    path = _write({"user_id": [1, 1, 2], "item_id": ["A", "A", "B"]}, tmp_path, "csv")
    off = Cleaning(drop_missing=False, drop_nonpositive=False, drop_duplicates=False)
    _, report = load_events(path, cleaning=off)
    assert report.dropped == {}
    assert report.rows_kept == 3


# Each rule switched off


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_ids_are_an_error_when_not_dropped(tmp_path, fmt):
    path = _write(_dirty(), tmp_path, fmt)
    message = _error(path, cleaning=Cleaning(drop_missing=False))
    assert "column 'user_id' is empty at row 3" in message
    if fmt == "csv":
        assert "(line 4)" in message


def test_missing_item_is_named_when_users_are_complete(tmp_path):
    columns = {"user_id": [1, 2, 3], "item_id": pa.array(["A", None, "C"], pa.string())}
    message = _error(_write(columns, tmp_path, "parquet"), cleaning=Cleaning(drop_missing=False))
    assert "column 'item_id' is empty at row 2" in message


def test_nan_float_id_is_missing(tmp_path):
    columns = {"user_id": np.array([17850.0, np.nan, 13047.0]), "item_id": ["A", "B", "C"]}
    events, report = load_events(_write(columns, tmp_path, "parquet"))
    assert report.dropped["missing user or item"] == 1
    assert events.users.ids.tolist() == [13047, 17850]
    assert events.users.ids.dtype == np.int64


def test_negative_weight_is_an_error_when_not_dropped(tmp_path):
    columns = {"user_id": [1, 2, 3], "item_id": ["A", "B", "C"], "quantity": [1, 0, -2]}
    path = _write(columns, tmp_path, "csv")
    message = _error(path, cleaning=Cleaning(drop_nonpositive=False))
    assert "column 'quantity' has -2 at row 3 (line 4)" in message
    assert "not negative" in message


def test_zero_weight_is_kept_when_not_dropped(tmp_path):
    columns = {"user_id": [1, 2, 3], "item_id": ["A", "B", "C"], "quantity": [1, 0, 2]}
    path = _write(columns, tmp_path, "csv")
    events, report = load_events(path, cleaning=Cleaning(drop_nonpositive=False))
    assert "non-positive weight" not in report.dropped
    assert report.rows_kept == 3
    assert events.weights.tolist() == [1.0, 0.0, 2.0]
    _, default = load_events(path)
    assert default.dropped["non-positive weight"] == 1


def test_kept_duplicates_are_summed_in_the_matrix(tmp_path):
    path = _write(_dirty(), tmp_path, "parquet")
    dropped = interactions_from_events(load_events(path, cleaning=PRICE)[0])
    kept = interactions_from_events(
        load_events(path, cleaning=Cleaning(drop_duplicates=False, require_positive="price"))[0]
    )
    assert dropped.matrix.toarray().tolist() == [[2, 1, 0], [0, 0, 1]]
    assert kept.matrix.toarray().tolist() == [[4, 2, 0], [0, 0, 1]]


def test_duplicates_need_every_column_read_to_match(tmp_path):
    columns = {
        "user_id": [1, 1, 1, 1, 1],
        "item_id": ["A", "A", "A", "A", "A"],
        "quantity": [1.0, 1.0, 2.0, 1.0, -0.0],
        "timestamp": [100, 100, 100, 200, 100],
        "price": [1.0, 1.0, 1.0, 1.0, 1.0],
    }
    path = _write(columns, tmp_path, "parquet")
    # Row 2 repeats row 1; rows 3 and 4 differ in quantity or time.
    assert load_events(path)[1].dropped["duplicate rows"] == 1
    # Reading "price" too makes it part of a row; a price of 2 makes row 2 distinct.
    columns["price"] = [1.0, 2.0, 1.0, 1.0, 1.0]
    path = _write(columns, tmp_path, "parquet", "priced")
    assert load_events(path, cleaning=PRICE)[1].dropped["duplicate rows"] == 0
    assert load_events(path)[1].dropped["duplicate rows"] == 1  # price not read
    # -0.0 equals 0.0: with zeros kept, they are duplicates.
    zeros = {**columns, "quantity": [0.0, -0.0, 0.0, 1.0, 1.0], "price": [1.0] * 5}
    path = _write(zeros, tmp_path, "parquet", "zeros")
    _, report = load_events(path, cleaning=Cleaning(drop_nonpositive=False))
    assert report.dropped["duplicate rows"] == 2


def test_duplicates_keep_the_first_row_of_many(tmp_path):
    rng = np.random.default_rng(0)
    users = rng.integers(0, 5, 300)
    items = rng.integers(0, 4, 300)
    times = rng.integers(0, 3, 300)
    path = _write({"user_id": users, "item_id": items, "timestamp": times}, tmp_path, "csv")
    events, report = load_events(path)
    seen = {}
    for row, key in enumerate(zip(users.tolist(), items.tolist(), times.tolist(), strict=True)):
        seen.setdefault(key, row)
    assert report.dropped["duplicate rows"] == 300 - len(seen)
    first_rows = sorted(seen.values())
    assert events.timestamps.tolist() == times[first_rows].tolist()
    assert events.users.external(events.user_codes).tolist() == users[first_rows].tolist()


# Minimum weight and require_positive


@pytest.mark.parametrize("fmt", FORMATS)
def test_min_weight_turns_ratings_into_positives(tmp_path, fmt):
    ratings = {
        "userId": [1, 1, 2, 2, 3],
        "movieId": [10, 20, 10, 30, 40],
        "rating": [5.0, 3.5, 4.0, 1.0, 4.5],
    }
    path = _write(ratings, tmp_path, fmt)
    columns = Columns("userId", "movieId", "rating")
    events, report = load_events(path, columns, Cleaning(min_weight=4))
    assert report.dropped["below min weight 4"] == 2
    assert report.rows_kept == 3
    assert events.items.ids.tolist() == [10, 40]
    assert events.weights.tolist() == [5.0, 4.0, 4.5]  # kept as given
    _, half = load_events(path, columns, Cleaning(min_weight=3.5))
    assert half.dropped["below min weight 3.5"] == 1


def test_min_weight_without_a_weight_column(tmp_path):
    path = _write({"user_id": [1], "item_id": ["A"]}, tmp_path, "csv")
    message = _error(path, ParameterError, cleaning=Cleaning(min_weight=4))
    assert "min_weight=4 needs a weight column" in message


def test_require_positive_on_a_missing_column_lists_the_columns(tmp_path):
    path = _write({"user_id": [1], "item_id": ["A"], "qty": [1]}, tmp_path, "csv")
    message = _error(path, cleaning=Cleaning(require_positive=("UnitPrice",)))
    assert "no column 'UnitPrice'; the file has 'user_id', 'item_id', 'qty'" in message
    two = _error(path, cleaning=Cleaning(require_positive=("UnitPrice", "Cost")))
    assert "no columns 'UnitPrice', 'Cost'" in two


def test_require_positive_drops_empty_values(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id,price\n1,A,2.5\n2,B,\n3,C,0\n4,D,1\n")
    events, report = load_events(path, cleaning=PRICE)
    assert report.dropped["non-positive price"] == 2
    assert events.users.ids.tolist() == [1, 4]


def test_require_positive_text_that_is_not_a_number(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id,price\n1,A,2.5\n2,B,cheap\n")
    message = _error(path, cleaning=PRICE)
    assert "column 'price': cannot read 'cheap' at row 2 (line 3)" in message


@pytest.mark.parametrize(
    ("cleaning", "text"),
    [
        (Cleaning(min_user_interactions=0), "min_user_interactions=0"),
        (Cleaning(min_item_interactions=2.5), "min_item_interactions=2.5"),
        (Cleaning(min_weight=float("nan")), "min_weight=nan"),
        (Cleaning(require_positive=("",)), "require_positive"),
    ],
)
def test_bad_cleaning_values(tmp_path, cleaning, text):
    path = _write({"user_id": [1], "item_id": ["A"], "quantity": [1]}, tmp_path, "csv")
    with pytest.raises(ParameterError, match=text):
        load_events(path, cleaning=cleaning)


def test_nothing_left_is_an_error_with_the_counts(tmp_path):
    path = _write({"user_id": [1, 2], "item_id": ["A", "B"], "quantity": [0, -1]}, tmp_path, "csv")
    message = _error(path)
    assert "no rows left after cleaning (non-positive weight: 2)" in message


# k-core


def _kcore_events() -> dict[str, list]:
    """u1, u2 x A, B is the 2-core; reaching it takes four rounds of removal."""
    pairs = [
        ("u1", "A"),
        ("u1", "B"),
        ("u2", "A"),
        ("u2", "B"),
        ("u3", "B"),
        ("u3", "C"),
        ("u4", "C"),
        ("u4", "D"),
        ("u4", "D"),  # bought twice: still one user for D
        ("u5", "E"),
        ("u5", "E"),
        ("u5", "E"),
        ("u1", "A"),  # a repeat inside the core stays
    ]
    return {
        "user_id": [u for u, _ in pairs],
        "item_id": [i for _, i in pairs],
        "timestamp": list(range(len(pairs))),  # all distinct: no duplicates
    }


def test_k_core_is_iterated_to_a_fixed_point(tmp_path):
    path = _write(_kcore_events(), tmp_path, "csv")
    events, report = load_events(
        path, cleaning=Cleaning(min_user_interactions=2, min_item_interactions=2)
    )
    # Round 1 drops D (one user) and u5/E; then u4 (only C left), C (only u3), u3 (only B).
    assert report.dropped["k-core (users >= 2, items >= 2)"] == 8
    assert report.rows_kept == 5
    assert events.users.ids.tolist() == ["u1", "u2"]
    assert events.items.ids.tolist() == ["A", "B"]
    data = interactions_from_events(events)
    assert data.matrix.toarray().tolist() == [[2, 1], [1, 1]]


def test_k_core_on_one_side(tmp_path):
    path = _write(_kcore_events(), tmp_path, "csv")
    _, users_only = load_events(path, cleaning=Cleaning(min_user_interactions=2))
    assert users_only.dropped == {
        "missing user or item": 0,
        "duplicate rows": 0,
        "k-core (users >= 2, items >= 1)": 3,  # u5's three rows
    }
    assert users_only.n_items == 4


def _core_by_hand(pairs: set, min_user: int, min_item: int) -> set:
    """The k-core by the definition: remove failing users and items one at a time."""
    pairs = set(pairs)
    while True:
        users: dict = {}
        items: dict = {}
        for u, i in pairs:
            users.setdefault(u, set()).add(i)
            items.setdefault(i, set()).add(u)
        bad = {(u, i) for u, i in pairs if len(users[u]) < min_user or len(items[i]) < min_item}
        if not bad:
            return pairs
        pairs -= bad


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), min_size=1, max_size=60),
    min_user=st.integers(1, 4),
    min_item=st.integers(1, 4),
)
def test_k_core_property(rows, min_user, min_item):
    users = [u for u, _ in rows]
    items = [i for _, i in rows]
    expected = _core_by_hand(set(rows), min_user, min_item)
    cleaning = Cleaning(
        drop_duplicates=False, min_user_interactions=min_user, min_item_interactions=min_item
    )
    with tempfile.TemporaryDirectory() as folder:
        path = write_table({"user_id": users, "item_id": items}, Path(folder) / "t.parquet")
        if not expected:
            with pytest.raises(DataError, match="no rows left"):
                load_events(path, cleaning=cleaning)
            return
        events, report = load_events(path, cleaning=cleaning)
    kept_users = events.users.external(events.user_codes).tolist()
    kept_items = events.items.external(events.item_codes).tolist()
    kept = set(zip(kept_users, kept_items, strict=True))
    for user in set(kept_users):
        assert len({i for u, i in kept if u == user}) >= min_user
    for item in set(kept_items):
        assert len({u for u, i in kept if i == item}) >= min_item
    assert kept == expected  # and it is the largest such subset
    assert report.rows_kept == sum(1 for row in rows if row in expected)  # repeats stay
    assert events.users.ids.tolist() == sorted(set(kept_users))  # compact
    assert events.items.ids.tolist() == sorted(set(kept_items))


# Id maps and the fingerprint


def test_id_maps_are_compact_and_sorted(tmp_path):
    columns = {
        "user_id": ["zed", "amy", "bob", "amy", "cat"],
        "item_id": [5, 3, 9, 1, 3],
        "quantity": [1, 1, -1, 2, 0],
    }
    events, _ = load_events(_write(columns, tmp_path, "parquet"))
    assert events.users.ids.tolist() == ["amy", "zed"]  # bob and cat only had returns
    assert events.items.ids.tolist() == [1, 3, 5]  # 9 only in a dropped row
    assert events.users.external(events.user_codes).tolist() == ["zed", "amy", "amy"]
    assert events.items.external(events.item_codes).tolist() == [5, 3, 1]
    assert events.users.index(["amy", "bob"]).tolist() == [0, -1]


def test_float_ids_become_integers_and_fractions_are_refused(tmp_path):
    columns = {"CustomerID": [17850.0, 17850.0, 13047.0], "StockCode": ["85123A", "71053", "A"]}
    events, _ = load_events(_write(columns, tmp_path, "csv"), Columns("CustomerID", "StockCode"))
    assert events.users.ids.tolist() == [13047, 17850]
    assert events.users.ids.dtype == np.int64
    bad = {**columns, "CustomerID": [17850.0, 17850.5, 13047.0]}
    message = _error(
        _write(bad, tmp_path, "parquet", "bad"), columns=Columns("CustomerID", "StockCode")
    )
    assert "column 'CustomerID' has 17850.5 at row 2;" in message
    # In a CSV the same column is text as written: no id is changed, none refused.
    text, _ = load_events(_write(bad, tmp_path, "csv", "text"), Columns("CustomerID", "StockCode"))
    assert text.users.ids.tolist() == ["13047", "17850", "17850.5"]


def test_fingerprint(tmp_path):
    csv_path = _write(_dirty(), tmp_path, "csv")
    first = load_events(csv_path, cleaning=PRICE)[1].fingerprint
    assert len(first) == 16 and int(first, 16) >= 0
    assert load_events(csv_path, cleaning=PRICE)[1].fingerprint == first
    # The same rows in Parquet are the same dataset.
    assert load_events(_write(_dirty(), tmp_path, "parquet"), cleaning=PRICE)[1].fingerprint == (
        first
    )
    # A changed weight of a kept row is another dataset ...
    changed = _dirty()
    changed["quantity"] = pa.array([2, 1, 1, 1, -1, 0, 3, 2, -5, 4, 1], pa.int64())
    assert load_events(_write(changed, tmp_path, "csv", "w"), cleaning=PRICE)[1].fingerprint != (
        first
    )
    # ... a changed dropped row is not (row 9 has no user), nor is a longer dropped id.
    changed = _dirty()
    changed["item_id"] = pa.array(["A", "B", "A", "", "A", "C", "D", "A", "XYZZY", "C", "B"])
    assert load_events(_write(changed, tmp_path, "csv", "d"), cleaning=PRICE)[1].fingerprint == (
        first
    )
    # Other cleaning, other dataset.
    assert load_events(csv_path)[1].fingerprint != first


def test_read_interactions_applies_the_cleaning(tmp_path):
    path = _write(_dirty(), tmp_path, "csv")
    data = read_interactions(path, Columns(), PRICE)
    assert (data.n_users, data.n_items, data.nnz) == (2, 3, 3)
    events, _ = load_events(path, cleaning=PRICE)
    assert (data.matrix != interactions_from_events(events).matrix).nnz == 0


def test_report_is_a_value(tmp_path):
    _, loaded = load_events(_write(_dirty(), tmp_path, "csv"))
    plain = loaded.as_dict()
    assert plain["rows_read"] == 11
    assert list(plain["dropped"]) == list(loaded.dropped)
    assert plain["weight_column"] == "quantity"
    assert json.loads(json.dumps(plain)) == plain
    report = LoadReport("p", 2, {"duplicate rows": 1}, 1, 1, 1, "0" * 16)
    assert report == LoadReport("p", 2, {"duplicate rows": 1}, 1, 1, 1, "0" * 16)
    assert hash(report) == hash(LoadReport("p", 2, {}, 1, 1, 1, "0" * 16))


# Bad data: one line naming the file and the column, row or line


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_column(tmp_path, fmt):
    path = _write({"customer": [1], "item_id": ["A"]}, tmp_path, fmt)
    message = _error(path)
    assert "no column 'user_id'; the file has 'customer', 'item_id'" in message


def test_missing_named_time_column(tmp_path):
    path = _write({"user_id": [1], "item_id": ["A"]}, tmp_path, "parquet")
    assert "no column 'when'" in _error(path, columns=Columns(time="when"))


def test_unparsable_date_names_column_value_and_line(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "CustomerID,StockCode,InvoiceDate\n"
        "17850,85123A,2010-12-01 08:26:00\n"
        "17850,71053,2010-12-01 08:26:00\n"
        "13047,22752,01/12/2010 08:34\n"
    )
    message = _error(path, columns=Columns("CustomerID", "StockCode", time="InvoiceDate"))
    assert "column 'InvoiceDate'" in message
    assert "'01/12/2010 08:34'" in message
    assert "row 3 (line 4)" in message


def test_unparsable_date_in_a_dropped_row_is_still_an_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id,timestamp\n1,A,2025-03-01\n,B,soon\n")
    assert "cannot read 'soon' at row 2 (line 3)" in _error(path)


def test_unparsable_date_in_parquet_names_the_row(tmp_path):
    columns = {
        "user_id": [1, 2],
        "item_id": ["A", "B"],
        "timestamp": pa.array(["2025-03-01 10:00:00", "yesterday"], pa.string()),
    }
    message = _error(_write(columns, tmp_path, "parquet"))
    assert "column 'timestamp': cannot read 'yesterday' at row 2" in message


@pytest.mark.parametrize("name", ["orders.xlsx", "orders.json", "orders"])
def test_a_file_that_is_neither_csv_nor_parquet(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04 not a spreadsheet we read")
    message = _error(path)
    assert "unknown file type; expected .csv, .csv.gz or .parquet" in message


def test_csv_text_with_a_parquet_suffix(tmp_path):
    path = tmp_path / "orders.parquet"
    path.write_text("user_id,item_id\n1,A\n" * 50)
    assert "not a readable PARQUET file" in _error(path)


# Presets and catalogues


def test_presets():
    assert set(PRESETS) == {"movielens", "online-retail"}
    movielens = get_preset("movielens")
    assert movielens.columns == Columns("userId", "movieId", "rating", "timestamp")
    assert movielens.catalog_file == "movies.csv"
    assert movielens.catalog_renames == {"genres": "category"}
    retail = get_preset("online-retail")
    assert retail.columns == Columns("CustomerID", "StockCode", "Quantity", "InvoiceDate")
    assert retail.require_positive == ("UnitPrice",)
    assert retail.catalog_file == ""
    assert all(preset.description for preset in PRESETS.values())


def test_unknown_preset_lists_the_presets():
    with pytest.raises(
        ParameterError, match=r"unknown preset 'imdb'; the presets are: movielens, "
    ):
        get_preset("imdb")


def test_cleaning_for_adds_the_preset_columns():
    retail = get_preset("online-retail")
    assert cleaning_for(retail).require_positive == ("UnitPrice",)
    both = cleaning_for(retail, Cleaning(min_weight=2, require_positive=("Cost", "UnitPrice")))
    assert both.require_positive == ("Cost", "UnitPrice")
    assert both.min_weight == 2
    assert cleaning_for(None, Cleaning(min_weight=4)) == Cleaning(min_weight=4)


def _movielens_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "1,1,4.0,964982703\n1,3,4.0,964981247\n2,1,5.0,964982224\n2,7,2.0,964982931\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        '1,Toy Story (1995),Adventure|Animation\n3,"Grumpier Old Men (1995)",\n'
        "3,Grumpier Old Men (1995),Comedy|Romance\n99,Other,Drama\n"
    )
    return folder / "ratings.csv"


def test_movielens_preset_on_a_small_copy(tmp_path):
    preset = get_preset("movielens")
    ratings = _movielens_folder(tmp_path)
    events, report = load_events(ratings, preset.columns, cleaning_for(preset))
    assert (report.rows_kept, report.n_users, report.n_items) == (4, 2, 3)
    attributes, path = catalog_for(preset, ratings, events.items)
    assert path == ratings.parent / "movies.csv"
    assert set(attributes) == {"title", "category"}
    # Movie 3's first genres are empty: the first non-empty value wins. Movie 7 is unlisted.
    assert attributes["category"].tolist() == ["Adventure|Animation", "Comedy|Romance", ""]
    assert attributes["title"].tolist()[:2] == ["Toy Story (1995)", "Grumpier Old Men (1995)"]
    events4, _ = load_events(ratings, preset.columns, Cleaning(min_weight=4))
    assert events4.items.ids.tolist() == [1, 3]


def test_online_retail_preset_on_a_small_copy(tmp_path):
    preset = get_preset("online-retail")
    columns = {
        "InvoiceNo": ["536365", "536365", "C536379", "536380", "536381", "536382"],
        "StockCode": ["85123A", "71053", "85123A", "85123A", "22752", "71053"],
        "Description": pa.array(
            [None, "WHITE METAL LANTERN", "CANCELLED", "WHITE HANGING HEART", "SET 7", "LAMP"]
        ),
        "Quantity": [6, 6, -1, 2, 3, 1],
        "InvoiceDate": pa.array(
            [
                "2010-12-01 08:26:00",
                "2010-12-01 08:26:00",
                "2010-12-01 09:41:00",
                "2010-12-01 09:45:00",
                "2010-12-01 09:50:00",
                "2010-12-01 10:00:00",
            ],
            pa.string(),
        ),
        "UnitPrice": [2.55, 3.39, 2.55, 2.55, 0.0, 3.39],
        "CustomerID": [17850.0, 17850.0, 17850.0, np.nan, 13047.0, 13047.0],
        "Country": ["United Kingdom"] * 6,
    }
    data_path = _write(columns, tmp_path, "parquet", "online_retail")
    events, report = load_events(data_path, preset.columns, cleaning_for(preset))
    assert report.dropped == {
        "missing user or item": 1,
        "non-positive weight": 1,
        "non-positive UnitPrice": 1,
        "duplicate rows": 0,
    }
    assert events.users.ids.tolist() == [13047, 17850]
    assert events.items.ids.tolist() == ["71053", "85123A"]
    attributes, path = catalog_for(preset, data_path, events.items)
    assert path == data_path
    # The first non-empty Description of each StockCode, from every row of the file.
    assert attributes == {"Description": attributes["Description"]}
    assert attributes["Description"].tolist() == ["WHITE METAL LANTERN", "CANCELLED"]


def test_catalog_for_without_or_with_an_absent_catalogue(tmp_path):
    items = IdMap(np.array([1, 3]), np.arange(2))
    ratings = _movielens_folder(tmp_path)
    assert catalog_for(None, ratings, items) == ({}, None)
    (ratings.parent / "movies.csv").unlink()
    assert catalog_for(get_preset("movielens"), ratings, items) == ({}, None)


def test_catalog_for_defaults_to_items_beside_the_data(tmp_path):
    items = IdMap(np.array(["A", "B"]), np.arange(2))
    data = _write({"user_id": [1], "item_id": ["A"]}, tmp_path, "parquet", "orders")
    assert default_catalog_path(data) == tmp_path / "items.parquet"
    assert default_catalog_path(tmp_path / "orders.csv.gz") == tmp_path / "items.csv"
    assert catalog_for(None, data, items) == ({}, None)
    catalogue = _write({"item_id": ["B"], "category": ["toys"]}, tmp_path, "parquet", "items")
    attributes, path = catalog_for(None, data, items)
    assert path == catalogue
    assert attributes["category"].tolist() == ["", "toys"]


def test_catalog_for_an_explicit_file_with_a_preset(tmp_path):
    items = IdMap(np.array([1, 2]), np.arange(2))
    other = _write({"movieId": [2], "genres": ["Drama"], "year": [1999]}, tmp_path, "csv", "m")
    attributes, path = catalog_for(get_preset("movielens"), tmp_path / "r.csv", items, other)
    assert path == other
    assert attributes["category"].tolist() == ["", "Drama"]  # keyed by movieId, renamed
    assert attributes["year"].tolist() == ["", "1999"]


def test_catalog_for_an_explicit_file(tmp_path):
    items = IdMap(np.array(["A", "B"]), np.arange(2))
    catalogue = _write({"sku": ["B", "A", "A"], "brand": ["x", "", "y"]}, tmp_path, "csv", "items")
    attributes, path = catalog_for(None, tmp_path / "t.csv", items, catalogue, item_column="sku")
    assert path == catalogue
    assert attributes["brand"].tolist() == ["y", "x"]
    with pytest.raises(DataError, match="no such file"):
        catalog_for(None, tmp_path / "t.csv", items, tmp_path / "none.csv")


# The real datasets (skipped where ../shared/data is absent)


@pytest.mark.slow
def test_online_retail(shared_data):
    path = shared_data / "online-retail" / "online_retail.parquet"
    preset = get_preset("online-retail")
    events, report = load_events(path, preset.columns, cleaning_for(preset))
    assert report.rows_read == 541_909
    assert report.dropped == {
        "missing user or item": 135_080,
        "non-positive weight": 8_905,
        "non-positive UnitPrice": 40,
        "duplicate rows": 5_234,
    }
    assert report.rows_kept == 392_650
    data = interactions_from_events(events)
    assert (data.n_users, data.n_items, data.nnz) == (4_338, 3_665, 266_792)
    assert events.users.ids.dtype == np.int64
    assert events.users.index([17850]).tolist() != [-1]
    attributes, catalogue = catalog_for(preset, path, events.items)
    assert catalogue == path
    assert np.all(attributes["Description"] != "")
    index = events.items.index(["85123A"])[0]
    assert attributes["Description"][index] == "WHITE HANGING HEART T-LIGHT HOLDER"


@pytest.mark.slow
def test_movielens_small(shared_data):
    path = shared_data / "ml-latest-small" / "ratings.csv"
    preset = get_preset("movielens")
    events, report = load_events(path, preset.columns, cleaning_for(preset))
    assert report.rows_read == report.rows_kept == 100_836
    assert (report.n_users, report.n_items) == (610, 9_724)
    assert sum(report.dropped.values()) == 0
    _, report4 = load_events(path, preset.columns, Cleaning(min_weight=4))
    assert report4.rows_kept == 48_580
    assert report4.dropped["below min weight 4"] == 100_836 - 48_580
    attributes, catalogue = catalog_for(preset, path, events.items)
    assert catalogue == path.parent / "movies.csv"
    assert set(attributes) == {"title", "category"}
    assert attributes["category"].shape == (9_724,)
    assert np.all(attributes["category"] != "")
    assert attributes["category"][events.items.index([1])[0]] == (
        "Adventure|Animation|Children|Comedy|Fantasy"
    )


def test_csv_ids_that_turn_to_text_after_the_first_block(tmp_path):
    """Numeric-looking stock codes for a megabyte, then "85123A": the column is text throughout."""
    path = tmp_path / "t.csv"
    lines = [f"{n % 97},{n % 5000}" for n in range(200_000)]
    path.write_text("user_id,item_id\n" + "\n".join(lines) + "\n7,85123A\n")
    events, report = load_events(path, cleaning=Cleaning(drop_duplicates=False))
    assert events.items.kind == "str"
    assert report.n_items == 5001
    assert events.items.external(events.item_codes[-1:]).tolist() == ["85123A"]
    assert events.users.kind == "int"
