"""What the EASE and EDLAE form tests share: weighted purchase matrices without ties, and the
check that a model file from before the users form (B stored whatever the shape) still loads."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest
import scipy.sparse as sp

from growthrec.core.interactions import Interactions, build_interactions
from growthrec.core.model import Model
from growthrec.errors import ModelFileError
from growthrec.pipeline.lists import recommend
from growthrec.store.modelfile import load_model, save_model


def weighted_matrix(n_users: int, n_items: int, seed: int = 0) -> sp.csr_matrix:
    """Continuous weights (no exact ties), about 10% dense, every item bought at least once."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.1) * rng.uniform(0.5, 4.0, (n_users, n_items))
    dense[rng.integers(0, n_users, n_items), np.arange(n_items)] += 1.0
    return sp.csr_matrix(dense.astype(np.float32))


def weighted_shop(n_users: int = 40, n_items: int = 120, seed: int = 0) -> Interactions:
    """``weighted_matrix`` as interactions (wide by default: the users form's shape)."""
    x = weighted_matrix(n_users, n_items, seed).tocoo()
    return build_interactions(x.row, x.col, x.data)


def assert_file_with_b_ranks_alike(fitted: Model, b: np.ndarray, tmp_path: Path) -> None:
    """A file of ``fitted`` holding B itself (``item_weights``, as files from before the users
    form did) loads and ranks as ``fitted`` does; one holding both forms is refused."""
    old = attrs.evolve(fitted, arrays={"item_weights": b})
    loaded = load_model(save_model(old, tmp_path / "old.npz"))
    assert set(loaded.arrays) == {"item_weights"}
    users = np.arange(fitted.train.n_users)
    got, expected = recommend(loaded, users, 10), recommend(fitted, users, 10)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-4, atol=1e-6)
    mixed = attrs.evolve(fitted, arrays={**fitted.arrays, "item_weights": b})
    with pytest.raises(ModelFileError, match=r"neither B \(item_weights\) nor the users form"):
        load_model(save_model(mixed, tmp_path / "mixed.npz"))
