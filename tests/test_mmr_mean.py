"""MMR over the mean similarity (``RerankSpec(aggregate="mean")``): hand-computed, a naive
reference, its tie to intra-list diversity, properties, and the CLI/tradeoff/serving wiring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from growthrec.cli.main import build_parser
from growthrec.cli.options import list_spec_from, list_spec_text
from growthrec.core.metrics import intra_list_diversity_at_k
from growthrec.core.reranking import (
    Cap,
    RerankSpec,
    category_table,
    rerank,
    similarity_block,
    similarity_from_categories,
    similarity_from_vectors,
)
from growthrec.core.reranking.mmr import mmr_lists
from growthrec.core.reranking.relevance import penalised_relevance
from growthrec.core.reranking.rules import ListBuilder
from growthrec.core.reranking.similarity import gather_similarity
from growthrec.errors import ParameterError
from growthrec.evaluation.tradeoff import parse_curve
from growthrec.pipeline.fitting import fit_model
from growthrec.serving.answers import list_spec
from growthrec.serving.schemas import CustomerRequest

# ---------------------------------------------------------------------------------------------
# Where max and mean part. Candidates 0..4 scored 1.0, 0.9, 0.8, 0.5, 0.0 (min-max: the same),
# categories A B A C C, similarity 1 within a category, else 0; strength 0.3 (λ = 0.7), lists
# of 3; 0.7 r = 0.70, 0.63, 0.56, 0.35, 0.
#   step 1: item 0 (0.70).
#   step 2 (one item chosen, max = mean): similarity to 0 is 0 1 0 0 for items 1..4:
#           item 1 0.63, item 2 0.56 - 0.3 = 0.26, item 3 0.35, item 4 0 -> item 1 (0.63)
#   step 3: item 2 is like item 0 and unlike item 1, items 3 and 4 like neither:
#     max:  item 2 0.56 - 0.3 · 1   = 0.26, item 3 0.35, item 4 0 -> item 3 (0.35)
#     mean: item 2 0.56 - 0.3 · 1/2 = 0.41, item 3 0.35, item 4 0 -> item 2 (0.41)
# ---------------------------------------------------------------------------------------------
CANDIDATES = np.array([[0, 1, 2, 3, 4]])
SCORES = np.array([[1.0, 0.9, 0.8, 0.5, 0.0]])
CATEGORIES = np.array([0, 1, 0, 2, 2])


def _similarity():
    return similarity_from_categories(category_table(CATEGORIES))


@pytest.mark.parametrize(
    ("aggregate", "items", "gains"),
    [("max", [0, 1, 3], [0.70, 0.63, 0.35]), ("mean", [0, 1, 2], [0.70, 0.63, 0.41])],
)
def test_max_and_mean_part_at_the_third_pick_by_hand(aggregate, items, gains):
    spec = RerankSpec(kind="mmr", strength=0.3, aggregate=aggregate)
    out = rerank(CANDIDATES, SCORES, 3, spec, similarity=_similarity())
    assert out.items.tolist() == [items]
    np.testing.assert_allclose(out.scores[0], gains, atol=1e-6)


def test_mean_keeps_telling_candidates_apart_where_max_cannot_by_hand():
    # Items 0..5: A B A A B A scored 1.0, 0.9, 0.8, 0.7, 0.5, 0.0; strength 0.5, lists of 4;
    # 0.5 r = 0.50, 0.45, 0.40, 0.35, 0.25, 0.
    #   steps 1-3 agree: 0 (0.50), 1 (0.45: the As lose 0.5), 2 (max 0.4 - 0.5 = -0.1;
    #     mean 0.4 - 0.5/2 = 0.15, ahead of item 3's 0.10 and item 4's 0.00).
    #   step 4, after A B A: max penalises every candidate fully (each is like a chosen item):
    #     item 3 0.35 - 0.5 = -0.15, item 4 0.25 - 0.5 = -0.25 -> item 3, a third A;
    #   mean: item 3 (like 2 of 3) 0.35 - 0.5 · 2/3 = 0.0167, item 4 (like 1 of 3)
    #     0.25 - 0.5 · 1/3 = 0.0833 -> item 4: two As and two Bs, intra-list diversity 4/6
    #     against max's 3/6.
    candidates = np.array([[0, 1, 2, 3, 4, 5]])
    categories = np.array([0, 1, 0, 0, 1, 0])
    similarity = similarity_from_categories(category_table(categories))
    scores = np.array([[1.0, 0.9, 0.8, 0.7, 0.5, 0.0]])
    lists = {}
    for aggregate, items, last in (
        ("max", [0, 1, 2, 3], -0.15),
        ("mean", [0, 1, 2, 4], 0.25 - 0.5 / 3),
    ):
        spec = RerankSpec("mmr", 0.5, aggregate=aggregate)
        out = rerank(candidates, scores, 4, spec, similarity=similarity)
        assert out.items.tolist() == [items]
        assert out.scores[0, 3] == pytest.approx(last, abs=1e-6)
        lists[aggregate] = out.items
    ild = {a: intra_list_diversity_at_k(v, 4, categories=categories) for a, v in lists.items()}
    assert ild == pytest.approx({"max": 3 / 6, "mean": 4 / 6})


# ---------------------------------------------------------------------------------------------
# A naive reference: one user at a time, in plain Python.
# ---------------------------------------------------------------------------------------------
def naive_mmr_mean(scores, sim, n, strength, groups=None, limit=None):
    low, high = min(scores), max(scores)
    rel = [(s - low) / (high - low) if high > low else 1.0 for s in scores]
    chosen: list[int] = []
    while len(chosen) < min(n, len(scores)):
        best, best_gain = None, -math.inf
        for i in range(len(scores)):
            if i in chosen:
                continue
            if groups is not None and sum(groups[j] == groups[i] for j in chosen) >= limit:
                continue
            mean = sum(sim[i][j] for j in chosen) / len(chosen) if chosen else 0.0
            gain = (1 - strength) * rel[i] - strength * mean
            if gain > best_gain + 1e-6:  # float32 inside: the earlier candidate on a near tie
                best, best_gain = i, gain
        if best is None:
            break
        chosen.append(best)
    return chosen


def _random_case(seed, n_users=3, m=8, dims=3):
    rng = np.random.default_rng(seed)
    n_items = 3 * m
    vectors = rng.normal(size=(n_items, dims))
    candidates = np.stack([rng.permutation(n_items)[:m] for _ in range(n_users)])
    scores = rng.normal(size=candidates.shape)
    return vectors, candidates, scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strength", [0.2, 0.5, 0.9])
def test_mean_matches_a_naive_loop_on_cosine(seed, strength):
    vectors, candidates, scores = _random_case(seed)
    similarity = similarity_from_vectors(vectors, "factors")
    spec = RerankSpec("mmr", strength, similarity="factors", aggregate="mean")
    out = rerank(candidates, scores, 5, spec, similarity=similarity)
    sims = similarity_block(similarity, candidates)
    for u in range(candidates.shape[0]):
        expected = naive_mmr_mean(scores[u].tolist(), sims[u].tolist(), 5, strength)
        assert out.items[u].tolist() == candidates[u, expected].tolist()


@pytest.mark.parametrize("seed", range(4))
def test_mean_matches_a_naive_loop_on_several_categories_with_a_cap(seed):
    rng = np.random.default_rng(100 + seed)
    n_items = 20
    matrix = sp.csr_matrix((rng.random((n_items, 4)) < 0.4).astype(float))
    similarity = similarity_from_categories(category_table(matrix))
    brands = rng.integers(0, 3, n_items)
    candidates = np.stack([rng.permutation(n_items)[:9] for _ in range(3)])
    scores = rng.normal(size=candidates.shape)
    spec = RerankSpec("mmr", 0.6, aggregate="mean")
    out = rerank(candidates, scores, 6, spec, similarity=similarity, caps=[Cap(brands, 2)])
    sims = similarity_block(similarity, candidates)
    for u in range(3):
        groups = brands[candidates[u]].tolist()
        expected = naive_mmr_mean(scores[u].tolist(), sims[u].tolist(), 6, 0.6, groups, 2)
        got = [i for i in out.items[u].tolist() if i >= 0]
        assert got == candidates[u, expected].tolist()


def test_the_gains_add_up_to_the_lists_intra_list_diversity():
    """Each pick is credited with its mean similarity to the items before it; weighted by how
    many those are, the credits sum to the list's pairwise similarity: 1 - ILD over the pairs."""
    vectors, candidates, scores = _random_case(7, n_users=4, m=12, dims=4)
    strength, n = 0.6, 6
    similarity = similarity_from_vectors(vectors, "factors")
    spec = RerankSpec("mmr", strength, similarity="factors", aggregate="mean")
    out = rerank(candidates, scores, n, spec, similarity=similarity)
    low, high = scores.min(axis=1, keepdims=True), scores.max(axis=1, keepdims=True)
    relevance = (scores - low) / (high - low)
    pairs = n * (n - 1) / 2
    for u in range(candidates.shape[0]):
        position = [int(np.flatnonzero(candidates[u] == i)[0]) for i in out.items[u]]
        mean_similarity = ((1 - strength) * relevance[u, position] - out.scores[u]) / strength
        credited = sum(t * mean_similarity[t] for t in range(1, n))
        ild = intra_list_diversity_at_k(out.items[u : u + 1], n, item_vectors=vectors)
        assert credited / pairs == pytest.approx(1.0 - ild, abs=1e-5)


# ---------------------------------------------------------------------------------------------
# Properties.
# ---------------------------------------------------------------------------------------------
@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    m = draw(st.integers(1, 12))
    n = draw(st.integers(1, 8))
    strength = draw(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.8, 1.0]))
    by_categories = draw(st.booleans())
    rng = np.random.default_rng(seed)
    n_items = m + 5
    candidates = np.stack([rng.permutation(n_items)[:m] for _ in range(3)])
    candidates[rng.random(candidates.shape) < 0.15] = -1  # padding
    scores = rng.normal(size=candidates.shape)
    if by_categories:
        similarity = similarity_from_categories(category_table(rng.integers(-1, 3, n_items)))
    else:
        similarity = similarity_from_vectors(rng.normal(size=(n_items, 3)), "factors")
    return candidates, scores, n, strength, similarity, rng


@settings(max_examples=60, deadline=None)
@given(cases())
def test_lists_are_candidates_without_repeats_and_caps_hold(case):
    candidates, scores, n, strength, similarity, rng = case
    brands = rng.integers(-1, 2, similarity.n_items)
    limit = int(rng.integers(1, 3))
    spec = RerankSpec("mmr", strength, aggregate="mean")
    out = rerank(candidates, scores, n, spec, similarity=similarity, caps=[Cap(brands, limit)])
    for u in range(candidates.shape[0]):
        got = [i for i in out.items[u].tolist() if i >= 0]
        assert len(got) == len(set(got)) == out.counts[u]
        assert set(got) <= set(candidates[u][candidates[u] >= 0].tolist())
        assert out.items[u, out.counts[u] :].tolist() == [-1] * (n - out.counts[u])
        for brand in range(2):
            assert sum(brands[i] == brand for i in got) <= limit


@settings(max_examples=60, deadline=None)
@given(cases())
def test_strength_zero_is_the_plain_ranking(case):
    candidates, scores, n, _, similarity, _ = case
    plain = rerank(candidates, scores, n)
    # rerank() itself skips the re-ranker at strength 0; the greedy must agree on its own.
    relevance = penalised_relevance(scores, candidates, 0.0, None)
    builder = ListBuilder(candidates, n)
    block = gather_similarity(similarity, candidates)
    mmr_lists(np.where(candidates >= 0, relevance, 0.0), block, builder, 0.0, "mean")
    found = builder.positions >= 0
    picked = np.take_along_axis(candidates, np.where(found, builder.positions, 0), axis=1)
    assert np.where(found, picked, -1).tolist() == plain.items[:, : picked.shape[1]].tolist()


@settings(max_examples=60, deadline=None)
@given(cases())
def test_the_order_of_the_candidates_does_not_matter(case):
    candidates, scores, n, strength, similarity, rng = case
    if similarity.table.ndim == 1 or strength in (1.0,):
        return  # 0/1 similarities and strength 1 tie exactly: ties go to the earlier column
    spec = RerankSpec("mmr", strength, similarity="factors", aggregate="mean")
    order = rng.permutation(candidates.shape[1])
    one = rerank(candidates, scores, n, spec, similarity=similarity)
    other = rerank(candidates[:, order], scores[:, order], n, spec, similarity=similarity)
    assert one.items.tolist() == other.items.tolist()


# ---------------------------------------------------------------------------------------------
# The spec, the tradeoff curve, the CLI.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given_", "message"),
    [
        (
            {"kind": "mmr", "aggregate": "median"},
            "unknown aggregate 'median'; choose one of max, mean",
        ),
        ({"kind": "dpp", "aggregate": "mean"}, "aggregate=mean applies to the mmr re-ranker only"),
    ],
)
def test_a_bad_aggregate_is_one_line(given_, message):
    with pytest.raises(ParameterError, match=message):
        RerankSpec(strength=0.3, **given_)


def test_tradeoff_curves_name_the_mean_form():
    assert parse_curve("mmr-mean").spec_at(0.3, "categories") == RerankSpec(
        "mmr", 0.3, 0.0, "categories", None, "mean"
    )
    assert parse_curve("popularity=0.8+mmr-mean").spec_at(0.2, "factors") == RerankSpec(
        "mmr", 0.2, 0.8, "factors", None, "mean"
    )
    assert parse_curve("popularity+mmr").spec_at(0.2, "factors").aggregate == "max"
    with pytest.raises(ParameterError, match="one pass holds one of mmr, dpp and calibration"):
        parse_curve("mmr+mmr-mean")


def test_the_command_line_names_it_mmr_mean(small_shop):
    args = build_parser().parse_args(
        [
            "evaluate",
            "--data",
            "shop.csv",
            "--rerank",
            "mmr-mean",
            "--strength",
            "0.4",
            "--similarity",
            "factors",
        ]
    )
    options = list_spec_from(args, 10, small_shop.items, {})
    assert options.spec.rerank == RerankSpec("mmr", 0.4, similarity="factors", aggregate="mean")
    assert options.payload()["rerank"]["aggregate"] == "mean"
    assert "mmr-mean 0.4" in list_spec_text(options.spec)
    args = build_parser().parse_args(
        [
            "evaluate",
            "--data",
            "shop.csv",
            "--rerank",
            "mmr",
            "--strength",
            "0.4",
            "--similarity",
            "factors",
        ]
    )
    assert list_spec_from(args, 10, small_shop.items, {}).spec.rerank.aggregate == "max"


def test_a_service_request_asks_for_the_mean_form(small_shop):
    model = fit_model(small_shop, "svd", {"factors": 4}, seed=0)
    rerank_ = {"kind": "mmr", "strength": 0.4, "similarity": "factors", "aggregate": "mean"}
    request = CustomerRequest.model_validate(
        {"customer": str(small_shop.users.ids[0]), "rerank": rerank_}
    )
    spec = list_spec(model, request, None, [])
    assert spec.rerank == RerankSpec("mmr", 0.4, similarity="factors", aggregate="mean")
    with pytest.raises(ValidationError, match="aggregate"):
        CustomerRequest.model_validate(
            {"customer": str(small_shop.users.ids[0]), "rerank": {**rerank_, "aggregate": "median"}}
        )
