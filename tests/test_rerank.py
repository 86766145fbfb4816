"""Re-ranking: hand-computed MMR, DPP and calibration cases, naive references, rules, properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.core.reranking import (
    CALIBRATION_ALPHA,
    Cap,
    RerankSpec,
    category_table,
    kl_smoothed,
    mask_candidates,
    rerank,
    similarity_block,
    similarity_from_categories,
    similarity_from_vectors,
    user_category_distribution,
    user_category_shares,
)
from growthrec.core.reranking.dpp import DPP_RIDGE
from growthrec.errors import ParameterError

# ---------------------------------------------------------------------------------------------
# The 5-item MMR example. Candidates 0..4 scored 1.0, 0.9, 0.8, 0.3, 0.0 (min-max: the same),
# categories A A B A C, similarity 1 within a category, else 0; lists of 3.
#
# strength 0.5 (λ = 0.5):   step 1: 0.5 r             -> item 0 (0.5)
#   step 2: 0.5 r - 0.5 [1 1 0 1 0]: item 1 -0.05, item 2 0.40, item 3 -0.35, item 4 0 -> 2
#   step 3: nearest [1 1 1 1 0]:     item 1 -0.05, item 3 -0.35, item 4 0             -> 4
# strength 0.1 (λ = 0.9):   step 1 -> item 0 (0.9)
#   step 2: item 1 0.81 - 0.1 = 0.71, item 2 0.72, item 3 0.17, item 4 0              -> 2
#   step 3: nearest [1 1 1 1 0]: item 1 0.71, item 3 0.17, item 4 0                   -> 1
# ---------------------------------------------------------------------------------------------
FIVE_CANDIDATES = np.array([[0, 1, 2, 3, 4]])
FIVE_SCORES = np.array([[1.0, 0.9, 0.8, 0.3, 0.0]])
FIVE_CATEGORIES = np.array([0, 0, 1, 0, 2])


def five_similarity():
    return similarity_from_categories(category_table(FIVE_CATEGORIES))


@pytest.mark.parametrize(
    ("strength", "items", "gains"),
    [
        (0.5, [0, 2, 4], [0.5, 0.4, 0.0]),
        (0.1, [0, 2, 1], [0.9, 0.72, 0.71]),
        (0.0, [0, 1, 2], [1.0, 0.9, 0.8]),
    ],
)
def test_mmr_five_items_by_hand(strength, items, gains):
    out = rerank(
        FIVE_CANDIDATES,
        FIVE_SCORES,
        3,
        RerankSpec(kind="mmr", strength=strength),
        similarity=five_similarity(),
    )
    assert out.items.tolist() == [items]
    np.testing.assert_allclose(out.scores[0], gains, atol=1e-12)
    assert out.counts.tolist() == [3]
    assert out.short.size == 0


def test_mmr_with_a_cap_of_one_per_category_by_hand():
    # Plain order under "at most 1 per category": 0 (A), 2 (B), then 1 and 3 are A -> 4 (C).
    out = rerank(FIVE_CANDIDATES, FIVE_SCORES, 4, caps=[Cap(FIVE_CATEGORIES, 1, "category")])
    assert out.items.tolist() == [[0, 2, 4, -1]]
    assert out.counts.tolist() == [3]
    assert out.short.tolist() == [0]
    assert np.isneginf(out.scores[0, 3])


def test_popularity_penalty_by_hand():
    # Popularity 100, 0, 0, 0, 0: item 0's log popularity is 1, the others' 0. With beta 0.5
    # relevance becomes 0.5, 0.9, 0.8, 0.3, 0.0 -> min-max 5/9, 1, 8/9, 3/9, 0.
    popularity = np.array([100, 0, 0, 0, 0])
    out = rerank(
        FIVE_CANDIDATES, FIVE_SCORES, 5, RerankSpec(popularity_penalty=0.5), popularity=popularity
    )
    assert out.items.tolist() == [[1, 2, 0, 3, 4]]
    np.testing.assert_allclose(out.scores[0], [1, 8 / 9, 5 / 9, 3 / 9, 0], atol=1e-12)


def test_popularity_penalty_composes_with_mmr_in_one_pass():
    # Relevance after the penalty (above): 5/9, 1, 8/9, 1/3, 0; MMR at strength 0.5:
    # step 1 -> item 1 (0.5); step 2: nearest [1 1 0 1 0]: item 0 5/18 - 1/2 < 0,
    # item 2 4/9, item 3 < 0, item 4 0 -> 2; step 3: item 4 (0) beats 0 and 3 -> 4.
    out = rerank(
        FIVE_CANDIDATES,
        FIVE_SCORES,
        3,
        RerankSpec(kind="mmr", strength=0.5, popularity_penalty=0.5),
        similarity=five_similarity(),
        popularity=np.array([100, 0, 0, 0, 0]),
    )
    assert out.items.tolist() == [[1, 2, 4]]
    np.testing.assert_allclose(out.scores[0], [0.5, 4 / 9, 0.0], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Naive references: one user at a time, in plain Python (and np.linalg.det for the DPP).
# ---------------------------------------------------------------------------------------------
def _relevance(scores):
    low, high = min(scores), max(scores)
    return [(s - low) / (high - low) if high > low else 1.0 for s in scores]


def naive_mmr(scores, sim, n, strength):
    rel = _relevance(scores)
    chosen = []
    while len(chosen) < min(n, len(scores)):
        best, best_gain = None, -math.inf
        for i in range(len(scores)):
            if i in chosen:
                continue
            nearest = max((sim[i][j] for j in chosen), default=0.0)
            gain = (1 - strength) * rel[i] - strength * nearest
            if gain > best_gain:
                best, best_gain = i, gain
        chosen.append(best)
    return chosen


def dpp_kernel(scores, sim, strength):
    rel = np.array(_relevance(scores))
    theta = 1 - strength
    quality = np.exp(theta / (2 * (1 - theta)) * rel)
    s = (1 - DPP_RIDGE) * np.asarray(sim, dtype=np.float64)
    np.fill_diagonal(s, 1.0)
    return quality[:, None] * s * quality[None, :]


def naive_dpp_greedy(scores, sim, n, strength, window=None):
    kernel = dpp_kernel(scores, sim, strength)
    chosen: list[int] = []
    while len(chosen) < min(n, len(scores)):
        recent = chosen if window is None else chosen[len(chosen) - (window - 1) :]
        if window is not None and len(chosen) < window - 1:
            recent = chosen
        dets = {
            i: np.linalg.det(kernel[np.ix_([*recent, i], [*recent, i])])
            for i in range(len(scores))
            if i not in chosen
        }
        chosen.append(max(dets, key=dets.get))
    return chosen


def exact_dpp_map(scores, sim, n, strength):
    kernel = dpp_kernel(scores, sim, strength)
    return max(
        itertools.combinations(range(len(scores)), n),
        key=lambda subset: np.linalg.det(kernel[np.ix_(subset, subset)]),
    )


def random_case(seed, n_users=3, m=7, dims=3):
    rng = np.random.default_rng(seed)
    n_items = 3 * m
    vectors = rng.normal(size=(n_items, dims))
    candidates = np.stack([rng.permutation(n_items)[:m] for _ in range(n_users)])
    scores = rng.normal(size=candidates.shape)
    return vectors, candidates, scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strength", [0.2, 0.5, 0.9])
def test_mmr_matches_a_naive_loop(seed, strength):
    vectors, candidates, scores = random_case(seed)
    similarity = similarity_from_vectors(vectors, "factors")
    out = rerank(
        candidates, scores, 4, RerankSpec(kind="mmr", strength=strength), similarity=similarity
    )
    sims = similarity_block(similarity, candidates)
    for u in range(candidates.shape[0]):
        expected = naive_mmr(scores[u].tolist(), sims[u].tolist(), 4, strength)
        assert out.items[u].tolist() == candidates[u, expected].tolist()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strength", [0.3, 0.6, 0.9])
def test_dpp_matches_a_brute_force_greedy_on_determinants(seed, strength):
    vectors, candidates, scores = random_case(seed)
    similarity = similarity_from_vectors(vectors, "factors")
    spec = RerankSpec(kind="dpp", strength=strength, similarity="factors")
    out = rerank(candidates, scores, 5, spec, similarity=similarity)
    sims = similarity_block(similarity, candidates)
    for u in range(candidates.shape[0]):
        expected = naive_dpp_greedy(scores[u], sims[u], 5, strength)
        assert out.items[u].tolist() == candidates[u, expected].tolist()


@pytest.mark.parametrize("seed", range(4))
def test_dpp_sliding_window_matches_a_brute_force_greedy(seed):
    vectors, candidates, scores = random_case(seed, m=8)
    similarity = similarity_from_vectors(vectors, "factors")
    spec = RerankSpec(kind="dpp", strength=0.5, similarity="factors", window=3)
    out = rerank(candidates, scores, 6, spec, similarity=similarity)
    sims = similarity_block(similarity, candidates)
    for u in range(candidates.shape[0]):
        expected = naive_dpp_greedy(scores[u], sims[u], 6, 0.5, window=3)
        assert out.items[u].tolist() == candidates[u, expected].tolist()


def test_dpp_greedy_is_the_exact_map_on_orthogonal_groups():
    # Three categories (orthogonal directions), two items each: the determinant of a subset
    # with two items of one category is ~ridge-small, so the MAP of 3 items is the best item
    # of each category -- greedy finds it, and an exhaustive search over all 20 subsets agrees.
    categories = np.array([0, 0, 1, 1, 2, 2])
    candidates = np.array([[0, 1, 2, 3, 4, 5]])
    scores = np.array([[0.9, 1.0, 0.2, 0.5, 0.6, 0.1]])
    similarity = similarity_from_categories(category_table(categories))
    out = rerank(candidates, scores, 3, RerankSpec(kind="dpp", strength=0.5), similarity=similarity)
    sims = similarity_block(similarity, candidates)[0]
    exact = exact_dpp_map(scores[0], sims, 3, 0.5)
    assert sorted(out.items[0].tolist()) == sorted(exact) == [1, 3, 4]
    assert out.items[0].tolist() == [1, 4, 3]  # by relevance, each category's best first


def test_dpp_one_item_is_the_exact_map():
    vectors, candidates, scores = random_case(11)
    similarity = similarity_from_vectors(vectors, "factors")
    out = rerank(
        candidates,
        scores,
        1,
        RerankSpec(kind="dpp", strength=0.4, similarity="factors"),
        similarity=similarity,
    )
    sims = similarity_block(similarity, candidates)
    for u in range(candidates.shape[0]):
        (best,) = exact_dpp_map(scores[u], sims[u], 1, 0.4)
        assert out.items[u, 0] == candidates[u, best]


# ---------------------------------------------------------------------------------------------
# Calibration. p = (1/2, 1/2) over categories A, B; alpha = 0.01.
#   A list of A only: q = (1, 0), q~ = (0.995, 0.005):
#       KL = 1/2 ln(0.5 / 0.995) + 1/2 ln(0.5 / 0.005) = 1/2 (-0.688135) + 1/2 (4.605170)
#          = 1.958518
#   A list of one A and one B: q = p, so q~ = p and KL = 0.
# Candidates A A B A scored 1, 0.75, 0, 0.5 (relevance the same), strength 0.5, lists of 2:
#   step 1: every candidate's KL is 1.958518: 0.5 r - 0.979259 -> item 0
#   step 2: another A keeps KL 1.958518 (item 1: 0.375 - 0.979 < 0); B brings it to 0 -> 2
# ---------------------------------------------------------------------------------------------
KL_ONE_SIDED = 0.5 * math.log(0.5 / 0.995) + 0.5 * math.log(0.5 / 0.005)


def test_kl_by_hand():
    assert abs(KL_ONE_SIDED - 1.958518) < 1e-6
    p = np.array([[0.5, 0.5], [0.5, 0.5], [0.0, 0.0]])
    q = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(kl_smoothed(p, q, CALIBRATION_ALPHA), [KL_ONE_SIDED, 0.0, 0.0])


def test_calibration_by_hand():
    categories = category_table(np.array([0, 0, 1, 0]))
    history = sp.csr_matrix(np.array([[1, 0, 1, 0]]))  # bought one A and one B
    p = user_category_distribution(history, categories)
    np.testing.assert_allclose(p.toarray(), [[0.5, 0.5]])
    out = rerank(
        np.array([[0, 1, 2, 3]]),
        np.array([[1.0, 0.75, 0.0, 0.5]]),
        2,
        RerankSpec(kind="calibration", strength=0.5),
        categories=categories,
        user_categories=p,
    )
    assert out.items.tolist() == [[0, 2]]
    np.testing.assert_allclose(out.scores[0], [0.5 - 0.5 * KL_ONE_SIDED, 0.0], atol=1e-12)


def test_an_item_of_two_categories_splits_its_weight():
    # Item 0 is A and B (1/2 each), item 1 is A: a customer who bought item 0 has p = (1/2, 1/2),
    # and a list holding item 0 alone is perfectly calibrated while item 1 alone is not.
    matrix = sp.csr_matrix(np.array([[1, 1], [1, 0]]))
    categories = category_table(matrix)
    assert categories.codes.tolist() == [[0, 1], [0, -1]]
    np.testing.assert_allclose(categories.weights, [[0.5, 0.5], [1.0, 0.0]])
    p = user_category_distribution(sp.csr_matrix(np.array([[1, 0]])), categories)
    np.testing.assert_allclose(p.toarray(), [[0.5, 0.5]])
    out = rerank(
        np.array([[1, 0]]),
        np.array([[1.0, 0.0]]),
        1,
        RerankSpec(kind="calibration", strength=0.9),
        categories=categories,
        user_categories=p,
    )
    assert out.items.tolist() == [[0]]
    assert out.scores[0, 0] == pytest.approx(0.0, abs=1e-12)  # (1 - 0.9) * 0 - 0.9 * KL 0


def naive_calibration(scores, item_cats, p, n, strength, alpha=CALIBRATION_ALPHA):
    rel = _relevance(scores)
    chosen: list[int] = []
    n_cats = len(p)
    while len(chosen) < min(n, len(scores)):
        best, best_gain = None, -math.inf
        for i in range(len(scores)):
            if i in chosen:
                continue
            listed = [*chosen, i]
            q = [0.0] * n_cats
            for j in listed:
                for c in item_cats[j]:
                    q[c] += 1.0 / len(item_cats[j]) / len(listed)
            kl = sum(
                pc * math.log(pc / ((1 - alpha) * qc + alpha * pc))
                for pc, qc in zip(p, q, strict=True)
                if pc > 0
            )
            gain = (1 - strength) * rel[i] - strength * kl
            if gain > best_gain:
                best, best_gain = i, gain
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strength", [0.3, 0.7, 0.95])
def test_calibration_matches_a_naive_loop(seed, strength):
    rng = np.random.default_rng(seed)
    n_items, n_cats = 20, 4
    membership = rng.random((n_items, n_cats)) < 0.35
    membership[np.arange(n_items), rng.integers(0, n_cats, n_items)] = True  # at least one
    categories = category_table(sp.csr_matrix(membership.astype(float)))
    history = sp.csr_matrix((rng.random((3, n_items)) < 0.3).astype(float))
    p = user_category_distribution(history, categories)
    candidates = np.stack([rng.permutation(n_items)[:8] for _ in range(3)])
    scores = rng.normal(size=candidates.shape)
    out = rerank(
        candidates,
        scores,
        4,
        RerankSpec(kind="calibration", strength=strength),
        categories=categories,
        user_categories=p,
    )
    item_cats = [list(np.flatnonzero(row)) for row in membership]
    for u in range(3):
        cats = [item_cats[i] for i in candidates[u]]
        expected = naive_calibration(scores[u].tolist(), cats, p.toarray()[u].tolist(), 4, strength)
        assert out.items[u].tolist() == candidates[u, expected].tolist()


# ---------------------------------------------------------------------------------------------
# Similarity tables.
# ---------------------------------------------------------------------------------------------
def test_similarity_from_categories_by_hand():
    one = similarity_block(
        similarity_from_categories(category_table(np.array([0, 0, 1, -1]))),
        np.array([[0, 1, 2, 3, -1]]),
    )[0]
    # Same category 1, else 0; no category (item 3) and padding are similar to nothing.
    expected = [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0] * 5]
    np.testing.assert_array_equal(one, expected)
    # {A, B} against {A}: |A ∩ B| / sqrt(2 * 1) = 1 / sqrt(2).
    several = category_table(sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]])))
    block = similarity_block(similarity_from_categories(several), np.array([[0, 1, 2]]))[0]
    np.testing.assert_allclose(
        block, [[1, 1 / math.sqrt(2), 0], [1 / math.sqrt(2), 1, 0], [0, 0, 1]], atol=1e-6
    )


# ---------------------------------------------------------------------------------------------
# Rules.
# ---------------------------------------------------------------------------------------------
def test_allowed_mask_per_item_and_per_user():
    candidates = np.array([[0, 1, 2], [2, 1, -1]])
    assert mask_candidates(candidates, np.array([True, False, True])).tolist() == [
        [0, -1, 2],
        [2, -1, -1],
    ]
    per_user = np.array([[False, True, True], [True, True, False]])
    assert mask_candidates(candidates, per_user).tolist() == [[-1, 1, 2], [-1, 1, -1]]


def test_a_filter_that_leaves_fewer_than_n_says_so():
    out = rerank(
        np.array([[0, 1, 2], [2, 1, 0]]),
        np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]]),
        3,
        allowed=np.array([[True, False, False], [False, False, False]]),
    )
    assert out.items.tolist() == [[0, -1, -1], [-1, -1, -1]]
    assert out.counts.tolist() == [1, 0]
    assert out.short.tolist() == [0, 1]


def test_minus_inf_scores_and_padding_are_never_recommended():
    out = rerank(
        np.array([[4, -1, 7, 9]]),
        np.array([[1.0, 5.0, -np.inf, 0.5]]),
        4,
        RerankSpec(kind="mmr", strength=0.5),
        similarity=similarity_from_categories(category_table(np.arange(10))),
    )
    assert out.items.tolist() == [[4, 9, -1, -1]]
    assert out.counts.tolist() == [2]


# ---------------------------------------------------------------------------------------------
# Bad input: one line each.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "mmr", "strength": 1.5}, "strength=1.5 is outside [0, 1] (1 - lambda of MMR)"),
        ({"kind": "mmr", "strength": -0.1}, "strength=-0.1 is outside [0, 1]"),
        ({"kind": "dpp", "strength": float("nan")}, "strength=nan is outside [0, 1]"),
        ({"popularity_penalty": 2.0}, "popularity_penalty=2.0 is outside [0, 1] (beta)"),
        ({"kind": "xquad"}, "unknown re-ranker 'xquad'; choose one of none, mmr, dpp, calibration"),
        ({"kind": "mmr", "similarity": "genre"}, "unknown similarity 'genre'"),
        ({"strength": 0.3}, "strength=0.3 needs a re-ranker"),
        ({"kind": "mmr", "strength": 0.3, "window": 3}, "window=3 applies to the dpp"),
        ({"kind": "dpp", "strength": 0.3, "window": 1}, "window=1 must be an integer >= 2"),
        ({"kind": "mmr", "strength": "0.3"}, "strength='0.3' must be a number"),
    ],
)
def test_bad_spec_is_one_line(kwargs, message):
    with pytest.raises(ParameterError) as info:
        RerankSpec(**kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


CANDIDATES = np.array([[0, 1, 2]])
SCORES = np.array([[1.0, 0.5, 0.2]])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: rerank(CANDIDATES, SCORES, 2, RerankSpec(kind="calibration", strength=0.5)),
            "calibration needs item categories, and the model has none",
        ),
        (
            lambda: rerank(CANDIDATES, SCORES, 2, RerankSpec(kind="mmr", strength=0.5)),
            "mmr compares items by their categories, and the model has none",
        ),
        (
            lambda: rerank(
                CANDIDATES,
                SCORES,
                2,
                RerankSpec(kind="calibration", strength=0.5),
                categories=category_table(np.array([0, 1, 0])),
            ),
            "calibration needs each customer's category history",
        ),
        (
            lambda: rerank(CANDIDATES, SCORES, 2, RerankSpec(popularity_penalty=0.1)),
            "popularity_penalty needs each item's popularity",
        ),
        (lambda: rerank(CANDIDATES, SCORES, 0), "n=0 must be an integer of at least 1"),
        (lambda: rerank(CANDIDATES, SCORES[:, :2], 2), "scores have shape (1, 2) but candidates"),
        (
            lambda: rerank(CANDIDATES, np.array([[1.0, np.nan, 0.0]]), 2),
            "candidate scores include NaN",
        ),
        (
            lambda: rerank(CANDIDATES, SCORES, 2, allowed=np.array([True, True])),
            "candidate item 2 is outside the 2 of allowed",
        ),
        (
            lambda: rerank(
                CANDIDATES,
                SCORES,
                2,
                RerankSpec(kind="mmr", strength=0.5),
                similarity=similarity_from_categories(category_table(np.array([0, 1]))),
            ),
            "candidate item 2 is outside the 2 rows of similarity",
        ),
        (lambda: Cap(np.array([0, 1]), 0, "brand"), "cap per brand: limit=0 must be at least 1"),
    ],
)
def test_bad_call_is_one_line(call, message):
    with pytest.raises(ParameterError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# Properties.
# ---------------------------------------------------------------------------------------------
N_ITEMS = 30


@st.composite
def batches(draw):
    n_users = draw(st.integers(1, 5))
    m = draw(st.integers(1, 12))
    rows = []
    for _ in range(n_users):
        items = draw(st.permutations(range(N_ITEMS)))[:m]
        pad = draw(st.integers(0, m))
        rows.append(list(items[: m - pad]) + [-1] * pad)
    candidates = np.array(rows, dtype=np.int64)
    scores = np.array(
        draw(
            st.lists(
                st.floats(-5, 5, allow_nan=False, width=32),
                min_size=candidates.size,
                max_size=candidates.size,
            )
        )
    ).reshape(candidates.shape)
    return candidates, scores


def _spec(kind, strength, penalty, similarity):
    return RerankSpec(
        kind=kind,
        strength=0.0 if kind == "none" else strength,
        popularity_penalty=penalty,
        similarity=similarity,
    )


def _tables(seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, 4, N_ITEMS)
    categories = category_table(codes)
    history = sp.csr_matrix((rng.random((5, N_ITEMS)) < 0.3).astype(float))
    return {
        "categories": categories,
        "codes": codes,
        "brands": rng.integers(0, 3, N_ITEMS),
        "factors": similarity_from_vectors(rng.normal(size=(N_ITEMS, 4)), "factors"),
        "by_category": similarity_from_categories(categories),
        "history": user_category_distribution(history, categories),
        "popularity": rng.integers(0, 50, N_ITEMS),
        "allowed": rng.random(N_ITEMS) < 0.8,
    }


TABLES = _tables(0)


def _run(candidates, scores, n, spec, caps=(), allowed=None):
    t = TABLES
    return rerank(
        candidates,
        scores,
        n,
        spec,
        similarity=t["factors"] if spec.similarity == "factors" else t["by_category"],
        categories=t["categories"],
        user_categories=t["history"][: candidates.shape[0]],
        popularity=t["popularity"],
        allowed=allowed,
        caps=caps,
    )


@settings(max_examples=150, deadline=None)
@given(
    batches(),
    st.integers(1, 8),
    st.sampled_from(["none", "mmr", "dpp", "calibration"]),
    st.floats(0, 1),
    st.sampled_from([0.0, 0.3]),
    st.sampled_from(["categories", "factors"]),
    st.sampled_from([0, 1, 2]),
    st.booleans(),
)
def test_lists_are_rule_abiding_subsets_without_repeats(
    batch, n, kind, strength, penalty, similarity, cap_limit, use_allowed
):
    candidates, scores = batch
    spec = _spec(kind, strength, penalty, similarity)
    caps = [Cap(TABLES["brands"], cap_limit, "brand")] if cap_limit else []
    allowed = TABLES["allowed"] if use_allowed else None
    out = _run(candidates, scores, n, spec, caps, allowed)
    assert out.items.shape == (candidates.shape[0], n)
    for u in range(candidates.shape[0]):
        items = out.items[u]
        real = items[items >= 0]
        assert (items[: real.size] >= 0).all()  # padding only at the end
        assert out.counts[u] == real.size
        assert len(set(real.tolist())) == real.size  # no repeats
        pool = [i for i in candidates[u].tolist() if i >= 0]
        if allowed is not None:
            pool = [i for i in pool if allowed[i]]
        assert set(real.tolist()) <= set(pool)  # only allowed candidates
        # Short only when the rules leave nothing else: exactly the feasible count.
        if caps:
            brands = TABLES["brands"][pool]
            feasible = sum(min(cap_limit, int((brands == g).sum())) for g in np.unique(brands))
            counts = np.bincount(TABLES["brands"][real], minlength=3)
            assert counts.max(initial=0) <= cap_limit  # the cap is never broken
        else:
            feasible = len(pool)
        assert real.size == min(n, feasible)
        assert np.isneginf(out.scores[u, real.size :]).all()
        assert np.isfinite(out.scores[u, : real.size]).all()


@settings(max_examples=100, deadline=None)
@given(
    batches(),
    st.integers(1, 8),
    st.sampled_from(["none", "mmr", "dpp", "calibration"]),
    st.sampled_from(["categories", "factors"]),
)
def test_strength_zero_is_the_plain_ranking(batch, n, kind, similarity):
    candidates, scores = batch
    out = _run(candidates, scores, n, _spec(kind, 0.0, 0.0, similarity))
    for u in range(candidates.shape[0]):
        valid = [(-scores[u, j], j) for j in range(candidates.shape[1]) if candidates[u, j] >= 0]
        expected = [candidates[u, j] for _, j in sorted(valid)][:n]  # ties: the earlier one
        assert out.items[u, : len(expected)].tolist() == expected
        assert (out.items[u, len(expected) :] == -1).all()


@settings(max_examples=60, deadline=None)
@given(batches(), st.integers(1, 6), st.sampled_from([0, 1, 2]))
def test_caps_alone_keep_the_plain_order_of_what_they_let_through(batch, n, cap_limit):
    # Greedy capping of the plain ranking: walk the ranking, skip what would break a cap.
    candidates, scores = batch
    caps = [Cap(TABLES["codes"], cap_limit, "category")] if cap_limit else []
    out = _run(candidates, scores, n, RerankSpec(), caps)
    for u in range(candidates.shape[0]):
        order = sorted(
            (j for j in range(candidates.shape[1]) if candidates[u, j] >= 0),
            key=lambda j: (-scores[u, j], j),
        )
        expected, seen = [], {}
        for j in order:
            code = int(TABLES["codes"][candidates[u, j]])
            if cap_limit and code >= 0 and seen.get(code, 0) >= cap_limit:
                continue
            seen[code] = seen.get(code, 0) + 1
            expected.append(int(candidates[u, j]))
        assert out.items[u, : min(n, len(expected))].tolist() == expected[:n]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 9), max_size=6, unique=True), min_size=1, max_size=6),
    st.lists(st.lists(st.integers(0, 3), max_size=3, unique=True), min_size=10, max_size=10),
)
def test_dense_category_shares_equal_the_sparse_distribution(histories, item_categories):
    """The dense shares a request uses are the sparse distribution the evaluation uses."""
    table = category_table(
        sp.csr_matrix(
            np.array([[c in cats for c in range(4)] for cats in item_categories], dtype=float)
        )
    )
    history = sp.csr_matrix(
        np.array([[i in bought for i in range(10)] for bought in histories], dtype=np.float32)
    )
    dense = user_category_shares(history, table)
    np.testing.assert_allclose(dense, user_category_distribution(history, table).toarray())
    sums = dense.sum(axis=1)
    assert np.allclose(sums[sums > 0], 1.0)
