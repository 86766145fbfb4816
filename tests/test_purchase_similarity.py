"""``--similarity purchases``: MMR and the DPP compare items by the SVD purchase vectors that
intra-list diversity is measured on, for every backend, from Python, the service's schema and
the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from cli_helpers import assert_error, run_json

from growthrec.cli.main import main
from growthrec.core.interactions import interactions_from_matrix
from growthrec.core.item_vectors import PURCHASE_DIMS, purchase_seed
from growthrec.core.metrics import intra_list_diversity_at_k
from growthrec.core.reranking import SIMILARITIES, RerankSpec
from growthrec.errors import ParameterError
from growthrec.evaluation.runs import item_vectors_for_diversity
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import _similarity_table, recommend
from growthrec.pipeline.prepared import prepare
from growthrec.pipeline.rules import ListSpec
from growthrec.serving.schemas import RerankRequest
from growthrec.store.modelfile import load_model

pytestmark = pytest.mark.usefixtures("plain_console")

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

#: 12 customers x 6 products in two groups (0-2 and 3-5); product 5's buyers are exactly those
#: of 3 and of 4 (no one bought both), so the matrix has rank <= 5 and a 5-dimensional SVD (the
#: most 12 x 6 allows) keeps all of it.
HAND = np.array(
    [
        [1, 1, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
        [0, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 0, 0, 1, 0, 1],
        [0, 1, 0, 0, 1, 1],
        [0, 0, 0, 1, 0, 1],
        [0, 0, 0, 1, 0, 1],
        [0, 0, 1, 0, 1, 1],
        [0, 0, 0, 0, 1, 1],
        [1, 0, 0, 0, 0, 0],
        [0, 1, 0, 1, 0, 1],
    ],
    dtype=np.float64,
)


def _cosine_of_columns(matrix: np.ndarray) -> np.ndarray:
    """Co-purchase cosine of a 0/1 matrix's columns, in float64 (the independent reference)."""
    norms = np.linalg.norm(matrix, axis=0)
    return (matrix.T @ matrix) / np.outer(norms, norms)


def _reference_mmr(
    scores: dict[int, float], similarity: np.ndarray, lam: float, n: int
) -> list[int] | None:
    """Plain MMR (Carbonell & Goldstein): relevance min-max scaled over the candidates, each
    pick maximising lam * relevance - (1 - lam) * max similarity to the items already picked.
    None when two candidates come within 1e-4 of the best gain (float32 may order those
    either way)."""
    low, high = min(scores.values()), max(scores.values())
    relevance = {i: (s - low) / (high - low) for i, s in scores.items()}
    chosen: list[int] = []
    while len(chosen) < n:
        gains = {
            i: lam * r - (1 - lam) * max((similarity[i, j] for j in chosen), default=0.0)
            for i, r in relevance.items()
            if i not in chosen
        }
        ranked = sorted(gains.values(), reverse=True)
        if len(ranked) > 1 and ranked[0] - ranked[1] < 1e-4:
            return None
        chosen.append(max(gains, key=gains.get))
    return chosen


@pytest.fixture(scope="module")
def hand_shop():
    return interactions_from_matrix(sp.csr_matrix(HAND))


def test_purchases_is_a_similarity_everywhere():
    assert "purchases" in SIMILARITIES
    assert RerankSpec("mmr", 0.5, similarity="purchases").similarity == "purchases"
    assert RerankRequest(kind="dpp", strength=0.3, similarity="purchases").similarity == "purchases"
    for name in ("common", "tradeoff"):
        text = (SCHEMAS / f"{name}.schema.json").read_text()
        assert '"similarity": {"enum": ["categories", "features", "factors", "purchases"]}' in text


@pytest.mark.parametrize("seed", [0, 7, None])
def test_the_table_is_the_diversity_rulers_vectors(small_shop, seed):
    """The re-ranker's rows are the metric's vectors (same dims, same seed), made unit length."""
    model = fit_model(small_shop, "popularity", {}, seed=seed)
    table = _similarity_table(model, prepare(model), "purchases", "category").table
    ruler = item_vectors_for_diversity(small_shop, seed=purchase_seed(seed)).astype(np.float64)
    assert ruler.shape == (small_shop.n_items, PURCHASE_DIMS)
    unit = ruler / np.linalg.norm(ruler, axis=1, keepdims=True)
    np.testing.assert_allclose(table, unit, atol=1e-6)
    # Built once per model, and the same when built again.
    again = fit_model(small_shop, "popularity", {}, seed=seed)
    twice = _similarity_table(again, prepare(again), "purchases", "category").table
    np.testing.assert_array_equal(table, twice)


def test_at_full_rank_it_is_the_co_purchase_cosine(hand_shop):
    """With every singular value kept, the vectors' Gram matrix is the items' co-purchase
    counts, so their cosine is the cosine of the purchase columns themselves."""
    model = fit_model(hand_shop, "ease", {}, seed=0)
    table = np.asarray(_similarity_table(model, prepare(model), "purchases", "category").table)
    np.testing.assert_allclose(table @ table.T, _cosine_of_columns(HAND), atol=1e-5)


@pytest.mark.parametrize("backend", ["ease", "popularity"])
def test_mmr_picks_what_plain_mmr_over_purchase_cosine_picks(hand_shop, backend):
    model = fit_model(hand_shop, backend, {}, seed=0)
    users = np.arange(hand_shop.n_users)
    n, lam = 3, 0.4
    spec = ListSpec(n=n, rerank=RerankSpec("mmr", 1 - lam, similarity="purchases"))
    lists, _ = recommend(model, users, spec=spec)
    plain, plain_scores = recommend(model, users, k=hand_shop.n_items)
    similarity = _cosine_of_columns(HAND)
    compared = differs = 0
    for user in users:
        open_ = plain[user] >= 0
        items, scores = plain[user][open_].tolist(), plain_scores[user][open_].tolist()
        if len(items) < n or np.ptp(scores) == 0:
            continue  # too few candidates, or no relevance to trade
        expected = _reference_mmr(dict(zip(items, scores, strict=True)), similarity, lam, n)
        if expected is None:
            continue
        assert lists[user].tolist() == expected, user
        compared += 1
        differs += expected != items[:n]
    assert compared >= 6
    assert differs > 0  # the test data makes MMR change some lists


def test_dpp_and_mmr_raise_diversity_on_the_ruler(small_shop):
    """Re-ranking by purchases raises intra-list diversity as measured on the same vectors."""
    model = fit_model(small_shop, "ease", {}, seed=0)
    users = np.arange(small_shop.n_users)
    vectors = item_vectors_for_diversity(small_shop, seed=0)
    plain, _ = recommend(model, users, k=10)
    before = intra_list_diversity_at_k(plain, 10, item_vectors=vectors)
    for kind in ("mmr", "dpp"):
        spec = ListSpec(n=10, rerank=RerankSpec(kind, 0.6, similarity="purchases"))
        lists, _ = recommend(model, users, spec=spec)
        assert intra_list_diversity_at_k(lists, 10, item_vectors=vectors) > before + 0.01, kind


def test_a_backend_without_factors_refuses_factors_not_purchases(small_shop):
    model = fit_model(small_shop, "popularity", {}, seed=0)
    users = np.arange(5)
    with pytest.raises(ParameterError, match="--similarity factors needs a dot-product model"):
        recommend(
            model, users, spec=ListSpec(n=5, rerank=RerankSpec("mmr", 0.5, similarity="factors"))
        )
    lists, _ = recommend(
        model, users, spec=ListSpec(n=5, rerank=RerankSpec("mmr", 0.5, similarity="purchases"))
    )
    assert (lists >= 0).all()


def test_too_small_to_have_vectors_says_so_in_one_line():
    one_customer = interactions_from_matrix(np.array([[1.0, 1.0, 0.0]]))
    model = fit_model(one_customer, "popularity", {}, seed=0)
    spec = ListSpec(n=1, rerank=RerankSpec("mmr", 0.5, similarity="purchases"))
    with pytest.raises(ParameterError, match=r"^rerank: --similarity purchases: item vectors need"):
        recommend(model, np.arange(1), spec=spec)


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "transactions.csv"
    argv = ["generate", "--users", "80", "--items", "30", "--density", "0.15", "--seed", "2"]
    assert main([*argv, "--output", str(path)]) == 0
    return path


def test_command_line_recommend_export_evaluate(shop_file, tmp_path, capsys):
    model_file = tmp_path / "ease.npz"
    argv = ["train", "--data", shop_file, "--model", "ease", "--output", model_file]
    assert main([str(a) for a in argv]) == 0
    rerank = ["--rerank", "mmr", "--strength", "0.5", "--similarity", "purchases"]
    payload = run_json(
        capsys, "recommend", "--model", model_file, "--user-id", "1", "--n", 5, *rerank
    )
    assert payload["list_spec"]["rerank"]["similarity"] == "purchases"
    shown = [i["item"] for i in payload["results"][0]["items"]]
    model = load_model(model_file)
    user = model.train.users.index(["1"])
    spec = ListSpec(n=5, rerank=RerankSpec("mmr", 0.5, similarity="purchases"))
    lists, _ = recommend(model, user, spec=spec)
    plain, _ = recommend(model, user, k=5)
    assert shown == [str(i) for i in model.train.items.ids[lists[0]]]
    assert shown != [str(i) for i in model.train.items.ids[plain[0]]]
    # export writes the same lists; evaluate re-ranks by purchases too.
    target = tmp_path / "lists.csv"
    argv = ["export", "--model", model_file, "--n", 5, "--output", target, *rerank]
    assert main([str(a) for a in argv]) == 0
    with target.open() as handle:
        exported = [row for row in csv.DictReader(handle) if row["user_id"] == "1"]
    assert [row["item_id"] for row in sorted(exported, key=lambda r: int(r["rank"]))] == shown
    evaluated = run_json(
        capsys, "evaluate", "--data", shop_file, "--model", "ease", "--k", 5, "--no-baseline",
        *rerank,
    )  # fmt: skip
    assert evaluated["list_spec"]["rerank"]["similarity"] == "purchases"
    compared = run_json(
        capsys, "compare", "--data", shop_file, "--models", "ease,popularity", "--k", 5,
        *rerank,
    )  # fmt: skip
    assert [r["backend"] for r in compared["results"]] == ["ease", "popularity"]
    assert compared["list_spec"]["rerank"]["similarity"] == "purchases"
    error = assert_error(
        capsys, 2, "evaluate", "--data", shop_file, "--model", "popularity", "--k", 5,
        "--no-baseline", "--rerank", "mmr", "--strength", "0.5", "--similarity", "factors",
    )  # fmt: skip
    assert "has no item factors" in error and "purchases" in error


def test_command_line_tradeoff(shop_file, tmp_path, capsys):
    out = tmp_path / "report"
    argv = [
        "tradeoff", "--data", shop_file, "--model", "popularity", "--rerankers", "mmr,dpp",
        "--strengths", "0,0.5", "--k", 5, "--similarity", "purchases", "--output", out,
    ]  # fmt: skip
    code = main([str(a) for a in argv])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["similarity"] == "purchases"
