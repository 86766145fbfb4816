"""Item and customer features as sparse float32 matrices, with vocabularies kept as plain arrays.

A feature column is learned once (``fit_feature``: its vocabulary, bucket edges or word
weights) and then applied to any rows (``feature_matrix``), so a product added after training
is encoded exactly as the training catalogue was. Each column's block has rows of unit length
(or zero), so no column outweighs another because it has more values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec.errors import DataError, ParameterError

__all__ = [
    "FEATURE_KINDS",
    "FeatureSpec",
    "Features",
    "feature_matrix",
    "features_matrix",
    "fit_feature",
    "fit_features",
    "parse_feature_list",
]

#: What a column can be: one value, several values split on a separator, a number, free text.
FEATURE_KINDS = ("category", "multi", "numeric", "text")
#: Words of a text column: sklearn's default token pattern (two or more word characters).
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_array_eq = attrs.cmp_using(eq=np.array_equal)


@attrs.frozen
class FeatureSpec:
    """One learned feature column: its name, kind, the names of its outputs and their weights.

    ``vocabulary`` names the output columns (categories, words, ``"<3.5"`` buckets);
    ``weights`` holds the inverse document frequency of each word (text) or the upper bucket
    edges (numeric), and is empty otherwise.
    """

    column: str
    kind: str
    vocabulary: np.ndarray = attrs.field(eq=_array_eq)
    weights: np.ndarray = attrs.field(eq=_array_eq)
    separator: str = "|"

    @property
    def names(self) -> np.ndarray:
        """``column=value`` for each output column, unique across columns."""
        return np.char.add(f"{self.column}=", self.vocabulary.astype(str))


@attrs.frozen
class Features:
    """Learned feature columns and the rows they encode: (n_rows, n_features) float32 CSR.

    Rows are aligned with an id map (a model's items, or its customers).
    """

    specs: tuple[FeatureSpec, ...]
    matrix: sp.csr_matrix = attrs.field(eq=False)

    @property
    def names(self) -> np.ndarray:
        """``column=value`` of every feature, in matrix column order."""
        if not self.specs:
            return np.empty(0, dtype=str)
        return np.concatenate([spec.names for spec in self.specs])

    @property
    def n_features(self) -> int:
        return int(self.matrix.shape[1])

    def encode(self, columns: Mapping[str, np.ndarray], n_rows: int) -> sp.csr_matrix:
        """New rows (products added later, new customers) encoded as the learned ones were."""
        return features_matrix(self.specs, columns, n_rows)


def fit_features(
    kinds: Sequence[tuple[str, str]], columns: Mapping[str, np.ndarray], n_rows: int
) -> Features:
    """Learn each ``(column, kind)`` from ``columns`` and encode the rows: a ``Features``."""
    specs = tuple(fit_feature(name, kind, columns[name]) for name, kind in kinds)
    return Features(specs, features_matrix(specs, columns, n_rows))


def parse_feature_list(text: str, option: str = "--item-features") -> tuple[tuple[str, str], ...]:
    """``"brand,price:numeric"`` -> ``(("brand", "category"), ("price", "numeric"))``."""
    out: list[tuple[str, str]] = []
    for part in text.split(","):
        name, _, kind = part.strip().partition(":")
        name, kind = name.strip(), (kind.strip() or "category")
        if not name:
            raise ParameterError(f"{option}: empty column name in {text!r}")
        if kind not in FEATURE_KINDS:
            raise ParameterError(
                f"{option}: {name}:{kind} has unknown kind {kind!r}; "
                f"choose one of {', '.join(FEATURE_KINDS)}"
            )
        if any(name == seen for seen, _ in out):
            raise ParameterError(f"{option}: column {name!r} is given twice")
        out.append((name, kind))
    return tuple(out)


def fit_feature(
    column: str,
    kind: str,
    values: np.ndarray,
    *,
    separator: str = "|",
    buckets: int = 10,
    max_words: int = 5000,
    min_count: int = 2,
) -> FeatureSpec:
    """Learn ``column``'s encoding from its ``values`` (strings; numbers for ``numeric``)."""
    if kind == "numeric":
        numbers = _numbers(column, values)
        finite = numbers[np.isfinite(numbers)]
        if finite.size == 0:
            raise DataError(f"feature {column!r}: no numeric value in the column")
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, buckets + 1)[1:-1]))
        names = [f"<{edge:g}" for edge in edges] + [f">={edges[-1]:g}" if edges.size else "all"]
        return FeatureSpec(column, kind, np.array(names), edges.astype(np.float64))
    texts = _texts(values)
    if kind == "category":
        vocabulary = np.unique(texts[texts != ""])
        return _nonempty(FeatureSpec(column, kind, vocabulary, np.empty(0)))
    if kind == "multi":
        parts = _split_all(texts, separator)
        vocabulary = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=str)
        return _nonempty(FeatureSpec(column, kind, vocabulary, np.empty(0), separator))
    if kind == "text":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(
            token_pattern=TOKEN_PATTERN,
            max_features=max_words,
            min_df=min(min_count, max(1, texts.size)),
            dtype=np.float32,
        )
        try:
            vectorizer.fit(texts.tolist())
        except ValueError:  # no word survives: an all-empty or all-unique column
            raise DataError(f"feature {column!r}: the text column has no usable words") from None
        vocabulary = vectorizer.get_feature_names_out().astype(str)
        return FeatureSpec(column, kind, vocabulary, vectorizer.idf_.astype(np.float64))
    raise ParameterError(f"feature {column!r}: unknown kind {kind!r}")


def feature_matrix(spec: FeatureSpec, values: np.ndarray) -> sp.csr_matrix:
    """Rows of ``values`` encoded by ``spec``: (len(values), len(vocabulary)) float32, unit rows."""
    n, width = len(values), spec.vocabulary.size
    if spec.kind == "numeric":
        numbers = _numbers(spec.column, values)
        known = np.isfinite(numbers)
        cols = np.searchsorted(spec.weights, numbers[known], side="right")
        rows = np.flatnonzero(known)
        return _csr(rows, cols, np.ones(rows.size), n, width)
    texts = _texts(values)
    if spec.kind == "text":
        from sklearn.feature_extraction.text import CountVectorizer

        counts = CountVectorizer(
            token_pattern=TOKEN_PATTERN, vocabulary=spec.vocabulary.tolist(), dtype=np.float64
        ).transform(texts.tolist())
        return _unit_rows(sp.csr_matrix(counts.multiply(spec.weights[None, :])))
    if spec.kind == "category":
        cols = np.searchsorted(spec.vocabulary, texts)
        cols = np.minimum(cols, max(width - 1, 0))
        known = (spec.vocabulary[cols] == texts) if width else np.zeros(n, dtype=bool)
        return _csr(np.flatnonzero(known), cols[known], np.ones(int(known.sum())), n, width)
    parts = _split_all(texts, spec.separator)
    lengths = np.array([p.size for p in parts], dtype=np.int64)
    flat = np.concatenate(parts) if parts else np.empty(0, dtype=str)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.minimum(np.searchsorted(spec.vocabulary, flat), max(width - 1, 0))
    known = (spec.vocabulary[cols] == flat) if width else np.zeros(flat.size, dtype=bool)
    return _unit_rows(_csr(rows[known], cols[known], np.ones(int(known.sum())), n, width))


def features_matrix(
    specs: Sequence[FeatureSpec], columns: Mapping[str, np.ndarray], n_rows: int
) -> sp.csr_matrix:
    """The columns' blocks side by side: (n_rows, sum of vocabularies) float32 CSR."""
    if not specs:
        return sp.csr_matrix((n_rows, 0), dtype=np.float32)
    blocks = [feature_matrix(spec, columns[spec.column]) for spec in specs]
    return sp.hstack(blocks, format="csr", dtype=np.float32)


def _nonempty(spec: FeatureSpec) -> FeatureSpec:
    if spec.vocabulary.size == 0:
        raise DataError(f"feature {spec.column!r}: every value of the column is empty")
    return spec


def _texts(values: np.ndarray) -> np.ndarray:
    """Values as stripped text; missing ones (None, NaN) as ``""``."""
    arr = np.asarray(values, dtype=object)
    missing = np.array([v is None or (isinstance(v, float) and v != v) for v in arr], dtype=bool)
    out = arr.astype(str)
    out[missing] = ""
    return np.char.strip(out)


def _numbers(column: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    texts = _texts(arr)
    out = np.full(texts.size, np.nan)
    for n, text in enumerate(texts.tolist()):
        if text:
            try:
                out[n] = float(text)
            except ValueError:
                raise DataError(
                    f"feature {column!r}: value {text!r} at row {n + 1} is not a number "
                    f"(give the column as {column}:category or {column}:text)"
                ) from None
    return out


def _split_all(texts: np.ndarray, separator: str) -> list[np.ndarray]:
    out = []
    for text in texts.tolist():
        words = [w.strip() for w in text.split(separator)] if text else []
        out.append(np.array([w for w in words if w], dtype=str))
    return out


def _csr(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int, width: int) -> sp.csr_matrix:
    matrix = sp.csr_matrix(
        (data.astype(np.float32), (rows.astype(np.int64), cols.astype(np.int64))), shape=(n, width)
    )
    matrix.sum_duplicates()
    return matrix


def _unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)
    return sp.csr_matrix(sp.diags(scale) @ matrix, dtype=np.float32)
