"""The model file: one ``.npz`` of plain arrays plus JSON metadata, loaded without pickle."""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import attrs
import numpy as np
import scipy.sparse as sp

from growthrec._version import __version__
from growthrec.backends.contract import (
    Backend,
    array_problem,
    array_specs,
    check_learned_arrays,
    generic_array_limit,
    required_arrays,
    resolve_params,
)
from growthrec.backends.registry import available_backends
from growthrec.core.coldstart import ColdStart
from growthrec.core.features import FEATURE_KINDS, Features, FeatureSpec
from growthrec.core.interactions import IdMap, Interactions
from growthrec.core.model import Model
from growthrec.core.weighting import WEIGHTINGS
from growthrec.errors import DataError, ModelFileError, ParameterError
from growthrec.store.atomic import atomic_write

try:  # ISA-L's CRC-32 (the serve extra): 6x zlib's, 15 ms for a 190 MB model instead of 90
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - the same sums, slower
    from zlib import crc32 as _crc32

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load_model", "save_model"]

FORMAT_NAME = "growthrec-model"
#: Bumped when the layout changes incompatibly; older growthrec refuses newer files. Version 2
#: adds features and cold-start arrays; a model without them is still written as version 1, so
#: that an older growthrec reads it.
FORMAT_VERSION = 2

_ARRAY = "array__"
_ATTRIBUTE = "item_attribute__"
_COLDSTART = "coldstart__"
#: Feature blocks: ``<side>_features__indptr|indices|data`` (CSR) and per column
#: ``<side>_features__vocabulary__<i>``, ``<side>_features__weights__<i>``.
_FEATURES = {"item": "item_features__", "user": "user_features__"}
#: Longest separator of a multi-valued feature column.
MAX_SEPARATOR_CHARS = 16


def save_model(model: Model, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` atomically; returns the path written."""
    train = model.train
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "growthrec_version": __version__,
        "backend": model.backend,
        "params": dict(model.params),
        "weighting": model.weighting,
        "recency": model.recency,
        "seed": model.seed,
        "n_users": train.n_users,
        "n_items": train.n_items,
    }
    arrays: dict[str, np.ndarray] = {
        "meta": np.array(json.dumps(meta, sort_keys=True)),
        "user_ids": train.users.ids,
        "item_ids": train.items.ids,
        "train_indptr": train.matrix.indptr,
        "train_indices": train.matrix.indices,
        "train_data": train.matrix.data,
    }
    if train.timestamps is not None:
        arrays["train_timestamps"] = train.timestamps
    arrays.update({_ARRAY + k: np.asarray(v) for k, v in model.arrays.items()})
    arrays.update(
        {_ATTRIBUTE + k: np.asarray(v, dtype=str) for k, v in model.item_attributes.items()}
    )
    for side, features in (("item", model.item_features), ("user", model.user_features)):
        if features is not None:
            meta[f"{side}_features"] = [
                {"column": f.column, "kind": f.kind, "separator": f.separator}
                for f in features.specs
            ]
            arrays.update(_feature_arrays(_FEATURES[side], features))
    arrays.update({_COLDSTART + k: np.asarray(v) for k, v in model.coldstart.items()})
    if model.item_features or model.user_features:
        meta["coldstart"] = attrs.asdict(model.coldstart_options)
    if not (model.item_features or model.user_features or model.coldstart):
        meta["format_version"] = 1
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    target = Path(path)
    with atomic_write(target) as handle:
        np.savez(handle, **arrays)
    return target


def _feature_arrays(prefix: str, features: Features) -> dict[str, np.ndarray]:
    matrix = sp.csr_matrix(features.matrix, dtype=np.float32)
    matrix.sort_indices()
    out = {
        prefix + "indptr": matrix.indptr,
        prefix + "indices": matrix.indices,
        prefix + "data": matrix.data,
    }
    for n, spec in enumerate(features.specs):
        out[f"{prefix}vocabulary__{n}"] = np.asarray(spec.vocabulary, dtype=str)
        out[f"{prefix}weights__{n}"] = np.asarray(spec.weights, dtype=np.float64)
    return out


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a model file; every way it can be wrong is one ``ModelFileError`` naming the file.

    The file is untrusted: sizes are decided from the array headers before any data is read,
    and every structural fact is checked before anything uses it (see ``_read``).
    """
    source = Path(path)
    if not source.is_file():
        raise ModelFileError(f"{source}: no such model file (train one with 'growthrec train')")
    if not zipfile.is_zipfile(source):  # before numpy, whose error suggests unpickling
        raise ModelFileError(f"{source}: not a readable growthrec model file (not an .npz archive)")
    try:
        with zipfile.ZipFile(source) as archive:
            return _read(source, archive)
    except ModelFileError:
        raise
    except _Damaged as exc:
        raise ModelFileError(f"{source}: damaged model file ({exc})") from None
    except (
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        ValueError,
        EOFError,
        KeyError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        raise ModelFileError(
            f"{source}: not a readable growthrec model file ({_one_line(exc)})"
        ) from None


#: Every array together may unpack to at most this many times the file's size (growthrec
#: writes arrays uncompressed, so its own files are 1x); ``MIN_UNPACKED_BYTES`` always passes.
MAX_UNPACK_RATIO = 100
MIN_UNPACKED_BYTES = 64 * 2**20
#: The metadata is a short JSON string.
MAX_META_BYTES = 2**20
#: Longest id or catalogue text, in characters.
MAX_TEXT_CHARS = 10_000


class _Damaged(Exception):
    """A structural fact of the file is wrong; the message says which."""


@attrs.frozen
class _Header:
    """What an ``.npy`` member declares about its array, read before its data."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=object))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _npy_header(stream: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype of the .npy header ``stream`` starts with."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    raise _Damaged(f"{name}: unsupported .npy version {version}")


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> _Header:
    """The member's npy header, checked against the size the zip says it unpacks to."""
    with archive.open(info) as stream:
        shape, _fortran, dtype = _npy_header(stream, name)
        header_bytes = stream.tell()
    if dtype.hasobject or dtype.names is not None or dtype.kind not in "biufU":
        raise _Damaged(f"{name}: dtype {dtype} is not plain numbers or text")
    if any(d < 0 for d in shape):
        raise _Damaged(f"{name}: negative dimension in shape {shape}")
    header = _Header(tuple(int(d) for d in shape), dtype)
    expected = header_bytes + header.size * dtype.itemsize
    if info.file_size != expected:
        raise _Damaged(
            f"{name}: the archive says it unpacks to {info.file_size} bytes, its header "
            f"declares {expected}"
        )
    return header


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        return _read_stored(archive, info)
    with archive.open(info) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


#: Bytes read (and CRC-summed) at a time by ``_read_stored``. Each read and each sum lets
#: other threads run and then waits for the GIL again (up to 5 ms when a server's thread is
#: busy): 16 MiB pieces make a 190 MB model ~24 waits instead of ~370 with 1 MiB, for ~30 ms
#: more CPU (the sum reads from the L3 cache rather than L2).
_READ_CHUNK = 16 << 20


def _read_stored(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """An uncompressed member (as ``save_model`` writes) read into its array in one read.

    numpy reads an archive member in 256 KiB pieces through zipfile and copies each into the
    array; at 20M purchases that doubled the load time. Here the bytes go straight from the
    file into the array's memory, with the same checks: the local header's name, the declared
    size, and the CRC-32 zipfile would check (same message when it differs).
    """
    fp = archive.fp
    assert fp is not None
    fp.seek(info.header_offset)
    local = fp.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"Bad magic number for file header of {info.filename!r}")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    name = fp.read(name_length)
    if name.decode("utf-8" if info.flag_bits & 0x800 else "cp437") != info.orig_filename:
        raise zipfile.BadZipFile(f"File name in directory {info.orig_filename!r} and header differ")
    fp.seek(extra_length, os.SEEK_CUR)
    start = fp.tell()
    shape, fortran, dtype = _npy_header(fp, info.filename)
    if dtype.hasobject:
        raise _Damaged(f"{info.filename}: dtype {dtype} is not plain numbers or text")
    header_bytes = fp.tell() - start
    count = int(np.prod(shape, dtype=object))
    if info.compress_size != info.file_size or info.file_size != header_bytes + count * (
        dtype.itemsize
    ):
        raise _Damaged(f"{info.filename}: its header disagrees with the archive's sizes")
    fp.seek(start)
    crc = _crc32(fp.read(header_bytes))
    # The array owns its memory (a view of a byte buffer would be copied again by scipy).
    array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = memoryview(array.reshape(-1, order="A").view(np.uint8))
    for at in range(0, len(view), _READ_CHUNK):  # each piece summed while still cached
        piece = view[at : at + _READ_CHUNK]
        if fp.readinto(piece) != len(piece):
            raise EOFError(f"{info.filename}: the file ends inside the array")
        crc = _crc32(piece, crc)
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return array


def _expect(name: str, header: _Header, shape: tuple[int, ...], kinds: str, what: str) -> None:
    """Refuse an array whose declared shape or dtype is not the one the format needs."""
    if header.dtype.kind not in kinds:
        raise _Damaged(f"{name} has dtype {header.dtype}, expected {what}")
    if header.shape != shape:
        raise _Damaged(f"{name} has shape {header.shape}, expected {shape}")
    if header.dtype.kind == "U" and header.dtype.itemsize > 4 * MAX_TEXT_CHARS:
        raise _Damaged(f"{name} holds text longer than {MAX_TEXT_CHARS} characters")


def _read(source: Path, archive: zipfile.ZipFile) -> Model:
    """The model in ``archive``: headers and sizes first, then metadata, then the arrays."""
    members = {
        info.filename[: -len(".npy")]: info
        for info in archive.infolist()
        if info.filename.endswith(".npy")
    }
    if "meta" not in members:
        raise ModelFileError(f"{source}: not a growthrec model file")
    unpacked = sum(info.file_size for info in members.values())
    allowed = max(MIN_UNPACKED_BYTES, MAX_UNPACK_RATIO * source.stat().st_size)
    if unpacked > allowed:
        raise _Damaged(
            f"its arrays unpack to {unpacked} bytes, more than {MAX_UNPACK_RATIO}x the "
            f"file's size: refused as a decompression bomb"
        )
    if members["meta"].file_size > MAX_META_BYTES:
        raise _Damaged(f"the metadata is {members['meta'].file_size} bytes, not a short JSON text")
    try:
        meta_header = _header(archive, members["meta"], "meta")
    except _Damaged as exc:
        raise ModelFileError(f"{source}: not a readable growthrec model file ({exc})") from None
    if meta_header.dtype.kind != "U" or meta_header.shape != ():
        raise ModelFileError(f"{source}: not a growthrec model file (unreadable metadata)")
    meta = _meta(source, _read_array(archive, members["meta"]))
    headers = {
        name: _header(archive, info, name)
        for name, info in members.items()
        if name in _TRAIN_MEMBERS
        or name.startswith((_ARRAY, _ATTRIBUTE, _COLDSTART))
        or name.startswith(tuple(_FEATURES.values()))
    }
    registrations = available_backends()
    if meta["backend"] not in registrations:
        raise ModelFileError(
            f"{source}: made with backend {meta['backend']!r}, which is not installed here "
            "(install the plugin that provides it; 'growthrec backends' lists what is)"
        )
    impl = registrations[meta["backend"]].backend
    try:
        params = resolve_params(impl, meta["params"])
    except ParameterError as exc:
        raise _Damaged(f"params: {exc}") from None
    n_users, n_items = meta["n_users"], meta["n_items"]
    backend_arrays = _check_headers(impl, params, headers, n_users, n_items)
    feature_specs = {
        side: _feature_meta(meta, side, headers, rows)
        for side, rows in (("item", n_items), ("user", n_users))
        if f"{side}_features" in meta
    }
    n_features = {side: sum(len(v) for _, v, _ in specs) for side, specs in feature_specs.items()}
    _check_coldstart_headers(headers, n_users, n_items, n_features)
    arrays = {name: _read_array(archive, members[name]) for name in headers if name != "meta"}
    train = _training_data(arrays, n_users, n_items)
    if meta.get("recency", 0) > 0 and train.timestamps is None:
        raise _Damaged("recency is set, but the file holds no purchase times (train_timestamps)")
    features = {
        side: _features(arrays, side, specs, n_items if side == "item" else n_users)
        for side, specs in feature_specs.items()
    }
    coldstart = {k[len(_COLDSTART) :]: v for k, v in arrays.items() if k.startswith(_COLDSTART)}
    for name, value in coldstart.items():
        if not np.isfinite(value).all():
            raise _Damaged(f"{_COLDSTART}{name} holds NaN or infinity")
    learned = {name: arrays[_ARRAY + name] for name in backend_arrays}
    try:
        check_learned_arrays(impl, learned, params, n_users, n_items)
    except ValueError as exc:
        raise _Damaged(_one_line(exc)) from None
    return Model(
        backend=meta["backend"],
        params=params,
        arrays=learned,
        train=train,
        weighting=meta["weighting"],
        recency=float(meta.get("recency", 0.0)),
        seed=meta["seed"],
        item_attributes={
            k[len(_ATTRIBUTE) :]: v for k, v in arrays.items() if k.startswith(_ATTRIBUTE)
        },
        item_features=features.get("item"),
        user_features=features.get("user"),
        coldstart={k: v.astype(np.float32) for k, v in coldstart.items()},
        coldstart_options=_coldstart_options(meta),
    )


def _coldstart_options(meta: dict) -> ColdStart:
    given = meta.get("coldstart", {})
    if not isinstance(given, dict) or set(given) - {f.name for f in attrs.fields(ColdStart)}:
        raise _Damaged(f"coldstart is {given!r:.80}, expected the cold-start options")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in given.values()):
        raise _Damaged(f"coldstart is {given!r:.80}, expected numbers")
    try:
        return ColdStart(**given)
    except ParameterError as exc:
        raise _Damaged(str(exc)) from None


def _feature_meta(
    meta: dict, side: str, headers: dict[str, _Header], n_rows: int
) -> list[tuple[dict, np.ndarray | None, int]]:
    """Each feature column's metadata checked, with its vocabulary's declared length."""
    key, prefix = f"{side}_features", _FEATURES[side]
    columns = meta[key]
    if not isinstance(columns, list) or not columns:
        raise _Damaged(f"{key} is {columns!r:.60}, expected a list of feature columns")
    out = []
    for n, column in enumerate(columns):
        if (
            not isinstance(column, dict)
            or not isinstance(column.get("column"), str)
            or column.get("kind") not in FEATURE_KINDS
            or not isinstance(column.get("separator"), str)
            or not 0 < len(column["separator"]) <= MAX_SEPARATOR_CHARS
        ):
            raise _Damaged(f"{key}[{n}] is {column!r:.80}, expected a column, a kind, a separator")
        vocabulary = headers.get(f"{prefix}vocabulary__{n}")
        weights = headers.get(f"{prefix}weights__{n}")
        if vocabulary is None or weights is None:
            raise _Damaged(f"{prefix}vocabulary__{n} or {prefix}weights__{n} is missing")
        if len(vocabulary.shape) != 1:
            raise _Damaged(f"{prefix}vocabulary__{n} has shape {vocabulary.shape}, expected 1-D")
        _expect(f"{prefix}vocabulary__{n}", vocabulary, vocabulary.shape, "U", "text")
        size = vocabulary.shape[0]
        expected = {"text": size, "numeric": max(size - 1, 0)}.get(column["kind"], 0)
        _expect(f"{prefix}weights__{n}", weights, (expected,), "f", "floats")
        out.append((column, vocabulary.shape, size))
    n_features = sum(size for *_, size in out)
    _expect(prefix + "indptr", _need(headers, prefix + "indptr"), (n_rows + 1,), "iu", "integers")
    nnz_shape = _need(headers, prefix + "indices").shape
    if len(nnz_shape) != 1 or nnz_shape[0] > n_rows * n_features:
        raise _Damaged(f"{prefix}indices has shape {nnz_shape}, more than {n_rows} x {n_features}")
    _expect(prefix + "indices", headers[prefix + "indices"], nnz_shape, "iu", "integers")
    _expect(prefix + "data", _need(headers, prefix + "data"), nnz_shape, "f", "floats")
    return [(column, range(size), n) for n, (column, _, size) in enumerate(out)]


def _need(headers: dict[str, _Header], name: str) -> _Header:
    if name not in headers:
        raise _Damaged(f"{name} is missing")
    return headers[name]


def _features(arrays: dict[str, np.ndarray], side: str, specs: list, n_rows: int) -> Features:
    prefix = _FEATURES[side]
    built = []
    for column, _, n in specs:
        vocabulary = arrays[f"{prefix}vocabulary__{n}"]
        weights = arrays[f"{prefix}weights__{n}"].astype(np.float64)
        if not np.isfinite(weights).all():
            raise _Damaged(f"{prefix}weights__{n} holds NaN or infinity")
        if column["kind"] == "numeric" and np.any(np.diff(weights) <= 0):
            raise _Damaged(f"{prefix}weights__{n}: bucket edges must increase")
        if column["kind"] in ("category", "multi", "text") and np.any(
            vocabulary[1:] <= vocabulary[:-1]
        ):
            raise _Damaged(f"{prefix}vocabulary__{n} is not sorted and distinct")
        built.append(
            FeatureSpec(column["column"], column["kind"], vocabulary, weights, column["separator"])
        )
    n_features = sum(spec.vocabulary.size for spec in built)
    matrix = _csr(arrays, prefix, n_rows, n_features)
    return Features(tuple(built), matrix)


def _check_coldstart_headers(
    headers: dict[str, _Header], n_users: int, n_items: int, n_features: dict[str, int]
) -> None:
    """Cold-start arrays: factors of the items, maps from each side's features to factors."""
    rows = {
        "item_factors": n_items,
        "item_map": n_features.get("item"),
        "user_map": n_features.get("user"),
    }
    widths = set()
    for name, header in headers.items():
        if not name.startswith(_COLDSTART):
            continue
        short = name[len(_COLDSTART) :]
        if short not in rows or rows[short] is None:
            raise _Damaged(f"{name} is not a cold-start array this model can have")
        if len(header.shape) != 2 or header.shape[0] != rows[short]:
            raise _Damaged(f"{name} has shape {header.shape}, expected ({rows[short]}, factors)")
        if header.shape[1] > n_users + n_items:
            raise _Damaged(f"{name} has {header.shape[1]} factors, more than the data allows")
        _expect(name, header, header.shape, "f", "floats")
        widths.add(header.shape[1])
    if len(widths) > 1:
        raise _Damaged(f"cold-start arrays disagree on the number of factors: {sorted(widths)}")


def _check_headers(
    impl: Backend,
    params: dict[str, Any],
    headers: dict[str, _Header],
    n_users: int,
    n_items: int,
) -> list[str]:
    """Check every array's declared shape and dtype before reading any; returns the names of
    the backend's arrays."""
    for name in ("user_ids", "item_ids", "train_indptr", "train_indices", "train_data"):
        if name not in headers:
            raise _Damaged(f"{name} is missing")
    _expect("user_ids", headers["user_ids"], (n_users,), "iuU", "integer or text ids")
    _expect("item_ids", headers["item_ids"], (n_items,), "iuU", "integer or text ids")
    _expect("train_indptr", headers["train_indptr"], (n_users + 1,), "iu", "integers")
    nnz_shape = headers["train_indices"].shape
    if len(nnz_shape) != 1 or nnz_shape[0] > n_users * n_items:
        raise _Damaged(
            f"train_indices has shape {nnz_shape}, expected at most {n_users} x {n_items} "
            "entries in one dimension"
        )
    _expect("train_indices", headers["train_indices"], nnz_shape, "iu", "integers")
    _expect("train_data", headers["train_data"], nnz_shape, "f", "floats")
    if "train_timestamps" in headers:
        _expect("train_timestamps", headers["train_timestamps"], nnz_shape, "iuf", "numbers")
    specs = array_specs(impl, params, n_users, n_items)
    limit = generic_array_limit(n_users, n_items)
    names = []
    for name in list(headers):
        if name.startswith(_ATTRIBUTE):
            _expect(name, headers[name], (n_items,), "U", "text")
        elif name.startswith(_ARRAY):
            short = name[len(_ARRAY) :]
            spec = None if specs is None else specs.get(short)
            if specs is not None and spec is None:
                raise _Damaged(f"array {short} is not one the {impl.name} backend makes")
            problem = array_problem(short, headers[name].shape, headers[name].dtype, spec, limit)
            if problem:
                raise _Damaged(problem)
            names.append(short)
    missing = sorted(set(required_arrays(specs) if specs else ()) - set(names))
    if missing:
        raise _Damaged(f"array {missing[0]} is missing ({impl.name} needs it)")
    return names


_TRAIN_MEMBERS = frozenset(
    {"meta", "user_ids", "item_ids", "train_indptr", "train_indices", "train_data"}
    | {"train_timestamps"}
)


def _csr(arrays: dict[str, np.ndarray], prefix: str, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """``prefix`` + indptr/indices/data as a CSR matrix, every index checked before scipy."""
    indptr, indices = arrays[prefix + "indptr"], arrays[prefix + "indices"]
    nnz = indices.size
    if indptr[0] != 0 or indptr[-1] != nnz:
        raise _Damaged(
            f"{prefix}indptr runs from {indptr[0]} to {indptr[-1]}, expected 0 to {nnz} (the "
            f"number of {prefix}indices)"
        )
    steps = np.diff(indptr)
    if np.any(steps < 0):
        row = int(np.flatnonzero(steps < 0)[0])
        raise _Damaged(f"{prefix}indptr decreases at row {row}")
    if nnz and (indices.min() < 0 or indices.max() >= n_cols):
        at = int(np.flatnonzero((indices < 0) | (indices >= n_cols))[0])
        what = "items" if prefix == "train_" else "features"
        raise _Damaged(
            f"{prefix}indices[{at}] = {indices[at]} is outside the {n_cols} {what} "
            f"(0..{n_cols - 1})"
        )
    # Sorted and distinct within each row: every step up, except where a row starts. The
    # indices are in [0, n_cols) by now, so comparing neighbours needs no wider copy.
    rising = indices[1:] > indices[:-1]
    starts = indptr[1:-1]  # a row's start within the indices is where a step may go down
    rising[starts[(starts > 0) & (starts < nnz)] - 1] = True
    if nnz > 1 and not rising.all():
        raise _Damaged(f"{prefix}indices are not sorted and distinct within each row")
    del rising
    data = arrays[prefix + "data"].astype(np.float32, copy=False)
    if not np.isfinite(data).all():
        at = int(np.flatnonzero(~np.isfinite(data))[0])
        raise _Damaged(
            f"{prefix}data[{at}] = {arrays[prefix + 'data'][at]} is not a finite float32"
        )
    index_dtype = np.int32 if max(nnz, n_cols) < 2**31 else np.int64
    # The arrays as they are when their dtype is already right (no copies).
    matrix = sp.csr_matrix(
        (data, indices.astype(index_dtype, copy=False), indptr.astype(index_dtype, copy=False)),
        shape=(n_rows, n_cols),
        copy=False,
    )
    matrix.has_sorted_indices = True
    return matrix


def _training_data(arrays: dict[str, np.ndarray], n_users: int, n_items: int) -> Interactions:
    """The training matrix and id maps, every index checked before scipy sees it."""
    matrix = _csr(arrays, "train_", n_users, n_items)
    timestamps = arrays.get("train_timestamps")
    if timestamps is not None:
        timestamps = timestamps.astype(np.float64)
        if not np.isfinite(timestamps).all():
            raise _Damaged("train_timestamps holds a value that is not a finite number")
    users, items = _id_map(arrays, "user_ids"), _id_map(arrays, "item_ids")
    return Interactions(matrix, users, items, timestamps)


def _id_map(arrays: dict[str, np.ndarray], name: str) -> IdMap:
    try:
        return IdMap.from_ids(arrays[name])
    except DataError as exc:
        raise _Damaged(f"{name}: {_one_line(exc)}") from None


def _meta(source: Path, raw: np.ndarray) -> dict:
    try:
        meta = json.loads(str(raw))
    except (TypeError, ValueError, RecursionError):
        raise ModelFileError(
            f"{source}: not a growthrec model file (unreadable metadata)"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{source}: not a growthrec model file")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{source}: damaged model file (no format version)")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source}: model format {version} is newer than this growthrec {__version__} reads "
            f"(format {FORMAT_VERSION}); upgrade growthrec"
        )
    missing = {"backend", "params", "weighting", "seed", "n_users", "n_items"} - set(meta)
    if missing:
        raise ModelFileError(f"{source}: damaged model file (metadata lacks {sorted(missing)[0]})")
    problem = _meta_problem(meta)
    if problem:
        raise ModelFileError(f"{source}: damaged model file (metadata: {problem})")
    return meta


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _meta_problem(meta: dict) -> str | None:
    """What is wrong with the metadata's field types, or ``None``."""
    for key in ("n_users", "n_items"):
        if not _is_int(meta[key]) or meta[key] < 1:
            return f"{key} is {meta[key]!r}, expected a whole number of at least 1"
    if not isinstance(meta["backend"], str) or not meta["backend"]:
        return f"backend is {meta['backend']!r}, expected a backend name"
    if not isinstance(meta["params"], dict):
        return f"params is {meta['params']!r:.60}, expected a mapping of names to values"
    if meta["weighting"] not in WEIGHTINGS:
        return f"weighting is {meta['weighting']!r:.60}, expected one of {', '.join(WEIGHTINGS)}"
    if meta["seed"] is not None and not _is_int(meta["seed"]):
        return f"seed is {meta['seed']!r:.60}, expected a whole number or null"
    recency = meta.get("recency", 0.0)  # files before recency weighting have none
    if not isinstance(recency, (int, float)) or isinstance(recency, bool):
        return f"recency is {recency!r:.60}, expected a number"
    if not np.isfinite(recency) or recency < 0:
        return f"recency is {recency!r:.60}, expected 0 or a positive half-life"
    return None
