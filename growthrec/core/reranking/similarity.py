"""Item categories and item similarity, gathered only for each user's candidates.

Categories are held as padded lists (``CategoryTable``): an item with several categories splits
its weight equally among them (Steck 2018). Similarity is cosine: of the one-hot category rows
(1 for items sharing their one category, else 0; ``|A ∩ B| / sqrt(|A| |B|)`` for several), or of
item feature rows or factor rows. An item with no category, or a zero row, is similar to nothing.
"""

from __future__ import annotations

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.errors import ParameterError

__all__ = [
    "CategoryTable",
    "SimilarityTable",
    "category_table",
    "gather_similarity",
    "similarity_block",
    "similarity_from_categories",
    "similarity_from_vectors",
    "similarity_to",
]

_array_eq = attrs.cmp_using(eq=np.array_equal)


@attrs.frozen
class CategoryTable:
    """Each item's categories: ``codes`` (n_items, K) int64 padded with -1, and ``weights``
    (n_items, K) float64, each item's summing to 1 (0 for an item without a category)."""

    codes: np.ndarray = attrs.field(eq=_array_eq)
    weights: np.ndarray = attrs.field(eq=_array_eq)
    n_categories: int
    _matrix: sp.csr_matrix = attrs.field(init=False, eq=False, repr=False)

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    def matrix(self) -> sp.csr_matrix:
        """The (n_items, n_categories) CSR matrix of the split weights (built once: calibration
        asks for it on every request, and building it cost 0.5 ms at 27,000 items)."""
        return self._matrix

    @_matrix.default
    def _build_matrix(self) -> sp.csr_matrix:
        rows = np.repeat(np.arange(self.n_items), self.codes.shape[1]).reshape(self.codes.shape)
        keep = self.codes >= 0
        return sp.csr_matrix(
            (self.weights[keep], (rows[keep], self.codes[keep])),
            shape=(self.n_items, self.n_categories),
        )


def category_table(categories: np.ndarray | sp.spmatrix) -> CategoryTable:
    """A ``CategoryTable`` from one code per item (-1: none) or an items x categories 0/1 matrix."""
    if sp.issparse(categories) or np.ndim(categories) == 2:
        matrix = sp.csr_matrix(categories, dtype=np.float64)
        if matrix.nnz and matrix.data.min() < 0:
            raise ParameterError("categories: a category matrix must not hold negative values")
        matrix.eliminate_zeros()
        matrix.sort_indices()
        n_items, n_categories = matrix.shape
        per_item = np.diff(matrix.indptr)
        width = max(int(per_item.max()) if n_items else 0, 1)
        codes = np.full((n_items, width), -1, dtype=np.int64)
        slot = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], per_item)
        codes[np.repeat(np.arange(n_items), per_item), slot] = matrix.indices
    else:
        flat = np.asarray(categories)
        if flat.ndim != 1 or flat.dtype.kind not in "iu":
            raise ParameterError(
                "categories must be a 1-D integer array (a code per item, -1: none)"
            )
        if flat.size and flat.min() < -1:
            raise ParameterError(
                f"categories: code {flat.min()} is below -1 (-1 means no category)"
            )
        codes = flat.astype(np.int64).reshape(-1, 1)
        n_categories = int(flat.max()) + 1 if flat.size else 0
        per_item = (codes[:, 0] >= 0).astype(np.int64)
    weights = np.where(codes >= 0, 1.0 / np.maximum(per_item, 1)[:, None], 0.0)
    return CategoryTable(codes=codes, weights=weights, n_categories=max(n_categories, 0))


@attrs.frozen
class SimilarityTable:
    """What item similarity is computed from: one category code per item (``codes``, 1-D) or
    unit-length rows (``vectors``, 2-D float32; cosine is their dot product)."""

    table: np.ndarray = attrs.field(eq=_array_eq)

    @property
    def n_items(self) -> int:
        return int(self.table.shape[0])

    @property
    def width(self) -> int:
        """Values per candidate a batch gathers (for sizing batches by memory)."""
        return 1 if self.table.ndim == 1 else int(self.table.shape[1])


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def similarity_from_categories(categories: CategoryTable) -> SimilarityTable:
    """Cosine of the one-hot category rows; one code per item compares codes, never a matrix."""
    if categories.codes.shape[1] == 1:
        return SimilarityTable(table=categories.codes[:, 0].copy())
    return SimilarityTable(table=_unit_rows(categories.matrix().toarray()))


def similarity_from_vectors(vectors: np.ndarray | sp.spmatrix, what: str) -> SimilarityTable:
    """Cosine of item rows (features or factors; ``what`` names them in errors)."""
    dense = vectors.toarray() if sp.issparse(vectors) else np.asarray(vectors, dtype=np.float64)
    if dense.ndim != 2:
        raise ParameterError(f"{what} must be 2-D (items x dims), got {dense.ndim}-D")
    if not np.isfinite(dense).all():
        raise ParameterError(f"{what} hold NaN or infinite values")
    return SimilarityTable(table=_unit_rows(dense))


def gather_similarity(similarity: SimilarityTable, candidates: np.ndarray) -> np.ndarray:
    """The candidates' rows of the table: (b, M) codes (-1 for padding) or (b, M, d) vectors."""
    valid = candidates >= 0
    safe = np.where(valid, candidates, 0)
    if similarity.table.ndim == 1:
        return np.where(valid, similarity.table[safe], -1)
    return similarity.table[safe] * valid[:, :, None]


def similarity_to(block: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """(b, M) similarity of every candidate to candidate ``chosen[u]`` (a position) of row u."""
    rows = np.arange(block.shape[0])
    if block.ndim == 2:
        code = block[rows, chosen][:, None]
        return ((block == code) & (code >= 0)).astype(np.float32)
    return np.matmul(block, block[rows, chosen][:, :, None])[:, :, 0]


def similarity_block(similarity: SimilarityTable, candidates: np.ndarray) -> np.ndarray:
    """(b, M, M) similarity among each row's candidates (tests and small batches only)."""
    block = gather_similarity(similarity, candidates)
    if block.ndim == 2:
        return ((block[:, :, None] == block[:, None, :]) & (block[:, :, None] >= 0)).astype(
            np.float32
        )
    return np.matmul(block, block.transpose(0, 2, 1))
