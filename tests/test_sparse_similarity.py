"""Sparse item features stay sparse for MMR and the DPP: the same similarities and lists as
their dense rows, at the cost of the stored entries rather than of every column."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core.reranking import RerankSpec, rerank
from growthrec.core.reranking import similarity as similarity_module
from growthrec.core.reranking.similarity import (
    SimilarityTable,
    SparseBlock,
    gather_similarity,
    similarity_block,
    similarity_from_vectors,
    similarity_to,
)


def _features(n_items: int, n_columns: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_items, n_columns)) * (rng.random((n_items, n_columns)) < density)
    dense[rng.random(n_items) < 0.1] = 0.0  # items without features: similar to nothing
    return sp.csr_matrix(dense)


def _candidates(n_users: int, m: int, n_items: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.stack([rng.choice(n_items, m, replace=False) for _ in range(n_users)])
    out[rng.random(out.shape) < 0.15] = -1  # padding
    return out


def test_sparse_rows_stay_sparse_and_unit_length() -> None:
    features = _features(300, 400, 0.01, seed=0)
    table = similarity_from_vectors(features, "item features").table
    assert sp.issparse(table)
    norms = np.sqrt(np.asarray(table.multiply(table).sum(axis=1)).ravel())
    bought = np.diff(features.indptr) > 0
    np.testing.assert_allclose(norms[bought], 1.0, rtol=1e-6)
    assert (norms[~bought] == 0).all()
    dense_enough = _features(50, 20, 0.5, seed=1)  # above SPARSE_MAX_DENSITY: dense rows
    assert not sp.issparse(similarity_from_vectors(dense_enough, "item features").table)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 12),
    st.integers(0, 2**16),
)
def test_sparse_similarity_equals_the_dense_rows(n_users: int, m: int, seed: int) -> None:
    features = _features(40, 30, 0.04, seed)
    with mock.patch.object(similarity_module, "SPARSE_MAX_DENSITY", 1.0):  # kept sparse
        sparse = similarity_from_vectors(features, "item features")
    assert sp.issparse(sparse.table)
    dense = SimilarityTable(table=sparse.table.toarray())
    candidates = _candidates(n_users, m, 40, seed)
    block = gather_similarity(sparse, candidates)
    assert isinstance(block, SparseBlock) and block.ndim == 3
    reference = gather_similarity(dense, candidates)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        chosen = rng.integers(0, m, n_users)
        np.testing.assert_allclose(
            similarity_to(block, chosen), similarity_to(reference, chosen), atol=1e-6
        )
    np.testing.assert_allclose(
        similarity_block(sparse, candidates), similarity_block(dense, candidates), atol=1e-6
    )


@pytest.mark.parametrize(
    "spec",
    [RerankSpec("mmr", 0.5), RerankSpec("mmr", 0.5, aggregate="mean"), RerankSpec("dpp", 0.5)],
    ids=["mmr", "mmr-mean", "dpp"],
)
def test_rerankers_make_the_same_lists_from_sparse_and_dense_rows(spec: RerankSpec) -> None:
    features = _features(500, 300, 0.02, seed=3)
    sparse = similarity_from_vectors(features, "item features")
    dense = SimilarityTable(table=sparse.table.toarray())
    candidates = _candidates(64, 40, 500, seed=4)
    scores = np.random.default_rng(5).random(candidates.shape)
    got = rerank(candidates, scores, 10, spec, similarity=sparse)
    expected = rerank(candidates, scores, 10, spec, similarity=dense)
    np.testing.assert_array_equal(got.items, expected.items)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5, atol=1e-6)
