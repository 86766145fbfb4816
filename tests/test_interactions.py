"""The interaction matrix and its id maps: building, id handling, baskets and bad input."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core import IdMap, build_interactions, factorize, rows_from_baskets
from growthrec.core import interactions as interactions_module
from growthrec.core.interactions import column_counts
from growthrec.errors import DataError


def dense(m: sp.csr_matrix) -> np.ndarray:
    return m.toarray()


def assert_canonical_float32_csr(m: sp.csr_matrix) -> None:
    assert sp.issparse(m) and m.format == "csr"
    assert m.dtype == np.float32
    m.check_format(full_check=True)
    for u in range(m.shape[0]):
        row = m.indices[m.indptr[u] : m.indptr[u + 1]]
        assert (np.diff(row) > 0).all()  # sorted, no duplicate pair
    assert m.has_sorted_indices and m.has_canonical_format
    assert (m.data != 0).all()


# ---------------------------------------------------------------------------------------------
# build_interactions by hand.
# ---------------------------------------------------------------------------------------------
def test_duplicates_are_summed():
    #   (bob, tea) 2 + 3 = 5, (bob, cake) 1, (amy, tea) 4, (amy, jam) 1 + 0 + 1 + 1 = 3
    data = build_interactions(
        ["bob", "amy", "bob", "amy", "bob", "amy", "amy", "amy"],
        ["tea", "tea", "tea", "jam", "cake", "jam", "jam", "jam"],
        weights=[2, 4, 3, 1, 1, 0, 1, 1],
    )
    np.testing.assert_array_equal(data.users.ids, ["amy", "bob"])
    np.testing.assert_array_equal(data.items.ids, ["cake", "jam", "tea"])
    np.testing.assert_array_equal(dense(data.matrix), [[0, 3, 4], [1, 0, 5]])
    assert_canonical_float32_csr(data.matrix)
    assert (data.n_users, data.n_items, data.nnz) == (2, 3, 4)
    assert data.density == pytest.approx(4 / 6)
    assert data.timestamps is None


def test_default_weight_is_one_per_event():
    data = build_interactions([1, 1, 1, 2], [7, 7, 8, 7])
    np.testing.assert_array_equal(dense(data.matrix), [[2, 1], [1, 0]])
    assert_canonical_float32_csr(data.matrix)


def test_fractional_weights_are_summed_exactly_enough():
    data = build_interactions(["a"] * 3, ["x"] * 3, weights=[0.1, 0.2, 0.7])
    assert data.matrix.data.tolist() == [pytest.approx(1.0, abs=1e-6)]


def test_indices_sorted_even_from_shuffled_events():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 30, 500)
    items = rng.integers(0, 50, 500)
    data = build_interactions(users, items)
    assert_canonical_float32_csr(data.matrix)
    expected = np.zeros((len(data.users), len(data.items)))
    np.add.at(
        expected,
        (np.searchsorted(data.users.ids, users), np.searchsorted(data.items.ids, items)),
        1,
    )
    np.testing.assert_array_equal(dense(data.matrix), expected)


def test_latest_timestamp_per_pair_aligned_with_data():
    # (a, x) at 5, 9, 1 -> 9; (a, y) at 3; (b, x) at 20, 2 -> 20; (c, y) at 7.
    data = build_interactions(
        ["b", "a", "a", "c", "a", "b", "a"],
        ["x", "x", "y", "y", "x", "x", "x"],
        timestamps=[20, 5, 3, 7, 9, 2, 1],
    )
    np.testing.assert_array_equal(dense(data.matrix), [[3, 1], [2, 0], [0, 1]])
    # Entries in CSR order: (a,x) (a,y) (b,x) (c,y).
    np.testing.assert_array_equal(data.timestamps, [9.0, 3.0, 20.0, 7.0])
    assert data.timestamps.dtype == np.float64


def test_zero_sum_pairs_are_dropped_and_timestamps_stay_aligned():
    # (a, x) weighs 0 in total and goes; its ids stay in the maps.
    data = build_interactions(
        ["a", "a", "a", "b", "b"],
        ["x", "x", "y", "x", "z"],
        weights=[0, 0, 2, 1, 0],
        timestamps=[50, 60, 10, 20, 30],
    )
    np.testing.assert_array_equal(data.users.ids, ["a", "b"])
    np.testing.assert_array_equal(data.items.ids, ["x", "y", "z"])
    np.testing.assert_array_equal(dense(data.matrix), [[0, 2, 0], [1, 0, 0]])
    assert_canonical_float32_csr(data.matrix)
    np.testing.assert_array_equal(data.timestamps, [10.0, 20.0])


def test_random_timestamps_aligned_with_dropped_pairs():
    rng = np.random.default_rng(3)
    n = 400
    users = rng.integers(0, 20, n)
    items = rng.integers(0, 15, n)
    weights = rng.integers(0, 3, n) * (rng.random(n) < 0.5)
    times = rng.random(n) * 1000
    data = build_interactions(users, items, weights=weights, timestamps=times)
    total: dict[tuple[int, int], float] = {}
    latest: dict[tuple[int, int], float] = {}
    for u, i, w, t in zip(
        users.tolist(), items.tolist(), weights.tolist(), times.tolist(), strict=True
    ):
        total[(u, i)] = total.get((u, i), 0.0) + w
        latest[(u, i)] = max(latest.get((u, i), -1.0), t)
    expected = {pair: w for pair, w in total.items() if w != 0}
    assert len(expected) < len(total)  # some pairs really were dropped
    coo = data.matrix.tocoo()
    got_pairs = list(
        zip(
            data.users.external(coo.row).tolist(),
            data.items.external(coo.col).tolist(),
            strict=True,
        )
    )
    assert dict(zip(got_pairs, coo.data.tolist(), strict=True)) == expected
    assert data.timestamps.shape == (data.nnz,)
    for pair, t in zip(got_pairs, data.timestamps.tolist(), strict=True):
        assert t == latest[pair]


def test_given_id_maps_are_respected():
    users = IdMap.from_ids(np.array(["zoe", "amy", "max"]))  # not sorted; order kept
    items = IdMap.from_ids(np.array([30, 10, 20, 40]))
    data = build_interactions(["amy", "zoe", "amy"], [20, 30, 40], users=users, items=items)
    assert data.users is users and data.items is items
    assert data.matrix.shape == (3, 4)  # max and item 40 have rows/columns though unused by max
    np.testing.assert_array_equal(dense(data.matrix), [[1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]])
    assert_canonical_float32_csr(data.matrix)


def test_unknown_id_with_given_map_names_it():
    items = IdMap.from_ids(np.array(["x", "y"]))
    with pytest.raises(DataError, match=r"item id 'q' at index 1 is not in the given id map"):
        build_interactions(["a", "a"], ["x", "q"], items=items)
    users = IdMap.from_ids(np.array([1, 2]))
    with pytest.raises(DataError, match=r"user id 3 at index 2"):
        build_interactions([1, 2, 3], ["x", "y", "z"], users=users)


# ---------------------------------------------------------------------------------------------
# Ids: kinds, normalisation and the IdMap lookups.
# ---------------------------------------------------------------------------------------------
def test_integer_ids():
    data = build_interactions([300, 5, 300], [9, 9, 1])
    assert data.users.kind == "int" and data.items.kind == "int"
    assert data.users.ids.dtype == np.int64
    np.testing.assert_array_equal(data.users.ids, [5, 300])
    np.testing.assert_array_equal(dense(data.matrix), [[0, 1], [1, 1]])


def test_whole_float_ids_become_integers():
    # A CustomerID column read with NaNs elsewhere comes as floats: 17850.0 is customer 17850.
    data = build_interactions(np.array([17850.0, 12346.0, 17850.0]), np.array([1.0, 2.0, 2.0]))
    assert data.users.kind == "int"
    np.testing.assert_array_equal(data.users.ids, [12346, 17850])
    assert data.users.ids.dtype == np.int64
    np.testing.assert_array_equal(data.users.index([17850]), [1])
    np.testing.assert_array_equal(data.users.index(["17850"]), [1])


def test_string_ids_and_object_arrays():
    data = build_interactions(np.array(["u2", "u1"], dtype=object), ["85123A", "71053"])
    assert data.users.kind == "str" and data.items.kind == "str"
    np.testing.assert_array_equal(data.users.ids, ["u1", "u2"])
    np.testing.assert_array_equal(data.items.ids, ["71053", "85123A"])
    mixed = build_interactions(np.array([5, "x"], dtype=object), ["a", "b"])
    assert mixed.users.kind == "str"
    np.testing.assert_array_equal(mixed.users.ids, ["5", "x"])
    ints = build_interactions(np.array([5, 3], dtype=object), ["a", "b"])
    assert ints.users.kind == "int"
    np.testing.assert_array_equal(ints.users.ids, [3, 5])


def test_id_map_round_trip_and_unknown_ids():
    ids = np.array([42, 7, 1000, -3])
    m = IdMap.from_ids(ids)
    assert len(m) == 4 and m.kind == "int"
    np.testing.assert_array_equal(m.index(ids), [0, 1, 2, 3])
    np.testing.assert_array_equal(m.external(m.index(ids)), ids)
    np.testing.assert_array_equal(m.external([3, 0]), [-3, 42])
    np.testing.assert_array_equal(m.index([42, 8, -3, 0]), [0, -1, 3, -1])
    idx = m.index([42])
    assert idx.dtype == np.int64


def test_int_ids_queried_as_strings():
    m = IdMap.from_ids(np.array([42, 7, 17850]))
    np.testing.assert_array_equal(
        m.index(["42", " 7 ", "17850.0", "-42", "abc", "", "4.5", "nan", "inf"]),
        [0, -1, -1, -1, -1, -1, -1, -1, -1],
    )
    # Only an id's canonical text names it: these would read as 7 or 42 but are other ids.
    np.testing.assert_array_equal(
        m.index(["7", "007", "+7", "7 ", "7.0", "4_2", "42e0", "\u0667", "17850"]),
        [1, -1, -1, -1, -1, -1, -1, -1, 2],
    )
    np.testing.assert_array_equal(m.index(np.array([42.0, 7.5])), [0, -1])
    np.testing.assert_array_equal(m.index(np.array([None, 7], dtype=object)), [-1, 1])


def test_int_ids_as_strings_beyond_float_precision():
    # 2**53 + 1 is not a float64: parsing "9007199254740993" through float would find 2**53.
    big = 2**53
    m = IdMap.from_ids(np.array([big, big + 2]))
    np.testing.assert_array_equal(m.index([str(big), str(big + 1), str(big + 2)]), [0, -1, 1])
    # Beyond int64 an id is unknown, not a crash.
    np.testing.assert_array_equal(m.index([str(2**63), "1e30", 1e30]), [-1, -1, -1])


def test_string_ids_queried_with_ints():
    m = IdMap.from_ids(np.array(["42", "b"]))
    np.testing.assert_array_equal(m.index([42, "b", "c"]), [0, 1, -1])


def test_empty_id_map_knows_nothing():
    m = IdMap.from_ids(np.array([], dtype=np.int64))
    assert len(m) == 0
    np.testing.assert_array_equal(m.index([1, 2]), [-1, -1])


def test_id_map_rejects_duplicates():
    with pytest.raises(DataError, match="unique"):
        IdMap.from_ids(np.array(["a", "b", "a"]))
    with pytest.raises(DataError, match="unique"):
        IdMap.from_ids(np.array([3.0, 3.0]))


def test_id_maps_compare_by_value():
    assert IdMap.from_ids(np.array([1, 2])) == IdMap.from_ids(np.array([1, 2]))
    assert IdMap.from_ids(np.array([1, 2])) != IdMap.from_ids(np.array([2, 1]))


# ---------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------
def test_empty_input():
    with pytest.raises(DataError, match="empty"):
        build_interactions([], [])


def test_nan_id_names_the_row():
    with pytest.raises(DataError, match=r"user ids: missing \(NaN\) id at index 2"):
        build_interactions([1.0, 2.0, np.nan], [1, 2, 3])
    with pytest.raises(DataError, match="item ids: missing id at index 1"):
        build_interactions(["a", "b"], np.array(["x", float("nan")], dtype=object))


def test_none_id_names_the_row():
    with pytest.raises(DataError, match="user ids: missing id at index 1"):
        build_interactions(["a", None, "c"], [1, 2, 3])


def test_fractional_float_id_is_rejected():
    with pytest.raises(DataError, match=r"item ids: id 2.5 at index 1"):
        build_interactions([1, 2], [1.0, 2.5])


def test_empty_string_and_boolean_ids_are_rejected():
    with pytest.raises(DataError, match="empty id at index 1"):
        build_interactions(["a", ""], [1, 2])
    with pytest.raises(DataError, match="booleans"):
        build_interactions([True, False], [1, 2])


def test_two_dimensional_ids_are_rejected():
    with pytest.raises(DataError, match="one-dimensional"):
        build_interactions([[1, 2]], [[1, 2]])


def test_negative_weight_names_the_row():
    with pytest.raises(DataError, match=r"negative weight -1\.0 at index 2"):
        build_interactions([1, 2, 3], [1, 2, 3], weights=[1, 0, -1])


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_weight_or_timestamp(bad):
    with pytest.raises(DataError, match=r"weights: non-finite value .* at index 1"):
        build_interactions([1, 2], [1, 2], weights=[1.0, bad])
    with pytest.raises(DataError, match=r"timestamps: non-finite value .* at index 0"):
        build_interactions([1, 2], [1, 2], timestamps=[bad, 1.0])


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_weight_too_large_for_float32_is_non_finite():
    with pytest.raises(DataError, match="weights: non-finite"):
        build_interactions([1], [1], weights=[1e40])


def test_non_numeric_weights_are_rejected():
    with pytest.raises(DataError, match="weights: expected numbers"):
        build_interactions([1, 2], [1, 2], weights=["1", "2"])


def test_length_mismatch():
    with pytest.raises(DataError, match=r"user ids \(3\) and item ids \(2\) differ"):
        build_interactions([1, 2, 3], [1, 2])
    with pytest.raises(DataError, match="weights: expected 2 values"):
        build_interactions([1, 2], [1, 2], weights=[1, 2, 3])
    with pytest.raises(DataError, match="timestamps: expected 2 values"):
        build_interactions([1, 2], [1, 2], timestamps=[1])


# ---------------------------------------------------------------------------------------------
# rows_from_baskets.
# ---------------------------------------------------------------------------------------------
def test_rows_from_baskets():
    items = IdMap.from_ids(np.array(["d", "a", "c", "b"]))  # a=1, b=3, c=2, d=0
    rows = rows_from_baskets(items, [["b", "a"], [], ["d", "d", "c"], np.array(["a"])])
    assert rows.shape == (4, 4) and rows.dtype == np.float32
    np.testing.assert_array_equal(
        dense(rows), [[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0]]
    )
    rows.check_format(full_check=True)
    assert rows.has_canonical_format


def test_rows_from_baskets_int_ids_given_as_strings():
    items = IdMap.from_ids(np.array([85123, 71053]))
    np.testing.assert_array_equal(dense(rows_from_baskets(items, [["71053", 85123]])), [[1, 1]])


def test_rows_from_no_baskets():
    rows = rows_from_baskets(IdMap.from_ids(np.array([1, 2, 3])), [])
    assert rows.shape == (0, 3)


def test_rows_from_baskets_unknown_item_is_named():
    items = IdMap.from_ids(np.array(["a", "b"]))
    with pytest.raises(DataError, match="item zz is not in the model's catalogue"):
        rows_from_baskets(items, [["a"], ["b", "zz", "yy"]])


# ---------------------------------------------------------------------------------------------
# factorize against numpy.
# ---------------------------------------------------------------------------------------------
def assert_factorize_matches_unique(values: np.ndarray) -> None:
    uniques, codes = factorize(values)
    expected_uniques, expected_codes = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(uniques, expected_uniques)
    np.testing.assert_array_equal(codes, expected_codes.ravel())
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(uniques[codes], values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-5, 5), max_size=40))
def test_factorize_matches_numpy_unique_ints(values):
    assert_factorize_matches_unique(np.array(values, dtype=np.int64))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=4) | st.sampled_from(["a", "b", "ab"]), max_size=40))
def test_factorize_matches_numpy_unique_strings(values):
    assert_factorize_matches_unique(np.array(values, dtype=str))


def test_factorize_hand_case():
    uniques, codes = factorize(np.array([30, 10, 30, 20, 10]))
    np.testing.assert_array_equal(uniques, [10, 20, 30])
    np.testing.assert_array_equal(codes, [2, 0, 2, 1, 0])


@given(
    st.lists(st.lists(st.integers(0, 6), max_size=8, unique=True), min_size=1, max_size=12),
    st.integers(1, 5),
)
def test_column_counts_count_each_columns_entries_across_pieces(
    rows: list[list[int]], piece: int
) -> None:
    """The count of stored entries per column, whatever the piece size (pieces smaller than a
    row, equal to it, or covering everything)."""
    indices = np.array([column for row in rows for column in sorted(row)], dtype=np.int32)
    indptr = np.concatenate([[0], np.cumsum([len(row) for row in rows])])
    matrix = sp.csr_matrix(
        (np.ones(indices.size, np.float32), indices, indptr), shape=(len(rows), 7)
    )
    expected = [sum(column in row for row in rows) for column in range(7)]
    with patch.object(interactions_module, "_COUNT_PIECE", piece):
        counts = column_counts(matrix)
    assert counts.dtype == np.int64
    assert counts.tolist() == expected
