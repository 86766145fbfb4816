"""Sampled-negative candidates and ranking among them: hand cases, properties, uniformity."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import growthrec.core.sampling as sampling
from growthrec.core.metrics import hit_matrix
from growthrec.core.ranking import top_k
from growthrec.core.sampling import (
    candidate_items,
    candidate_scores,
    rank_candidates,
    sample_candidates,
)
from growthrec.errors import ParameterError

NEG_INF = -np.inf


def csr(dense) -> sp.csr_matrix:
    return sp.csr_matrix(np.asarray(dense, dtype=np.float32))


def check_candidates(candidates, truth, exclude, n_negatives) -> None:
    """Every property a candidate matrix must have, checked one row at a time."""
    truth_d = truth.toarray() != 0
    exclude_d = exclude.toarray() != 0
    assert candidates.dtype == np.int64
    assert candidates.shape[0] == truth.shape[0]
    for u in range(truth.shape[0]):
        row = candidates[u]
        valid = row[row >= 0]
        assert (row[valid.size :] == -1).all(), "padding only at the end"
        if not truth_d[u].any():
            assert valid.size == 0
            continue
        assert (np.diff(valid) > 0).all(), "ascending and distinct"
        held = set(np.flatnonzero(truth_d[u]).tolist())
        assert held <= set(valid.tolist())
        negatives = set(valid.tolist()) - held
        available = set(np.flatnonzero(~truth_d[u] & ~exclude_d[u]).tolist())
        assert negatives <= available, "never a bought or held-out item as a negative"
        assert len(negatives) == min(n_negatives, len(available))
    if candidates.shape[1]:
        assert (candidates[:, -1] >= 0).any(), "no all-padding column"


# ---------------------------------------------------------------------------------------------
# Hand cases.
# ---------------------------------------------------------------------------------------------
def test_every_available_item_when_there_are_too_few():
    # u0: holds out 2, bought 0 and 1 -> available 3, 4, 5 (exactly 3): all of them.
    # u1: nothing held out -> all -1.
    # u2: holds out 0 and 5, bought 1, 2, 3 -> available only 4.
    truth = csr([[0, 0, 1, 0, 0, 0], [0] * 6, [1, 0, 0, 0, 0, 1]])
    exclude = csr([[1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 1, 1, 1, 0, 0]])
    for seed in (0, 1, None):
        got = sample_candidates(truth, exclude, 3, seed=seed)
        np.testing.assert_array_equal(got, [[2, 3, 4, 5], [-1] * 4, [0, 4, 5, -1]])


def test_one_negative_among_two():
    # Holds out 0 of 3 items, bought nothing: the negative is 1 or 2, and both happen.
    truth = csr([[1, 0, 0]])
    exclude = csr([[0, 0, 0]])
    seen = set()
    for seed in range(40):
        got = sample_candidates(truth, exclude, 1, seed=seed)
        assert got.shape == (1, 2)
        assert got[0, 0] == 0 and got[0, 1] in (1, 2)
        seen.add(int(got[0, 1]))
    assert seen == {1, 2}


def test_nobody_with_truth_gives_an_empty_matrix():
    got = sample_candidates(sp.csr_matrix((3, 5)), csr(np.eye(3, 5)), 2, seed=0)
    assert got.shape == (3, 0)


def test_exclude_overlapping_truth_still_keeps_truth():
    # A held-out item that is also in exclude is still a candidate (the splits never do this);
    # it is never drawn as a negative.
    truth = csr([[1, 1, 0, 0, 0]])
    exclude = csr([[1, 0, 1, 0, 0]])
    got = sample_candidates(truth, exclude, 5, seed=0)
    np.testing.assert_array_equal(got, [[0, 1, 3, 4]])


def test_explicit_zeros_and_repeated_entries_count_as_stored():
    # Stored entries are what counts (as in the exclusions of full ranking), whatever the value.
    exclude = sp.csr_matrix(
        (np.array([0.0, 2.0, 1.0]), np.array([1, 2, 2]), np.array([0, 3])), shape=(1, 5)
    )
    truth = csr([[1, 0, 0, 0, 0]])
    got = sample_candidates(truth, exclude, 10, seed=0)
    np.testing.assert_array_equal(got, [[0, 3, 4]])


def test_rejects_bad_arguments():
    with pytest.raises(ParameterError, match="n_negatives=0"):
        sample_candidates(csr([[1, 0]]), csr([[0, 0]]), 0)
    with pytest.raises(ParameterError, match=r"n_negatives=2\.5"):
        sample_candidates(csr([[1, 0]]), csr([[0, 0]]), 2.5)
    with pytest.raises(ParameterError, match="truth has shape"):
        sample_candidates(csr([[1, 0]]), csr([[0, 0, 0]]), 1)


# ---------------------------------------------------------------------------------------------
# Random cases: properties, determinism, uniformity, chunking.
# ---------------------------------------------------------------------------------------------
def random_truth_exclude(rng, n_users, n_items, bought=0.3, held=0.05):
    cells = rng.random((n_users, n_items))
    limit = rng.random((n_users, 1)) * bought * 2  # light and heavy buyers
    exclude = cells < limit
    truth = (cells >= limit) & (cells < limit + held)
    truth[::5] = False
    return csr(truth), csr(exclude)


@pytest.mark.parametrize(
    ("seed", "n_items", "n_negatives"), [(0, 50, 10), (1, 300, 100), (2, 30, 25)]
)
def test_random_case_properties(seed, n_items, n_negatives):
    rng = np.random.default_rng(seed)
    truth, exclude = random_truth_exclude(rng, 120, n_items)
    got = sample_candidates(truth, exclude, n_negatives, seed=seed)
    check_candidates(got, truth, exclude, n_negatives)


def test_same_seed_same_candidates_and_generator_is_advanced():
    rng = np.random.default_rng(3)
    truth, exclude = random_truth_exclude(rng, 60, 400)
    first = sample_candidates(truth, exclude, 20, seed=7)
    np.testing.assert_array_equal(first, sample_candidates(truth, exclude, 20, seed=7))
    assert not np.array_equal(first, sample_candidates(truth, exclude, 20, seed=8))
    gen = np.random.default_rng(7)
    np.testing.assert_array_equal(first, sample_candidates(truth, exclude, 20, seed=gen))
    assert not np.array_equal(first, sample_candidates(truth, exclude, 20, seed=gen))


def test_inputs_are_not_modified():
    rng = np.random.default_rng(4)
    truth, exclude = random_truth_exclude(rng, 30, 40)
    truth_before, exclude_before = truth.copy(), exclude.copy()
    sample_candidates(truth, exclude, 5, seed=0)
    assert (truth != truth_before).nnz == 0 and (exclude != exclude_before).nnz == 0
    np.testing.assert_array_equal(truth.indices, truth_before.indices)


def test_unsorted_inputs_give_the_same_candidates_and_stay_unsorted():
    rng = np.random.default_rng(6)
    truth, exclude = random_truth_exclude(rng, 40, 30)
    expected = sample_candidates(truth, exclude, 6, seed=2)
    shuffled = []
    for m in (truth, exclude):
        m = m.copy()
        for u in range(m.shape[0]):
            lo, hi = m.indptr[u], m.indptr[u + 1]
            m.indices[lo:hi] = m.indices[lo:hi][::-1].copy()
        m.has_sorted_indices = False
        shuffled.append(m)
    before = [m.indices.copy() for m in shuffled]
    np.testing.assert_array_equal(sample_candidates(*shuffled, 6, seed=2), expected)
    for m, indices in zip(shuffled, before, strict=True):
        np.testing.assert_array_equal(m.indices, indices)


def test_negatives_are_uniform_over_available_items():
    # 4,000 identical users: item 0 held out, items 1 and 2 bought, items 3..12 available.
    # Each of the 10 available items is drawn with probability 4/10 for each user.
    n_users, n_items, n_negatives = 4000, 13, 4
    truth = sp.csr_matrix(
        (np.ones(n_users), np.zeros(n_users, int), np.arange(n_users + 1)), shape=(n_users, 13)
    )
    exclude = sp.csr_matrix(
        (np.ones(2 * n_users), np.tile([1, 2], n_users), np.arange(0, 2 * n_users + 1, 2)),
        shape=(n_users, n_items),
    )
    got = sample_candidates(truth, exclude, n_negatives, seed=0)
    counts = np.bincount(got[got >= 0], minlength=n_items)
    assert counts[0] == n_users and counts[1] == counts[2] == 0
    share = counts[3:] / n_users
    # Binomial standard error sqrt(0.4 * 0.6 / 4000) = 0.0077; allow 5 of them.
    np.testing.assert_allclose(share, 0.4, atol=0.04)


def test_small_budgets_force_many_chunks_and_blocks(monkeypatch):
    rng = np.random.default_rng(5)
    truth, exclude = random_truth_exclude(rng, 90, 60, bought=0.45)
    monkeypatch.setattr(sampling, "_DRAW_BUDGET", 40)  # about one user per chunk
    monkeypatch.setattr(sampling, "_MASK_BUDGET", 70)  # one user per dense block
    for n_negatives in (5, 30, 59):
        got = sample_candidates(truth, exclude, n_negatives, seed=1)
        check_candidates(got, truth, exclude, n_negatives)


def test_near_full_buyers_use_every_item_path_and_sampling_path():
    # A user with exactly n_negatives + 1 available items needs the sampling path with a low
    # acceptance rate; one with n_negatives available takes them all.
    n_items = 200
    exclude = np.zeros((2, n_items), bool)
    exclude[0, 11:] = True  # row 0: item 0 held out, 1..10 available (10)
    exclude[1, 12:] = True  # row 1: item 0 held out, 1..11 available (11)
    truth = np.zeros((2, n_items), bool)
    truth[:, 0] = True
    got = sample_candidates(csr(truth), csr(exclude), 10, seed=0)
    check_candidates(got, csr(truth), csr(exclude), 10)
    np.testing.assert_array_equal(got[0], np.arange(11))


@st.composite
def sampling_cases(draw):
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 15))
    truth = draw(hnp.arrays(np.bool_, (n_users, n_items)))
    exclude = draw(hnp.arrays(np.bool_, (n_users, n_items)))
    n_negatives = draw(st.integers(1, 20))
    seed = draw(st.integers(0, 2**32 - 1))
    return csr(truth), csr(exclude), n_negatives, seed


@settings(max_examples=200, deadline=None)
@given(sampling_cases())
def test_sampling_properties(case):
    truth, exclude, n_negatives, seed = case
    got = sample_candidates(truth, exclude, n_negatives, seed=seed)
    check_candidates(got, truth, exclude, n_negatives)
    np.testing.assert_array_equal(got, sample_candidates(truth, exclude, n_negatives, seed=seed))


# ---------------------------------------------------------------------------------------------
# Ranking among candidates.
# ---------------------------------------------------------------------------------------------
def test_rank_candidates_hand_case():
    scores = np.array(
        [
            [0.5, 0.9, 0.9, 0.1, 0.9],
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [1.0, 1.0, 1.0, 1.0, 1.0],
        ],
        dtype=np.float32,
    )
    # Row 0: among {4, 2, 0}: 0.9 at 2 and 4 (tie -> 2 first), then 0 (0.5); item 1 (0.9) is
    # not a candidate. Row 1: among {0, 3}: 3 then 0. Row 2: no candidates.
    candidates = np.array([[4, 2, 0, -1], [-1, 0, 3, -1], [-1, -1, -1, -1]])
    items, values = rank_candidates(scores, candidates, 2)
    np.testing.assert_array_equal(items, [[2, 4], [3, 0], [-1, -1]])
    np.testing.assert_array_equal(
        values, np.array([[0.9, 0.9], [4, 1], [NEG_INF, NEG_INF]], np.float32)
    )
    items, _ = rank_candidates(scores, candidates, 5)
    np.testing.assert_array_equal(
        items, [[2, 4, 0, -1, -1], [3, 0, -1, -1, -1], [-1, -1, -1, -1, -1]]
    )


def test_rank_candidates_helpers():
    scores = np.array([[3, 1, 2]])  # integer scores come back as floats
    cand = np.array([[0, 2, -1]])
    gathered = candidate_scores(scores, cand)
    assert gathered.dtype.kind == "f"
    np.testing.assert_array_equal(gathered, [[3.0, 2.0, NEG_INF]])
    columns, _ = top_k(gathered, 3)
    np.testing.assert_array_equal(candidate_items(cand, columns), [[0, 2, -1]])


def test_rank_candidates_with_no_candidate_columns():
    items, values = rank_candidates(np.ones((2, 3)), np.empty((2, 0), int), 2)
    np.testing.assert_array_equal(items, -np.ones((2, 2)))
    assert np.isneginf(values).all()


def test_rank_candidates_rejects_bad_arguments():
    scores = np.ones((2, 4))
    with pytest.raises(ParameterError, match="k=0"):
        rank_candidates(scores, np.array([[0], [1]]), 0)
    with pytest.raises(ParameterError, match="one row per score row"):
        rank_candidates(scores, np.array([[0]]), 1)
    with pytest.raises(ParameterError, match="candidate item 4 is outside"):
        rank_candidates(scores, np.array([[0], [4]]), 1)
    with pytest.raises(ParameterError, match="same item twice"):
        rank_candidates(scores, np.array([[1, 1], [0, 2]]), 1)


@st.composite
def candidate_cases(draw):
    n_rows = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 12))
    scores = draw(
        hnp.arrays(
            np.float32,
            (n_rows, n_items),
            elements=st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, NEG_INF]),
        )
    )
    width = draw(st.integers(0, n_items + 2))
    rows = []
    for _ in range(n_rows):
        items = draw(
            st.lists(st.integers(0, n_items - 1), unique=True, max_size=min(width, n_items))
        )
        rows.append(items + [-1] * (width - len(items)))
    perm = draw(st.permutations(range(width))) if width else []
    candidates = np.array(rows, dtype=np.int64).reshape(n_rows, width)[:, list(perm)]
    k = draw(st.integers(1, n_items + 2))
    return scores, candidates, k


@settings(max_examples=200, deadline=None)
@given(candidate_cases())
def test_rank_candidates_equals_full_ranking_of_masked_scores(case):
    # Reference: every non-candidate scored -inf, then the full top_k over all items.
    scores, candidates, k = case
    masked = np.full_like(scores, NEG_INF)
    for r in range(scores.shape[0]):
        c = candidates[r][candidates[r] >= 0]
        masked[r, c] = scores[r, c]
    expected_items, expected_values = top_k(masked, k)
    items, values = rank_candidates(scores, candidates, k)
    np.testing.assert_array_equal(items, expected_items)
    np.testing.assert_array_equal(values, expected_values)
    for r in range(scores.shape[0]):
        assert set(items[r][items[r] >= 0].tolist()) <= set(candidates[r].tolist())


@settings(max_examples=100, deadline=None)
@given(sampling_cases(), st.data())
def test_sampled_ranking_never_has_fewer_hits_than_full_ranking(case, data):
    # Candidates are a subset of the unbought items, so a held-out item can only move up.
    truth, exclude, n_negatives, seed = case
    scores = data.draw(
        hnp.arrays(np.float32, truth.shape, elements=st.sampled_from([0.0, 1.0, 2.0, 3.0]))
    )
    k = data.draw(st.integers(1, truth.shape[1] + 1))
    full = scores.copy()
    full[exclude.toarray() != 0] = NEG_INF
    full_items, _ = top_k(full, k)
    candidates = sample_candidates(truth, exclude, n_negatives, seed=seed)
    sampled_items, _ = rank_candidates(scores, candidates, k)
    full_hits = hit_matrix(full_items, truth).sum(axis=1)
    sampled_hits = hit_matrix(sampled_items, truth).sum(axis=1)
    assert (sampled_hits >= full_hits).all()
