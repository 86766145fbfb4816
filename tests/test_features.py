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


def _model_with_features():
    from growthrec.core.features import fit_features
    from growthrec.core.interactions import build_interactions
    from growthrec.pipeline.fitting import fit_model

    data = build_interactions(["u1", "u1", "u2", "u3"], ["a", "b", "b", "c"])
    model = fit_model(data, "popularity")
    items = {
        "brand": np.array(["x", "y", "x"]),
        "title": np.array(["red mug", "blue mug", "red lamp"]),
        "price": np.array(["1.5", "3", "9"]),
    }
    users = {"segment": np.array(["new", "vip", "new"])}
    item_features = fit_features(
        (("brand", "category"), ("title", "text"), ("price", "numeric")), items, 3
    )
    user_features = fit_features((("segment", "category"),), users, 3)
    coldstart = {
        "item_map": np.ones((item_features.n_features, 2), np.float32),
        "item_factors": np.arange(6, dtype=np.float32).reshape(3, 2),
    }
    import attrs

    return attrs.evolve(
        model, item_features=item_features, user_features=user_features, coldstart=coldstart
    )


def test_features_round_trip_through_the_model_file(tmp_path):
    from growthrec.store.modelfile import load_model, save_model

    model = _model_with_features()
    loaded = load_model(save_model(model, tmp_path / "m.npz"))
    for side in ("item_features", "user_features"):
        ours, theirs = getattr(model, side), getattr(loaded, side)
        assert theirs.specs == ours.specs
        assert theirs.names.tolist() == ours.names.tolist()
        np.testing.assert_array_equal(theirs.matrix.toarray(), ours.matrix.toarray())
        assert theirs.matrix.dtype == np.float32
    assert sorted(loaded.coldstart) == ["item_factors", "item_map"]
    np.testing.assert_array_equal(loaded.coldstart["item_factors"], model.coldstart["item_factors"])
    new = loaded.item_features.encode(
        {"brand": np.array(["y"]), "title": np.array(["red"]), "price": np.array(["2"])}, 1
    )
    np.testing.assert_array_equal(
        new.toarray(),
        model.item_features.encode(
            {"brand": np.array(["y"]), "title": np.array(["red"]), "price": np.array(["2"])}, 1
        ).toarray(),
    )


def _rewrite(path, out, change):
    """A copy of the model file at ``path`` with ``change(members)`` applied to its arrays."""
    import json

    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    meta = json.loads(str(members["meta"]))
    change(members, meta)
    members["meta"] = np.array(json.dumps(meta))
    np.savez(out, **members)
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda m, meta: m.update(item_features__indices=m["item_features__indices"] + 99),
            "is outside the",
        ),
        (lambda m, meta: m.pop("item_features__vocabulary__1"), "is missing"),
        (
            lambda m, meta: meta["item_features"][0].update(kind="colour"),
            "expected a column, a kind, a separator",
        ),
        (
            lambda m, meta: m.update(
                item_features__weights__2=m["item_features__weights__2"][::-1]
            ),
            "bucket edges must increase",
        ),
        (
            lambda m, meta: m.update(coldstart__item_factors=np.ones((7, 2), np.float32)),
            "coldstart__item_factors has shape (7, 2), expected (3, factors)",
        ),
        (
            lambda m, meta: m.update(coldstart__user_map=np.ones((1, 3), np.float32)),
            "expected (2, factors)",
        ),
        (
            lambda m, meta: m.update(coldstart__item_map=np.full((1, 2), np.nan, np.float32)),
            "expected (",
        ),
        (lambda m, meta: m.update(coldstart__secret=np.ones((3, 2))), "not a cold-start array"),
    ],
)
def test_damaged_feature_arrays_are_refused_in_one_line(tmp_path, change, message):
    from growthrec.errors import ModelFileError
    from growthrec.store.modelfile import load_model, save_model

    good = save_model(_model_with_features(), tmp_path / "good.npz")
    bad = _rewrite(good, tmp_path / "bad.npz", change)
    with pytest.raises(ModelFileError) as caught:
        load_model(bad)
    text = str(caught.value)
    assert "\n" not in text and str(bad) in text
    assert message in text


def test_weighted_ridge_map_equals_dense_numpy():
    rng = np.random.default_rng(1)
    dense = (rng.random((20, 5)) < 0.4).astype(np.float64)
    factors = rng.normal(size=(20, 3))
    weight = rng.random(20)
    s = np.diag(weight)
    reference = np.linalg.solve(dense.T @ s @ dense + 0.7 * np.eye(5), dense.T @ s @ factors)
    ours = ridge_map(sp.csr_matrix(dense), factors, 0.7, sample_weight=weight)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)
