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
    "SPARSE_MAX_DENSITY",
    "CategoryTable",
    "SimilarityTable",
    "SparseBlock",
    "category_table",
    "gather_similarity",
    "similarity_block",
    "similarity_from_categories",
    "similarity_from_vectors",
    "similarity_to",
]

_array_eq = attrs.cmp_using(eq=np.array_equal)
#: Item rows this sparse or sparser stay sparse in a ``SimilarityTable``.
SPARSE_MAX_DENSITY = 0.05


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


def _table_eq(a: np.ndarray | sp.csr_matrix, b: np.ndarray | sp.csr_matrix) -> bool:
    if sp.issparse(a) or sp.issparse(b):
        return sp.issparse(a) and sp.issparse(b) and a.shape == b.shape and (a != b).nnz == 0
    return np.array_equal(a, b)


@attrs.frozen
class SimilarityTable:
    """What item similarity is computed from: one category code per item (``codes``, 1-D) or
    unit-length rows (``vectors``, 2-D float32, dense or, for sparse item features, CSR;
    cosine is their dot product)."""

    table: np.ndarray | sp.csr_matrix = attrs.field(eq=attrs.cmp_using(eq=_table_eq))

    @property
    def n_items(self) -> int:
        return int(self.table.shape[0])

    @property
    def width(self) -> int:
        """Values per candidate a batch gathers (for sizing batches by memory)."""
        if sp.issparse(self.table):
            return 2 * max(int(np.diff(self.table.indptr).max(initial=0)), 1)  # values, columns
        return 1 if self.table.ndim == 1 else int(self.table.shape[1])


@attrs.frozen(eq=False)
class SparseBlock:
    """The candidates' unit rows of a sparse table, gathered for one batch: row ``u * M + j``
    of ``rows`` is candidate ``j`` of user ``u`` (empty for padding). ``ndim`` is 3, as the
    dense (b, M, d) block it stands for; ``similarity_to`` reads it entry by entry."""

    rows: sp.csr_matrix
    n_users: int
    n_candidates: int
    #: Each stored entry's user and its key ``user * d + column``, for matching chosen rows.
    entry_row: np.ndarray
    entry_key: np.ndarray

    ndim = 3


def _sparse_block(table: sp.csr_matrix, candidates: np.ndarray) -> SparseBlock:
    b, m = candidates.shape
    flat = candidates.ravel()
    rows = table[np.maximum(flat, 0)]
    if (flat < 0).any():  # padding: an empty row
        keep = np.repeat(flat >= 0, np.diff(rows.indptr))
        counts = np.diff(rows.indptr) * (flat >= 0)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        rows = sp.csr_matrix(
            (rows.data[keep], rows.indices[keep], indptr), shape=(b * m, table.shape[1])
        )
    entry_row = np.repeat(np.arange(b * m), np.diff(rows.indptr))
    entry_key = (entry_row // m) * table.shape[1] + rows.indices
    return SparseBlock(rows, b, m, entry_row, entry_key)


def _sparse_similarity_to(block: SparseBlock, chosen: np.ndarray) -> np.ndarray:
    """Each candidate's dot product with its user's chosen row, over the stored entries."""
    b, m, rows = block.n_users, block.n_candidates, block.rows
    picked = np.arange(b) * m + chosen
    starts, ends = rows.indptr[picked], rows.indptr[picked + 1]
    counts = ends - starts
    at = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    keys = block.entry_key[at]  # rising: users in order, each row's columns sorted
    values = rows.data[at]
    out = np.zeros(b * m, dtype=np.float32)
    if keys.size:
        where = np.minimum(np.searchsorted(keys, block.entry_key), keys.size - 1)
        match = keys[where] == block.entry_key
        products = np.where(match, rows.data * values[where], 0.0)
        out = np.bincount(block.entry_row, products, minlength=b * m).astype(np.float32)
    return out.reshape(b, m)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def similarity_from_categories(categories: CategoryTable) -> SimilarityTable:
    """Cosine of the one-hot category rows; one code per item compares codes, never a matrix."""
    if categories.codes.shape[1] == 1:
        return SimilarityTable(table=categories.codes[:, 0].copy())
    return SimilarityTable(table=_unit_rows(categories.matrix().toarray()))


def similarity_from_vectors(vectors: np.ndarray | sp.spmatrix, what: str) -> SimilarityTable:
    """Cosine of item rows (features or factors; ``what`` names them in errors). Sparse rows
    stay sparse where at most ``SPARSE_MAX_DENSITY`` of their cells are stored (text
    features: 5 of 1,233 columns per product on Online Retail)."""
    if sp.issparse(vectors):
        matrix = sp.csr_matrix(vectors, dtype=np.float32)
        if matrix.ndim != 2:
            raise ParameterError(f"{what} must be 2-D (items x dims), got {matrix.ndim}-D")
        if not np.isfinite(matrix.data).all():
            raise ParameterError(f"{what} hold NaN or infinite values")
        cells = matrix.shape[0] * matrix.shape[1]
        if matrix.nnz <= SPARSE_MAX_DENSITY * cells:
            matrix.sum_duplicates()
            matrix.sort_indices()
            norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1), np.float64).ravel())
            scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
            unit = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)
            unit.sort_indices()
            return SimilarityTable(table=unit)
    dense = vectors.toarray() if sp.issparse(vectors) else np.asarray(vectors, dtype=np.float64)
    if dense.ndim != 2:
        raise ParameterError(f"{what} must be 2-D (items x dims), got {dense.ndim}-D")
    if not np.isfinite(dense).all():
        raise ParameterError(f"{what} hold NaN or infinite values")
    return SimilarityTable(table=_unit_rows(dense))


def gather_similarity(similarity: SimilarityTable, candidates: np.ndarray) -> np.ndarray:
    """The candidates' rows of the table: (b, M) codes (-1 for padding) or (b, M, d) vectors."""
    if sp.issparse(similarity.table):
        return _sparse_block(similarity.table, candidates)
    valid = candidates >= 0
    safe = np.where(valid, candidates, 0)
    if similarity.table.ndim == 1:
        return np.where(valid, similarity.table[safe], -1)
    return similarity.table[safe] * valid[:, :, None]


def similarity_to(block: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """(b, M) similarity of every candidate to candidate ``chosen[u]`` (a position) of row u."""
    if isinstance(block, SparseBlock):
        return _sparse_similarity_to(block, chosen)
    rows = np.arange(block.shape[0])
    if block.ndim == 2:
        code = block[rows, chosen][:, None]
        return ((block == code) & (code >= 0)).astype(np.float32)
    return np.matmul(block, block[rows, chosen][:, :, None])[:, :, 0]


def similarity_block(similarity: SimilarityTable, candidates: np.ndarray) -> np.ndarray:
    """(b, M, M) similarity among each row's candidates (tests and small batches only)."""
    if sp.issparse(similarity.table):  # the dense block it stands for
        similarity = SimilarityTable(table=similarity.table.toarray())
    block = gather_similarity(similarity, candidates)
    if block.ndim == 2:
        return ((block[:, :, None] == block[:, None, :]) & (block[:, :, None] >= 0)).astype(
            np.float32
        )
    return np.matmul(block, block.transpose(0, 2, 1))
