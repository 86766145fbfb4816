"""Feature matrices by hand, TF-IDF against scikit-learn, the ridge map against dense numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core.coldstart import blend_factors, mapped_factors, ridge_map
from growthrec.core.features import (
    FeatureSpec,
    feature_matrix,
    features_matrix,
    fit_feature,
    parse_feature_list,
)
from growthrec.errors import DataError, ParameterError


def test_parse_feature_list_defaults_to_category():
    assert parse_feature_list("brand, price:numeric,genres:multi,title:text") == (
        ("brand", "category"),
        ("price", "numeric"),
        ("genres", "multi"),
        ("title", "text"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("brand:colour", "unknown kind 'colour'"),
        ("brand,,price", "empty column name"),
        ("brand,brand:text", "given twice"),
    ],
)
def test_parse_feature_list_refuses(text, message):
    with pytest.raises(ParameterError, match=message):
        parse_feature_list(text)


def test_category_one_hot_by_hand():
    spec = fit_feature("brand", "category", np.array(["b", "a", "b", "", None], dtype=object))
    assert spec.vocabulary.tolist() == ["a", "b"]
    assert spec.names.tolist() == ["brand=a", "brand=b"]
    dense = feature_matrix(spec, np.array(["a", "b", "zz", ""], dtype=object)).toarray()
    assert dense.tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]
    assert dense.dtype == np.float32


def test_multi_valued_rows_have_unit_length():
    spec = fit_feature("genres", "multi", np.array(["Comedy|Drama", "Drama", "Horror"]))
    assert spec.vocabulary.tolist() == ["Comedy", "Drama", "Horror"]
    dense = feature_matrix(spec, np.array(["Comedy|Drama", "Horror|Sci-Fi", ""])).toarray()
    h = 1 / np.sqrt(2)
    np.testing.assert_allclose(dense, [[h, h, 0], [0, 0, 1], [0, 0, 0]], rtol=1e-6)


def test_numeric_quantile_buckets_by_hand():
    spec = fit_feature("price", "numeric", np.array([1.0, 2, 3, 4, 5, 6, 7, 8]), buckets=4)
    # quartile edges of 1..8: 2.75, 4.5, 6.25
    np.testing.assert_allclose(spec.weights, [2.75, 4.5, 6.25])
    assert spec.vocabulary.tolist() == ["<2.75", "<4.5", "<6.25", ">=6.25"]
    dense = feature_matrix(spec, np.array(["1", "4.5", "100", ""], dtype=object)).toarray()
    assert dense.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]


def test_text_matches_scikit_learn_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = np.array(["red mug", "blue mug large", "red red lamp", "lamp shade blue", "mug"])
    spec = fit_feature("title", "text", texts, min_count=1)
    reference = TfidfVectorizer(dtype=np.float32).fit(texts.tolist())
    assert spec.vocabulary.tolist() == reference.get_feature_names_out().tolist()
    ours = feature_matrix(spec, texts).toarray()
    np.testing.assert_allclose(ours, reference.transform(texts.tolist()).toarray(), rtol=1e-5)


@pytest.mark.parametrize(
    ("kind", "values", "message"),
    [
        ("text", ["", "  ", ""], "no usable words"),
        ("category", ["", ""], "every value of the column is empty"),
        ("numeric", ["1.5", "cheap", "2"], r"value 'cheap' at row 2 is not a number"),
    ],
)
def test_bad_columns_are_one_line(kind, values, message):
    with pytest.raises(DataError, match=message):
        fit_feature("col", kind, np.array(values, dtype=object))


def test_features_matrix_stacks_blocks():
    columns = {"brand": np.array(["a", "b"]), "genres": np.array(["x|y", "y"])}
    specs = [
        fit_feature(name, kind, columns[name])
        for name, kind in parse_feature_list("brand,genres:multi")
    ]
    matrix = features_matrix(specs, columns, 2)
    assert matrix.shape == (2, 4)
    h = 1 / np.sqrt(2)
    np.testing.assert_allclose(matrix.toarray(), [[1, 0, h, h], [0, 1, 0, 1]], rtol=1e-6)


def test_spec_equality_compares_arrays():
    spec = fit_feature("brand", "category", np.array(["a", "b"]))
    assert spec == FeatureSpec("brand", "category", np.array(["a", "b"]), np.empty(0))


@pytest.mark.parametrize(("n_rows", "n_features"), [(30, 6), (6, 30)])
def test_ridge_map_both_forms_equal_dense_numpy(n_rows, n_features):
    rng = np.random.default_rng(0)
    dense = (rng.random((n_rows, n_features)) < 0.3).astype(np.float64)
    factors = rng.normal(size=(n_rows, 4))
    reference = np.linalg.solve(dense.T @ dense + 0.5 * np.eye(n_features), dense.T @ factors)
    ours = ridge_map(sp.csr_matrix(dense), factors, 0.5)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)
    assert ours.dtype == np.float32


def test_ridge_map_refuses_bad_input():
    with pytest.raises(ParameterError, match="must be positive"):
        ridge_map(sp.csr_matrix(np.eye(2)), np.eye(2), 0.0)
    with pytest.raises(ParameterError, match="2 feature rows but 3 factor rows"):
        ridge_map(sp.csr_matrix(np.eye(2)), np.eye(3), 1.0)


def test_blend_by_hand():
    learned = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0]], dtype=np.float32)
    mapped = np.array([[0.0, 4.0], [0.0, 4.0], [0.0, 4.0]], dtype=np.float32)
    out = blend_factors(learned, mapped, np.array([0, 1, 3]), shrinkage=1.0)
    np.testing.assert_allclose(out, [[0, 4], [1, 2], [1.5, 1]])


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    cold=st.lists(st.integers(0, 11), min_size=1, max_size=5, unique=True),
)
def test_cold_rows_factors_come_only_from_their_features(seed, cold):
    """Changing a cold row's learned factors (or anything but its features) changes nothing."""
    rng = np.random.default_rng(seed)
    features = sp.csr_matrix((rng.random((12, 5)) < 0.5).astype(np.float32))
    learned = rng.normal(size=(12, 3)).astype(np.float32)
    counts = rng.integers(1, 9, size=12)
    counts[cold] = 0
    warm = counts > 0
    weights = ridge_map(features[warm], learned[warm], 1.0)
    out = blend_factors(learned, mapped_factors(features, weights), counts, 2.0)
    other = learned.copy()
    other[cold] = rng.normal(size=(len(cold), 3))
    again = blend_factors(other, mapped_factors(features, weights), counts, 2.0)
    np.testing.assert_array_equal(out[cold], again[cold])
    np.testing.assert_allclose(out[cold], features[cold].toarray() @ weights, rtol=1e-5, atol=1e-6)
