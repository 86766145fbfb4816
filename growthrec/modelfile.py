"""The model file: one ``.npz`` of plain arrays plus JSON metadata, loaded without pickle."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from growthrec import __version__
from growthrec.atomic import atomic_write
from growthrec.backends.registry import available_backends
from growthrec.core.interactions import IdMap, Interactions
from growthrec.core.model import Model
from growthrec.errors import ModelFileError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load_model", "save_model"]

FORMAT_NAME = "growthrec-model"
#: Bumped when the layout changes incompatibly; older growthrec refuses newer files.
FORMAT_VERSION = 1

_ARRAY = "array__"
_ATTRIBUTE = "item_attribute__"


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
    target = Path(path)
    with atomic_write(target) as handle:
        np.savez(handle, **arrays)
    return target


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a model file; every way it can be wrong is one ``ModelFileError`` naming the file."""
    source = Path(path)
    if not source.is_file():
        raise ModelFileError(f"{source}: no such model file (train one with 'growthrec train')")
    if not zipfile.is_zipfile(source):  # before numpy, whose error suggests unpickling
        raise ModelFileError(f"{source}: not a readable growthrec model file (not an .npz archive)")
    try:
        with np.load(source, allow_pickle=False) as npz:
            if "meta" not in npz.files:
                raise ModelFileError(f"{source}: not a growthrec model file")
            meta = _meta(source, npz["meta"])
            files = {name: npz[name] for name in npz.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise ModelFileError(f"{source}: not a readable growthrec model file ({exc})") from None
    if meta["backend"] not in available_backends():
        raise ModelFileError(
            f"{source}: made with backend {meta['backend']!r}, which is not installed here "
            "(install the plugin that provides it; 'growthrec backends' lists what is)"
        )
    try:
        n_users, n_items = int(meta["n_users"]), int(meta["n_items"])
        matrix = sp.csr_matrix(
            (files["train_data"], files["train_indices"], files["train_indptr"]),
            shape=(n_users, n_items),
        )
        train = Interactions(
            matrix,
            IdMap.from_ids(files["user_ids"]),
            IdMap.from_ids(files["item_ids"]),
            files.get("train_timestamps"),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{source}: damaged model file ({exc})") from None
    return Model(
        backend=meta["backend"],
        params=meta["params"],
        arrays={k[len(_ARRAY) :]: v for k, v in files.items() if k.startswith(_ARRAY)},
        train=train,
        weighting=meta["weighting"],
        seed=meta["seed"],
        item_attributes={
            k[len(_ATTRIBUTE) :]: v for k, v in files.items() if k.startswith(_ATTRIBUTE)
        },
    )


def _meta(source: Path, raw: np.ndarray) -> dict:
    try:
        meta = json.loads(str(raw))
    except (TypeError, ValueError):
        raise ModelFileError(
            f"{source}: not a growthrec model file (unreadable metadata)"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{source}: not a growthrec model file")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(f"{source}: damaged model file (no format version)")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source}: model format {version} is newer than this growthrec {__version__} reads "
            f"(format {FORMAT_VERSION}); upgrade growthrec"
        )
    missing = {"backend", "params", "weighting", "seed", "n_users", "n_items"} - set(meta)
    if missing:
        raise ModelFileError(f"{source}: damaged model file (metadata lacks {sorted(missing)[0]})")
    return meta
