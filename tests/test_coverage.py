"""Coverage boosts: a hand-computed case, a plain-Python reference, properties, the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growthrec.cli.main import build_parser
from growthrec.cli.options import list_spec_from, list_spec_text
from growthrec.core.interactions import build_interactions
from growthrec.core.reranking import RerankSpec, coverage_boosts, rerank
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ParameterError
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.rules import ListSpec

# ---------------------------------------------------------------------------------------------
# Three customers, four items, lists of one; min-max relevance of each row's candidates:
#   u0: items 0 1 2 -> 1, 0.85, 0    u1: items 0 2 3 -> 1, 0.65, 0    u2: items 0 1 3 -> 1, 0.5, 0
# coverage 0.4 in steps of 0.1 (4 rounds) for every item no list shows.
#   round 1: everyone takes item 0; 1, 2, 3 unshown          -> boosts 0, 0.1, 0.1, 0.1
#   round 2: u0 1 vs 0.95, u1 1 vs 0.75, u2 1 vs 0.6: item 0  -> boosts 0, 0.2, 0.2, 0.2
#   round 3: u0 takes item 1 (1.05); 2, 3 unshown             -> boosts 0, 0.2, 0.3, 0.3
#   round 4: u0 item 1, u1 1 vs 0.95, u2 1 vs 0.7: 2, 3 unshown -> boosts 0, 0.2, 0.4, 0.4
# and the lists under those boosts: u0 item 1 (1.05), u1 item 2 (1.05), u2 item 0.
# ---------------------------------------------------------------------------------------------
HAND_CANDIDATES = np.array([[0, 1, 2], [0, 2, 3], [0, 1, 3]])
HAND_SCORES = np.array([[1.0, 0.85, 0.0], [1.0, 0.65, 0.0], [2.0, 1.0, 0.0]])


def test_boosts_by_hand():
    spec = RerankSpec(coverage=0.4)
    boosts = coverage_boosts(HAND_CANDIDATES, HAND_SCORES, 1, spec, 4, step=0.1)
    assert boosts == pytest.approx([0.0, 0.2, 0.4, 0.4])
    lists = rerank(HAND_CANDIDATES, HAND_SCORES, 1, spec, boosts=boosts).items
    assert lists[:, 0].tolist() == [1, 2, 0]
    plain = rerank(HAND_CANDIDATES, HAND_SCORES, 1).items
    assert plain[:, 0].tolist() == [0, 0, 0]


def test_boosts_stop_once_every_candidate_is_shown():
    # As above with item 3 swapped for item 1 in u1's row and item 2 in u2's: only items 0-2
    # are candidates, and a step of 0.1 (coverage 1: up to 10 rounds).
    #   r1 boosts 1, 2: 0.1 | r2 0.2 | r3 u0 takes item 1 (1.05): item 2 0.3 | r4 u1 0.95: 0.4
    #   r5 u1 takes item 2 (1.05): every candidate shown, no more rounds. Items 3, 4: 0.
    candidates = np.array([[0, 1, 2], [0, 2, 1], [0, 1, 2]])
    boosts = coverage_boosts(candidates, HAND_SCORES, 1, RerankSpec(coverage=1.0), 5, step=0.1)
    assert boosts == pytest.approx([0.0, 0.2, 0.4, 0.0, 0.0])


def _reference(candidates, scores, n, coverage, n_items, step):
    """Plain Python: min-max relevance per row, plus the boost; ties to the earlier column;
    steps of ``step`` until a boost of ``coverage`` (the last step short)."""
    boosts = [0.0] * n_items
    rows = []
    for cand, score in zip(candidates.tolist(), scores.tolist(), strict=True):
        valid = [(c, s) for c, s in zip(cand, score, strict=True) if c >= 0 and s != -np.inf]
        low, high = min(s for _, s in valid), max(s for _, s in valid)
        rel = [(c, (s - low) / (high - low) if high > low else 1.0) for c, s in valid]
        rows.append(rel)
    reachable = {c for rel in rows for c, _ in rel}
    rounds = 0
    while rounds * step < coverage - 1e-9:
        rounds += 1
    for _ in range(rounds):
        shown = set()
        for rel in rows:
            order = sorted(range(len(rel)), key=lambda j: (-(rel[j][1] + boosts[rel[j][0]]), j))
            shown.update(rel[j][0] for j in order[:n])
        unshown = reachable - shown
        if not unshown:
            break
        for item in unshown:
            boosts[item] = min(boosts[item] + step, coverage)
    return boosts


@st.composite
def shops(draw):
    n_users = draw(st.integers(1, 6))
    m = draw(st.integers(1, 6))
    n_items = draw(st.integers(m, 10))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    candidates = np.stack([rng.permutation(n_items)[:m] for _ in range(n_users)])
    # Scores on a grid of eighths so that boosts of tenths never tie them exactly.
    scores = rng.integers(0, 9, size=candidates.shape) / 8.0 + rng.random(candidates.shape) / 1e3
    padded = rng.random(candidates.shape) < 0.2
    padded[:, 0] = False
    candidates = np.where(padded, -1, candidates)
    scores = np.where(padded, -np.inf, scores)
    return candidates, scores, n_items


@settings(max_examples=120, deadline=None)
@given(shops(), st.integers(1, 4), st.sampled_from([0.2, 0.5, 1.0]), st.sampled_from([0.1, 0.3]))
def test_boosts_match_a_plain_python_reference(shop, n, coverage, step):
    candidates, scores, n_items = shop
    spec = RerankSpec(coverage=coverage)
    got = coverage_boosts(candidates, scores, n, spec, n_items, step=step)
    assert got == pytest.approx(_reference(candidates, scores, n, coverage, n_items, step))


@settings(max_examples=80, deadline=None)
@given(shops(), st.integers(1, 4), st.sampled_from([0.2, 1.0]))
def test_boosted_lists_are_subsets_of_candidates_and_zero_boosts_change_nothing(shop, n, coverage):
    candidates, scores, n_items = shop
    spec = RerankSpec(coverage=coverage)
    boosts = coverage_boosts(candidates, scores, n, spec, n_items)
    assert (boosts >= 0).all() and (boosts <= coverage + 1e-12).all()
    lists = rerank(candidates, scores, n, spec, boosts=boosts).items
    for u in range(candidates.shape[0]):
        real = lists[u][lists[u] >= 0]
        assert len(set(real.tolist())) == real.size
        assert set(real.tolist()) <= set(candidates[u][candidates[u] >= 0].tolist())
        assert real.size == min(n, int((candidates[u] >= 0).sum()))
    # Zero boosts rank by relevance alone: the plain order.
    zero = rerank(candidates, scores, n, spec, boosts=np.zeros(n_items)).items
    assert np.array_equal(zero, rerank(candidates, scores, n).items)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: RerankSpec(coverage=1.5), "coverage=1.5 is outside [0, 1] (the largest boost)"),
        (lambda: RerankSpec(coverage=-0.1), "coverage=-0.1 is outside [0, 1]"),
        (
            lambda: rerank(HAND_CANDIDATES, HAND_SCORES, 1, RerankSpec(coverage=0.2)),
            "coverage needs each item's boost",
        ),
        (
            lambda: rerank(
                HAND_CANDIDATES, HAND_SCORES, 1, RerankSpec(coverage=0.2), boosts=np.zeros(3)
            ),
            "candidate item 3 is outside the 3 rows of boosts",
        ),
        (
            lambda: coverage_boosts(HAND_CANDIDATES, HAND_SCORES, 1, RerankSpec(coverage=0.2), 3),
            "candidate item 3 is outside the 3 items",
        ),
        (
            lambda: coverage_boosts(
                HAND_CANDIDATES, HAND_SCORES, 1, RerankSpec(coverage=0.2), 4, step=0
            ),
            "step=0 must be a number in (0, 1]",
        ),
    ],
)
def test_bad_input_is_one_line(call, message):
    with pytest.raises(ParameterError) as caught:
        call()
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Through the pipeline: every list a model makes, from the boosts of every customer's list.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_model():
    shop = generate_shop(300, 120, 0.05, seed=3)
    train = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    return fit_model(train, "svd", {"factors": 8}, seed=0)


def test_pipeline_lists_are_the_core_boosted_lists_and_widen_coverage(shop_model):
    model = shop_model
    users = np.arange(model.train.n_users)
    spec = ListSpec(n=5, candidates=40, rerank=RerankSpec(coverage=0.6))
    items, _ = recommend(model, users, spec=spec)
    # The same by hand: the plain top 40, boosts from them, then the core re-ranking.
    candidates, scores = recommend(model, users, 40)
    boosts = coverage_boosts(candidates, scores, 5, spec.rerank, model.train.n_items)
    expected = rerank(candidates, scores, 5, spec.rerank, boosts=boosts).items
    assert np.array_equal(items, expected)
    plain, _ = recommend(model, users, 5)
    shown, shown_plain = np.unique(items[items >= 0]).size, np.unique(plain[plain >= 0]).size
    assert shown > 1.3 * shown_plain
    # One customer's list does not depend on who else is asked for.
    some = users[::7]
    alone, _ = recommend(model, some, spec=spec)
    assert np.array_equal(alone, items[some])


def test_coverage_option_reaches_the_spec_the_json_and_the_summary(shop_model):
    argv = ["evaluate", "--data", "shop.csv", "--rerank", "mmr", "--strength", "0.3"]
    argv += ["--similarity", "purchases", "--coverage", "0.4", "--popularity-penalty", "0.1"]
    options = list_spec_from(build_parser().parse_args(argv), 10, shop_model.train.items, {})
    assert options.spec.rerank == RerankSpec("mmr", 0.3, 0.1, "purchases", coverage=0.4)
    assert options.payload()["rerank"]["coverage"] == 0.4
    assert list_spec_text(options.spec) == (
        "mmr 0.3 by purchases; popularity penalty 0.1; coverage boost up to 0.4; "
        "re-ranked from the top 200"
    )
    alone = list_spec_from(
        build_parser().parse_args(["evaluate", "--data", "shop.csv", "--coverage", "0.2"]),
        10,
        shop_model.train.items,
        {},
    )
    assert alone.spec.reorders and alone.spec.rerank == RerankSpec(coverage=0.2)
