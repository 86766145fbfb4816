"""The Python API from a notebook: data from matrices, arrays and tables, own splits, scores."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

import growthrec
from growthrec import (
    Columns,
    DataError,
    ParameterError,
    basket_scores,
    build_interactions,
    evaluate_backend,
    evaluate_model,
    events_from_table,
    fit_model,
    interactions_from_matrix,
    interactions_from_table,
    load_model,
    read_interactions,
    recommend,
    recommend_baskets,
    save_model,
    scores,
    split_from_parts,
    split_leave_one_out,
    user_indices,
)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# A scipy sparse (or dense) matrix.
# ---------------------------------------------------------------------------------------------
def test_matrix_ids_default_to_positions_and_duplicates_are_summed():
    coo = sp.coo_matrix(([1, 2, 3, 1], ([0, 0, 1, 0], [1, 1, 2, 0])), shape=(3, 4))
    data = interactions_from_matrix(coo)
    np.testing.assert_array_equal(data.matrix.toarray(), [[1, 3, 0, 0], [0, 0, 3, 0], [0] * 4])
    assert data.matrix.dtype == np.float32 and data.matrix.format == "csr"
    assert data.matrix.has_canonical_format
    np.testing.assert_array_equal(data.users.ids, [0, 1, 2])
    np.testing.assert_array_equal(data.items.ids, [0, 1, 2, 3])
    assert data.timestamps is None


def test_matrix_ids_name_rows_and_columns_in_the_order_given():
    dense = np.array([[0, 2, 0], [1, 0, 0]])
    data = interactions_from_matrix(dense, user_ids=["zoe", "amy"], item_ids=[30, 10, 20])
    np.testing.assert_array_equal(data.users.ids, ["zoe", "amy"])  # not re-sorted
    np.testing.assert_array_equal(data.users.index(["amy", "zoe", "bob"]), [1, 0, -1])
    np.testing.assert_array_equal(data.items.index([10, 20, 30]), [1, 2, 0])
    np.testing.assert_array_equal(data.matrix.toarray(), dense)


def test_matrix_passed_in_is_not_modified():
    csr = sp.csr_matrix(
        (np.array([2.0, 0.0, 1.0]), np.array([2, 0, 1]), np.array([0, 3])), shape=(1, 3)
    )
    before = (csr.data.copy(), csr.indices.copy(), csr.indptr.copy())
    data = interactions_from_matrix(csr)
    for array, saved in zip((csr.data, csr.indices, csr.indptr), before, strict=True):
        np.testing.assert_array_equal(array, saved)
    assert data.matrix.indices.tolist() == [1, 2]  # the stored zero is dropped, columns sorted


def test_boolean_and_sparse_array_inputs():
    data = interactions_from_matrix(sp.csr_array(np.array([[True, False], [True, True]])))
    np.testing.assert_array_equal(data.matrix.toarray(), [[1, 0], [1, 1]])


@pytest.mark.parametrize(
    ("matrix", "ids", "message"),
    [
        (np.array([[1, -2]]), {}, "matrix: negative value -2 at [0, 1]"),
        (np.array([[1.0, np.nan]]), {}, "matrix: non-finite value nan at [0, 1]"),
        (np.array([[1e39]]), {}, "matrix: value 1e+39 at [0, 0] does not fit in float32"),
        (np.zeros((2, 2)), {}, "matrix: no interactions (shape (2, 2), every value is zero)"),
        (np.ones(3), {}, "matrix: expected a 2-D users x items matrix, got shape (3,)"),
        (np.array([["a"]]), {}, "matrix: values must be numbers, got dtype <U1"),
        (np.eye(2), {"user_ids": ["a"]}, "user_ids: expected 2 ids (one per matrix row), got 1"),
        (np.eye(3), {"item_ids": [5, 6, 5]}, "item_ids: id 5 names columns 0 and 2"),
        (np.eye(2), {"user_ids": ["a", None]}, "user_ids: missing id at index 1"),
    ],
)
def test_matrix_refusals_are_one_line(matrix, ids, message):
    with pytest.raises(DataError) as exc:
        interactions_from_matrix(matrix, **ids)
    assert message in one_line(exc)


def test_model_on_matrix_with_unsorted_ids_survives_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.3).astype(np.float32)
    dense[np.arange(30), np.arange(30) % 12] = 1  # nobody buys nothing
    users = [f"c{n:02d}" for n in range(30)][::-1]
    data = interactions_from_matrix(dense, users, list(range(100, 112))[::-1])
    model = fit_model(data, "svd", {"factors": 4}, seed=0)
    loaded = load_model(save_model(model, tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.train.users.ids, users)
    rows = user_indices(loaded, ["c07", "c29"])
    np.testing.assert_array_equal(rows, [22, 0])
    for a, b in zip(recommend(model, rows, k=3), recommend(loaded, rows, k=3), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Arrays of ids (build_interactions), as a pandas column hands them over.
# ---------------------------------------------------------------------------------------------
def test_object_ids_mixing_text_and_numbers_are_text_as_written():
    data = build_interactions(np.array(["007", 7, "a"], dtype=object), [1, 2, 3])
    np.testing.assert_array_equal(data.users.ids, ["007", "7", "a"])


def test_object_ids_of_whole_numbers_are_integers():
    data = build_interactions(np.array([17850.0, 3, np.int64(12)], dtype=object), [1, 2, 3])
    np.testing.assert_array_equal(data.users.ids, [3, 12, 17850])
    assert data.users.kind == "int"


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([1, None], "user ids: missing id at index 1"),
        ([1, float("nan")], "user ids: missing id at index 1"),
        ([1, 2.5], "user ids: id 2.5 at index 1 is not a whole number"),
        ([1, b"x"], "user ids: id b'x' at index 1 is bytes; ids must be strings or integers"),
        (["a", True], "user ids: id True at index 1 is bool"),
        ([1, 2**70], "user ids: an id does not fit in a 64-bit integer"),
    ],
)
def test_object_id_refusals(ids, message):
    with pytest.raises(DataError) as exc:
        build_interactions(np.array(ids, dtype=object), [1, 2])
    assert message in one_line(exc)


def test_datetime64_timestamps_become_unix_seconds():
    when = np.array(["2025-01-01T00:00:01", "2025-01-02"], dtype="datetime64[ns]")
    data = build_interactions([1, 1], ["a", "b"], timestamps=when)
    np.testing.assert_array_equal(data.timestamps, [1_735_689_601.0, 1_735_776_000.0])
    with pytest.raises(DataError) as exc:
        build_interactions([1, 1], ["a", "b"], timestamps=np.array(["2025-01-01", "NaT"], "M8[s]"))
    assert one_line(exc) == "timestamps: missing time (NaT) at index 1"


# ---------------------------------------------------------------------------------------------
# Tables: pyarrow, pandas, polars (duck-typed) and dicts of columns.
# ---------------------------------------------------------------------------------------------
def shop_table() -> pa.Table:
    return pa.table(
        {
            "customer": ["007", "7", "a", "007", "7"],
            "sku": [10, 20, 30, 10, 10],
            "quantity": [1, 2, 3, 4, 1],
            "timestamp": pa.array(
                np.array(
                    ["2025-01-01", "2025-01-02", "2025-01-03", "2025-02-01", "2025-01-05"],
                    dtype="datetime64[s]",
                )
            ),
        }
    )


def test_table_equals_the_same_rows_read_from_parquet(tmp_path):
    table = shop_table()
    pq.write_table(table, tmp_path / "t.parquet")
    columns = Columns(user="customer", item="sku")
    from_table = interactions_from_table(table, columns)
    from_file = read_interactions(tmp_path / "t.parquet", columns)
    np.testing.assert_array_equal(from_table.users.ids, ["007", "7", "a"])  # ids as written
    np.testing.assert_array_equal(from_table.users.ids, from_file.users.ids)
    np.testing.assert_array_equal(from_table.items.ids, from_file.items.ids)
    np.testing.assert_array_equal(from_table.matrix.toarray(), from_file.matrix.toarray())
    np.testing.assert_array_equal(from_table.timestamps, from_file.timestamps)
    # 007 bought sku 10 twice: 1 + 4 units, latest on 2025-02-01 (quantity/timestamp found)
    assert from_table.matrix[0, 0] == 5
    assert from_table.timestamps[0] == 1_738_368_000


def test_table_of_whole_float_ids_has_integer_ids_like_the_loader():
    data = interactions_from_table({"user_id": [17850.0, 3.0], "item_id": ["x", "y"]})
    np.testing.assert_array_equal(data.users.ids, [3, 17850])
    assert data.users.kind == "int"


def test_events_from_table_feed_a_temporal_split():
    events = events_from_table(shop_table(), Columns(user="customer", item="sku"))
    assert len(events) == 5
    cutoff = 1_735_948_800  # 2025-01-04: customer 7's sku 10 and 007's repeat come after
    split = growthrec.make_split(events, growthrec.Protocol("temporal", cutoff=cutoff))
    held = split.test.nonzero()
    assert split.train.users.external(held[0]).tolist() == ["7"]
    assert split.train.items.external(held[1]).tolist() == [10]
    assert split.counts["repeat_pairs_after_cutoff"] == 1  # 007 bought sku 10 before


class PolarsLike:
    """What growthrec needs of a polars DataFrame: ``to_arrow()``."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def to_arrow(self) -> pa.Table:
        # polars hands over text as string_view
        return self.table.set_column(
            0, "customer", self.table.column("customer").cast(pa.string_view())
        )


def test_polars_like_frame_through_to_arrow():
    columns = Columns(user="customer", item="sku")
    data = interactions_from_table(PolarsLike(shop_table()), columns)
    expected = interactions_from_table(shop_table(), columns)
    np.testing.assert_array_equal(data.users.ids, expected.users.ids)
    np.testing.assert_array_equal(data.matrix.toarray(), expected.matrix.toarray())


def test_pandas_frame_gives_what_its_arrow_table_gives():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "customer": ["007", "7", "a", "007", "7"],
            "sku": pd.Categorical(["x", "y", "z", "x", "x"]),
            "qty": [1.0, 2.0, 3.0, 4.0, 1.0],
            "when": pd.to_datetime(
                ["2025-01-01", "2025-01-02", "2025-01-03", "2025-02-01", "2025-01-05"]
            ),
        },
        index=[10, 11, 12, 13, 14],
    )
    columns = Columns(user="customer", item="sku", weight="qty", time="when")
    data = interactions_from_table(frame, columns)
    np.testing.assert_array_equal(data.users.ids, ["007", "7", "a"])
    np.testing.assert_array_equal(data.items.ids, ["x", "y", "z"])
    np.testing.assert_array_equal(data.matrix.toarray(), [[5, 0, 0], [1, 2, 0], [0, 0, 3]])
    assert data.timestamps.tolist() == [1_738_368_000, 1_736_035_200, 1_735_776_000, 1_735_862_400]
    with pytest.raises(DataError) as exc:
        interactions_from_table(frame.assign(customer=["a", None, "b", "c", "d"]), columns)
    assert one_line(exc) == "table: column 'customer' is empty at row 2"


@pytest.mark.parametrize(
    ("table", "columns", "message"),
    [
        (
            {"user_id": [1, 2]},
            Columns(),
            "table has no column 'item_id' (its columns: 'user_id'); name the columns with "
            "Columns(user=..., item=..., weight=..., time=...)",
        ),
        (
            {"user_id": [1, None], "item_id": [1, 2]},
            Columns(),
            "table: column 'user_id' is empty at row 2",
        ),
        (
            {"user_id": ["a", ""], "item_id": [1, 2]},
            Columns(),
            "table: column 'user_id' is empty at row 2",
        ),
        (
            {"user_id": [1, 2], "item_id": [1.0, 2.5]},
            Columns(),
            "table: column 'item_id' has 2.5 at row 2; ids must be text or whole numbers",
        ),
        (
            {"user_id": [True, False], "item_id": [1, 2]},
            Columns(),
            "table: column 'user_id' has type bool; ids must be text or integers",
        ),
        (
            {"user_id": [1, 2], "item_id": [1, 2], "quantity": [1, -3]},
            Columns(),
            "table: column 'quantity' has -3 at row 2; weights must be finite and not negative",
        ),
        (
            {"user_id": [1, 2], "item_id": [1, 2], "w": [1, None]},
            Columns(weight="w"),
            "table: column 'w' is empty at row 2",
        ),
        (
            {"user_id": [1, 2], "item_id": [1, 2], "timestamp": ["2025-01-01", "soon"]},
            Columns(),
            "table: column 'timestamp': cannot read 'soon' at row 2",
        ),
        (pa.table({"user_id": pa.array([], pa.int64())}), Columns(), "table: no rows"),
        ([1, 2, 3], Columns(), "table: cannot read a list as a table"),
    ],
)
def test_table_refusals_name_column_and_row(table, columns, message):
    with pytest.raises(DataError) as exc:
        interactions_from_table(table, columns)
    assert message in one_line(exc)


# ---------------------------------------------------------------------------------------------
# Own splits.
# ---------------------------------------------------------------------------------------------
def test_given_parts_evaluate_exactly_like_the_split_they_came_from(small_shop):
    split = split_leave_one_out(small_shop, seed=0)
    given = split_from_parts(split.train.matrix, split.test)
    assert given.protocol == "given"
    assert given.n_train_only == split.n_train_only
    ours = evaluate_backend(given, "svd", {"factors": 8}, ks=(5, 10), seed=0)
    reference = evaluate_backend(split, "svd", {"factors": 8}, ks=(5, 10), seed=0)
    assert ours.metrics == reference.metrics
    assert ours.n_users == reference.n_users == split.n_test_users
    model = fit_model(split.train, "svd", {"factors": 8}, seed=0)
    with_ids = split_from_parts(split.train, split.test)
    assert evaluate_model(model, with_ids.test, (5, 10))[1] == reference.metrics


def test_given_interactions_are_mapped_onto_train_ids():
    train = build_interactions(["a", "a", "b"], ["x", "y", "y"])
    test = build_interactions(["b", "a", "c"], ["x", "z", "x"])
    split = split_from_parts(train, test, protocol="last week")
    assert split.protocol == "last week"
    np.testing.assert_array_equal(split.train.items.ids, ["x", "y", "z"])  # z: nobody in train
    np.testing.assert_array_equal(split.train.matrix.toarray(), [[1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(split.test.toarray(), [[0, 0, 1], [1, 0, 0]])
    assert split.counts == {"customers_only_in_test": 1, "test_pairs_with_items_not_in_train": 1}
    assert split.n_train_only == 0


def test_given_matrix_rows_without_train_purchases_are_left_out_and_counted():
    train = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 1]])
    test = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    split = split_from_parts(sp.csr_matrix(train), test)
    np.testing.assert_array_equal(split.test.toarray(), [[0, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert split.counts["customers_only_in_test"] == 1
    assert split.n_test_users == 2


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        (
            np.eye(3),
            np.eye(3)[:, :2],
            "test: the matrix is 3 x 2 but train has 3 x 3 (customers x items)",
        ),
        (
            np.array([[1, 1], [0, 1]]),
            np.array([[0, 0], [1, 1]]),
            "train and test share 1 customer-item pair(s) (first: customer 1, item 1); a "
            "held-out pair must not be in train",
        ),
        (np.eye(2), np.zeros((2, 2)), "test: matrix: no interactions"),
        (np.eye(2), -np.eye(2), "test: matrix: negative value -1 at [0, 0]"),
        (
            build_interactions(["a"], ["x"]),
            build_interactions([1], ["x"]),
            "train user ids are text but test user ids are integers; build both parts the same way",
        ),
        (
            build_interactions(["a", "b"], ["x", "x"]),
            build_interactions(["c"], ["x"]),
            "test: no held-out pair belongs to a customer with train purchases",
        ),
    ],
)
def test_given_split_refusals(train, test, message):
    with pytest.raises(DataError) as exc:
        split_from_parts(train, test)
    assert message in one_line(exc)


def test_given_split_protocol_must_be_text():
    with pytest.raises(ParameterError, match="protocol=''"):
        split_from_parts(np.eye(2), np.eye(2)[::-1], protocol="")


# ---------------------------------------------------------------------------------------------
# Scores.
# ---------------------------------------------------------------------------------------------
BACKENDS = [("svd", {"factors": 6}), ("popularity", {}), ("itemknn", {}), ("ease", {})]


@pytest.mark.parametrize(("backend", "params"), BACKENDS)
def test_scores_are_the_numbers_recommend_ranks(small_shop, backend, params):
    model = fit_model(small_shop, backend, params, weighting="log1p", seed=0)
    users = np.array([3, 0, 150])
    values = scores(model, users, exclude_seen=True)
    assert values.shape == (3, small_shop.n_items) and values.dtype == np.float32
    assert values.flags.writeable and values.flags.owndata and values.flags.c_contiguous
    items, top = recommend(model, users, k=5)
    np.testing.assert_allclose(np.take_along_axis(values, items, axis=1), top, rtol=1e-5)
    np.testing.assert_allclose(-np.sort(-values, axis=1)[:, :5], top, rtol=1e-5)
    bought = small_shop.matrix[users].toarray() > 0
    assert np.all(np.isneginf(values[bought])) and np.all(np.isfinite(values[~bought]))
    values[:] = 0  # writable, and nothing of the model changed
    np.testing.assert_array_equal(recommend(model, users, k=5)[1], top)


def test_scores_apply_the_models_weighting(small_shop):
    model = fit_model(small_shop, "svd", {"factors": 6}, weighting="count", seed=0)
    factors = model.arrays["item_factors"]
    user = int(np.argmax(small_shop.matrix.max(axis=1).toarray()))
    row = small_shop.matrix[[user]].toarray()
    assert row.max() > 1  # repeat purchases: count differs from binary
    expected = row @ factors @ factors.T
    np.testing.assert_allclose(scores(model, [user]), expected, rtol=1e-4, atol=1e-6)
    binary = (row > 0) @ factors @ factors.T
    assert not np.allclose(scores(model, [user]), binary, rtol=1e-3)


def test_basket_scores_fold_in_like_recommend_baskets(small_shop):
    model = fit_model(small_shop, "svd", {"factors": 6}, seed=0)
    bought = list(small_shop.items.external(small_shop.matrix[4].indices))
    values = basket_scores(model, [bought, bought[:1]])
    # svd scores a known customer from their row, so their basket scores the same
    np.testing.assert_allclose(values[0], scores(model, [4])[0], rtol=1e-5, atol=1e-6)
    items, top = recommend_baskets(model, [bought[:1]], k=4)
    masked = basket_scores(model, [bought[:1]], exclude_seen=True)
    np.testing.assert_allclose(np.take_along_axis(masked, items, axis=1), top, rtol=1e-5)
    with pytest.raises(DataError, match="item NOPE is not in the model's catalogue"):
        basket_scores(model, [["NOPE"]])


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([0, 200], "users: row index 200 is outside 0..199"),
        ([-1], "users: row index -1 is outside 0..199"),
        ([0.5], "users: expected a 1-D sequence of training row indices (integers)"),
        ([[0]], "got shape (1, 1)"),
    ],
)
def test_scores_refuse_what_is_not_a_row_index(small_shop, users, message):
    model = fit_model(small_shop, "popularity")
    with pytest.raises(ParameterError) as exc:
        scores(model, users)
    assert message in one_line(exc)


def test_scores_of_no_customers_is_an_empty_array(small_shop):
    model = fit_model(small_shop, "popularity")
    assert scores(model, []).shape == (0, small_shop.n_items)
