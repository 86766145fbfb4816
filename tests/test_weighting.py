"""Weighting schemes on a hand case, and the error for an unknown name."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.core import WEIGHTINGS, apply_weighting
from growthrec.errors import ParameterError

#   counts      binary      log1p
#   2 0 1       1 0 1       log 3   0   log 2
#   0 5 0       0 1 0       0     log 6  0
#   0 0 0.5     0 0 1       0       0   log 1.5
COUNTS = np.array([[2, 0, 1], [0, 5, 0], [0, 0, 0.5]], dtype=np.float32)
EXPECTED = {
    "binary": np.array([[1, 0, 1], [0, 1, 0], [0, 0, 1]], dtype=np.float32),
    "count": COUNTS,
    "log1p": np.array(
        [[math.log(3), 0, math.log(2)], [0, math.log(6), 0], [0, 0, math.log(1.5)]],
        dtype=np.float32,
    ),
}


def test_the_three_schemes_are_registered():
    assert list(WEIGHTINGS) == ["binary", "count", "log1p"]


@pytest.mark.parametrize("name", ["binary", "count", "log1p"])
def test_scheme_values_on_hand_case(name):
    matrix = sp.csr_matrix(COUNTS)
    before = matrix.copy()
    out = apply_weighting(matrix, name)
    assert sp.issparse(out) and out.format == "csr"
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.toarray(), EXPECTED[name], rtol=1e-6)
    np.testing.assert_array_equal(out.indices, matrix.indices)  # same sparsity pattern
    np.testing.assert_array_equal(out.indptr, matrix.indptr)
    # The input is left alone: the result is a new matrix, not a view of the old data.
    np.testing.assert_array_equal(matrix.toarray(), before.toarray())
    assert not np.shares_memory(out.data, matrix.data)


@pytest.mark.parametrize("name", ["binary", "count", "log1p"])
def test_schemes_return_float32_from_other_dtypes(name):
    matrix = sp.csr_matrix(np.array([[3, 0], [0, 1]], dtype=np.int64))
    out = apply_weighting(matrix, name)
    assert out.dtype == np.float32
    expected = {"binary": [[1, 0], [0, 1]], "count": [[3, 0], [0, 1]]}.get(
        name, [[math.log(4), 0], [0, math.log(2)]]
    )
    np.testing.assert_allclose(out.toarray(), expected, rtol=1e-6)


def test_unknown_name_lists_the_choices():
    matrix = sp.csr_matrix(COUNTS)
    with pytest.raises(
        ParameterError,
        match=r"unknown weighting 'tfidf'; choose one of "
        r"binary, count, log1p",
    ):
        apply_weighting(matrix, "tfidf")
