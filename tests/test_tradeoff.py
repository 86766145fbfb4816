"""The trade-off sweep (growthrec tradeoff): curves, knees, the validation-only choice, the
paired standard errors, the figure and the report, and every bad option as one line."""

from __future__ import annotations

import base64
import builtins
import json
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
from cli_helpers import assert_error, run_json
from test_json_contract import check

from growthrec.cli.main import main
from growthrec.core.interactions import build_interactions
from growthrec.core.reranking import RerankSpec
from growthrec.core.split import split_ratio
from growthrec.data.synthetic import generate_shop
from growthrec.errors import ParameterError
from growthrec.evaluation.bootstrap import ndcg_per_user
from growthrec.evaluation.runs import categories_from, evaluate_lists
from growthrec.evaluation.tradeoff import (
    Curve,
    SplitSweep,
    TradeoffPoint,
    choose_strengths,
    diversity_basis,
    kneedle,
    parse_curve,
    sweep_lists,
    sweep_tradeoff,
)
from growthrec.pipeline.fitting import fit_model
from growthrec.pipeline.lists import recommend
from growthrec.pipeline.rules import ListSpec, parse_filter

pytestmark = pytest.mark.usefixtures("plain_console")


# curves


@pytest.mark.parametrize(
    ("text", "name", "spec_at_03"),
    [
        ("mmr", "mmr", RerankSpec("mmr", 0.3)),
        ("dpp", "dpp", RerankSpec("dpp", 0.3)),
        ("calibration", "calibration", RerankSpec("calibration", 0.3)),
        ("popularity", "popularity", RerankSpec(popularity_penalty=0.3)),
        ("popularity+mmr", "popularity+mmr", RerankSpec("mmr", 0.3, 0.3)),
        ("mmr + popularity", "popularity+mmr", RerankSpec("mmr", 0.3, 0.3)),
        ("popularity=0.1+dpp", "popularity=0.1+dpp", RerankSpec("dpp", 0.3, 0.1)),
        ("coverage", "coverage", RerankSpec(coverage=0.3)),
        ("coverage+mmr", "coverage+mmr", RerankSpec("mmr", 0.3, coverage=0.3)),
        (
            "mmr-mean+coverage=0.1",
            "coverage=0.1+mmr-mean",
            RerankSpec("mmr", 0.3, 0, aggregate="mean", coverage=0.1),
        ),
        (
            "coverage=0.1+popularity",
            "popularity+coverage=0.1",
            RerankSpec(popularity_penalty=0.3, coverage=0.1),
        ),
    ],
)
def test_curves_parse_and_set_the_strength(text, name, spec_at_03):
    curve = parse_curve(text)
    assert curve.name == name
    assert curve.spec_at(0.3, "categories") == spec_at_03
    fixed = 0.1 if "=" in text else 0.0
    at_0 = curve.spec_at(0.0, "categories")
    assert at_0.strength == 0.0
    assert at_0.popularity_penalty == (fixed if "popularity=" in text else 0.0)
    assert at_0.coverage == (fixed if "coverage=" in text else 0.0)
    assert curve.fixed == ("=" in text)


def test_window_goes_to_dpp_only():
    assert parse_curve("dpp").spec_at(0.5, "factors", 4) == RerankSpec("dpp", 0.5, 0, "factors", 4)
    assert parse_curve("mmr").spec_at(0.5, "factors", 4).window is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("xquad", "unknown re-ranker 'xquad'"),
        ("mmr+dpp", "one pass holds one of mmr, dpp and calibration"),
        ("popularity+popularity", "popularity given twice"),
        ("coverage+mmr+coverage=0.2", "coverage given twice"),
        ("popularity=2+mmr", "popularity=2 must be a number in (0, 1]"),
        ("popularity=x+mmr", "popularity=x must be a number in (0, 1]"),
        ("coverage=0+mmr", "coverage=0 must be a number in (0, 1]"),
        ("mmr=0.3", "only popularity and coverage take a fixed value"),
        ("popularity=0.2", "fixed values need something to sweep"),
        ("popularity=0.2+coverage=0.5", "fixed values need something to sweep"),
        ("mmr+", "expected re-rankers joined by '+'"),
    ],
)
def test_bad_curves_are_one_line(text, expected):
    with pytest.raises(ParameterError) as caught:
        parse_curve(text)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


# knees and the choice, on hand-made points


def _point(curve: str, strength: float, ndcg: float, coverage: float, gini: float = 0.0):
    """A point whose NDCG and coverage changes (relative) are the given ones."""
    metrics = {"ndcg": 0.2 * (1 + ndcg), "recall": 0.1, "coverage": 0.1 * (1 + coverage)}
    metrics["gini"] = 0.5 * (1 + gini)
    changes = {"ndcg": ndcg, "recall": 0.0, "coverage": coverage, "gini": gini}
    return TradeoffPoint(curve, strength, metrics, changes, 0.01)


def test_kneedle_by_hand():
    # x = NDCG loss 0, 0.01, 0.1 -> scaled 0, 0.1, 1; y = coverage gain 0, 0.8, 1 -> 0, 0.8, 1;
    # y - x = 0, 0.7, 0: the knee is at strength 0.5.
    points = [_point("c", 0, 0, 0), _point("c", 0.5, -0.01, 0.8), _point("c", 1, -0.1, 1.0)]
    assert kneedle(points, "coverage") == 0.5
    # a straight line has no point above its chord
    line = [_point("c", s, -0.1 * s, s) for s in (0, 0.5, 1)]
    assert kneedle(line, "coverage") is None
    # a gain bought late (convex): below the chord everywhere
    late = [_point("c", 0, 0, 0), _point("c", 0.5, -0.09, 0.1), _point("c", 1, -0.1, 1)]
    assert kneedle(late, "coverage") is None
    # lower is better for Gini: a falling Gini is the gain
    gini = [
        _point("c", 0, 0, 0, 0),
        _point("c", 0.5, -0.01, 0, -0.4),
        _point("c", 1, -0.1, 0, -0.5),
    ]
    assert kneedle(gini, "gini") == 0.5
    assert kneedle(points[:2], "coverage") is None  # two points: no knee


def _sweep(name: str, points: list[TradeoffPoint]) -> SplitSweep:
    return SplitSweep(name, "ratio", 100, points[0].metrics, tuple(points), {})


def test_strength_is_chosen_on_validation_and_reported_on_test():
    # Validation: 0.2 loses 2% for +50% coverage, 0.5 loses 4% (over 3%) for +90%.
    validation = _sweep(
        "validation",
        [_point("mmr", 0, 0, 0), _point("mmr", 0.2, -0.02, 0.5), _point("mmr", 0.5, -0.04, 0.9)],
    )
    # Test would allow 0.5 (it loses only 1% there): the choice must not look at it.
    test = _sweep(
        "test",
        [_point("mmr", 0, 0, 0), _point("mmr", 0.2, -0.03, 0.4), _point("mmr", 0.5, -0.01, 0.8)],
    )
    [choice] = choose_strengths(validation, test, ["mmr"], max_ndcg_loss=0.03)
    assert choice.strength == 0.2
    assert choice.validation is validation.points[1]
    assert choice.test is test.points[1]
    assert choice.within_limit
    # with no strength within the limit, the plain list (strength 0) is chosen
    [plain] = choose_strengths(validation, test, ["mmr"], max_ndcg_loss=0.01)
    assert (plain.strength, plain.test.changes["coverage"]) == (0.0, 0.0)
    # ties go to the smaller strength
    flat = _sweep(
        "validation", [_point("p", 0, 0, 0), _point("p", 0.1, 0, 0.3), _point("p", 1, 0, 0.3)]
    )
    [tie] = choose_strengths(flat, flat, ["p"])
    assert tie.strength == 0.1


# the sweep on a small shop, against the pipeline itself


@pytest.fixture(scope="module")
def shop_split():
    shop = generate_shop(240, 50, 0.12, seed=3)
    data = build_interactions(shop.user_id, shop.item_id, shop.quantity, shop.timestamp)
    split = split_ratio(data, test_ratio=0.25, seed=0)
    validation = split_ratio(split.train, test_ratio=0.25, seed=0)
    category = dict(zip(shop.catalog_item_id.tolist(), shop.catalog_category.tolist(), strict=True))
    attributes = {"category": np.array([category[i] for i in data.items.ids.tolist()], dtype=str)}
    return split, validation, attributes


@pytest.fixture(scope="module")
def swept(shop_split):
    split, validation, attributes = shop_split
    return sweep_tradeoff(
        split,
        validation,
        "svd",
        {"factors": 6},
        curves=("mmr", "popularity", "popularity+mmr", "calibration"),
        strengths=(0.3, 1.0),
        item_attributes=attributes,
    )


def test_every_point_is_the_pipelines_lists(shop_split, swept):
    split, _, attributes = shop_split
    model = fit_model(split.train, "svd", {"factors": 6}, seed=0, item_attributes=attributes)
    spec = ListSpec(n=10, rerank=RerankSpec("mmr", 0.3, 0.3))
    measured = evaluate_lists(
        model,
        split.test,
        (10,),
        spec=spec,
        categories=categories_from(attributes["category"]),
        keep_lists=True,
    )
    point = swept.test.at("popularity+mmr", 0.3)
    assert dict(point.metrics) == pytest.approx({m: measured.metrics[10][m] for m in point.metrics})
    # the paired standard error, by hand from the two lists' per-customer NDCG
    users = measured.users
    plain, _ = recommend(model, users, 10)
    served, _ = recommend(model, users, spec=spec)
    assert np.array_equal(served, measured.lists)
    ndcg_plain = ndcg_per_user(plain, split.test[users], 10)
    ndcg_mmr = ndcg_per_user(served, split.test[users], 10)
    assert ndcg_plain.mean() == pytest.approx(swept.test.plain["ndcg"])
    assert ndcg_mmr.mean() == pytest.approx(point.metrics["ndcg"])
    d = ndcg_mmr - ndcg_plain
    se = math.sqrt(sum((x - d.mean()) ** 2 for x in d) / (d.size - 1) / d.size)
    assert point.ndcg_change_se == pytest.approx(se / ndcg_plain.mean())
    assert point.ndcg_change == pytest.approx(d.mean() / ndcg_plain.mean())
    assert point.changes["coverage"] == pytest.approx(
        point.metrics["coverage"] / swept.test.plain["coverage"] - 1
    )


def test_each_curve_starts_at_the_plain_list_on_both_splits(shop_split, swept):
    split, validation, _ = shop_split
    assert (
        swept.test.diversity_basis == swept.validation.diversity_basis == "category rows (cosine)"
    )
    assert swept.curves == ("mmr", "popularity", "popularity+mmr", "calibration")
    assert swept.strengths == (0.0, 0.3, 1.0)
    assert swept.test.n_users == split.n_test_users
    assert swept.validation.n_users == validation.n_test_users
    for sweep in (swept.validation, swept.test):
        for curve in swept.curves:
            points = sweep.curve(curve)
            assert [p.strength for p in points] == [0.0, 0.3, 1.0]
            assert points[0].metrics == sweep.plain
            assert points[0].ndcg_change_se == 0.0
            assert set(sweep.knees[curve]) == set(swept.metrics)
    assert swept.metrics == (
        "coverage", "diversity", "gini", "long_tail", "novelty", "miscalibration"
    )  # fmt: skip
    # calibration at full strength makes the lists' category mix closer to the history
    calibrated = swept.test.at("calibration", 1.0)
    assert calibrated.metrics["miscalibration"] < swept.test.plain["miscalibration"]
    # the chosen strengths keep to the rule on validation, and their test points are test's
    for choice in swept.chosen:
        assert choice.validation.ndcg_change >= -0.03
        assert choice.test is swept.test.at(choice.curve, choice.strength)
        allowed = [p for p in swept.validation.curve(choice.curve) if p.ndcg_change >= -0.03]
        assert choice.validation.gain("coverage") == max(p.gain("coverage") for p in allowed)


def test_a_fixed_penalty_curve_starts_from_the_penalty_alone(shop_split):
    split, _, attributes = shop_split
    model = fit_model(split.train, "svd", {"factors": 6}, seed=0, item_attributes=attributes)
    sweep = sweep_lists(model, split.test, [parse_curve("popularity=0.5+mmr")], (0.4,))
    start = sweep.at("popularity=0.5+mmr", 0.0)
    alone = evaluate_lists(
        model,
        split.test,
        (10,),
        spec=ListSpec(rerank=RerankSpec(popularity_penalty=0.5)),
        categories=categories_from(attributes["category"]),
    )
    assert dict(start.metrics) == pytest.approx({m: alone.metrics[10][m] for m in start.metrics})
    assert start.metrics != sweep.plain
    assert start.ndcg_change_se > 0  # measured against the plain list, like every point
    # when no point of such a curve keeps within the limit, the one losing least is taken
    losing = _sweep("validation", [_point("f", 0, -0.05, 0.5), _point("f", 0.5, -0.04, 0.9)])
    [choice] = choose_strengths(losing, losing, ["f"], max_ndcg_loss=0.03)
    assert (choice.strength, choice.within_limit) == (0.5, False)


def test_coverage_curves_are_the_pipelines_boosted_lists(shop_split):
    split, _, attributes = shop_split
    model = fit_model(split.train, "svd", {"factors": 6}, seed=0, item_attributes=attributes)
    curves = [parse_curve("coverage"), parse_curve("coverage=0.5+mmr")]
    sweep = sweep_lists(model, split.test, curves, (0.3,))
    categories = categories_from(attributes["category"])

    def measured(rerank: RerankSpec) -> dict[str, float]:
        result = evaluate_lists(
            model, split.test, (10,), spec=ListSpec(rerank=rerank), categories=categories
        )
        return result.metrics[10]

    swept = sweep.at("coverage", 0.3)
    expected = measured(RerankSpec(coverage=0.3))
    assert dict(swept.metrics) == pytest.approx({m: expected[m] for m in swept.metrics})
    assert swept.metrics["coverage"] > sweep.plain["coverage"]  # the boosts widen coverage
    # a fixed value starts from the boosts alone, then sweeps MMR over them
    start = sweep.at("coverage=0.5+mmr", 0.0)
    alone = measured(RerankSpec(coverage=0.5))
    assert dict(start.metrics) == pytest.approx({m: alone[m] for m in start.metrics})
    both = measured(RerankSpec("mmr", 0.3, coverage=0.5))
    point = sweep.at("coverage=0.5+mmr", 0.3)
    assert dict(point.metrics) == pytest.approx({m: both[m] for m in point.metrics})


def test_sweep_lists_keeps_the_rules(shop_split):
    split, _, attributes = shop_split
    model = fit_model(split.train, "svd", {"factors": 6}, seed=0, item_attributes=attributes)
    books = sorted(set(attributes["category"].tolist()))[0]
    spec = ListSpec(filters=(parse_filter(f"category in {books}"),))
    sweep = sweep_lists(model, split.test, [Curve("mmr")], (0.5,), spec=spec, k=5)
    plain = evaluate_lists(model, split.test, (5,), spec=attrs.evolve(spec, n=5))
    assert sweep.plain["ndcg"] == pytest.approx(plain.metrics[5]["ndcg"])
    n_books = int((attributes["category"] == books).sum())
    assert sweep.plain["coverage"] <= n_books / model.train.n_items


def test_bad_sweep_arguments_are_one_line(shop_split):
    split, validation, attributes = shop_split
    cases = [
        ({"strengths": (0.0,)}, "at least one strength above 0"),
        ({"strengths": (1.5,)}, "1.5 is outside [0, 1]"),
        ({"max_ndcg_loss": 1.0}, "max_ndcg_loss=1"),
        ({"choose_by": "ndcg"}, "choose_by='ndcg'"),
        ({"curves": ("mmr", "mmr")}, "mmr given twice"),
        ({"curves": ()}, "give at least one"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ParameterError) as caught:
            sweep_tradeoff(
                split, validation, "svd", {"factors": 4}, item_attributes=attributes, **kwargs
            )
        assert expected in str(caught.value)
    with pytest.raises(ParameterError, match="calibration needs item categories"):
        sweep_tradeoff(split, validation, "svd", curves=("calibration",))
    with pytest.raises(ParameterError, match="mmr by categories needs item categories"):
        sweep_tradeoff(split, validation, "svd", curves=("mmr",))


# the figure and the report


def test_plot_has_a_panel_per_accuracy_and_metric(swept):
    pytest.importorskip("matplotlib")
    from growthrec.evaluation.plots import plot_tradeoff

    fig = plot_tradeoff(swept)
    axes = fig.get_axes()
    assert len(axes) == 2 * len(swept.metrics)
    labels = [ax.get_xlabel() for ax in axes if ax.get_xlabel()]
    assert labels[0] == "coverage@10"
    assert axes[0].get_ylabel() == "NDCG@10"
    # one line per curve (plus markers) in every panel, and the plain list's square
    for ax in axes:
        xs = [tuple(line.get_xdata()) for line in ax.get_lines()]
        assert len(xs) >= len(swept.curves) + 1
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["plain list", *swept.curves]


def test_report_is_self_contained(swept, tmp_path):
    pytest.importorskip("matplotlib")
    from growthrec.evaluation.plots import write_report

    report = write_report(swept, tmp_path / "out", extra={"note": "x"})
    png = report.png.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    page = report.html.read_text()
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched
    for curve in swept.curves:
        assert f"<td>{curve}</td>" in page
    payload = json.loads(report.json.read_text())
    assert payload["note"] == "x"
    assert payload["chosen"] == [c.as_dict() for c in swept.chosen]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "report.html", "report.json", "report.png"
    ]  # fmt: skip


# the command


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "data" / "transactions.csv"
    argv = ["generate", "--users", "150", "--items", "30", "--density", "0.15", "--seed", "4"]
    assert main([*argv, "--output", str(path)]) == 0
    return path


def test_tradeoff_command(shop, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    payload = run_json(
        capsys, "tradeoff", "--data", shop, "--factors", 4, "--protocol", "ratio",
        "--rerankers", "mmr,popularity+mmr", "--strengths", "0.5,1", "--output", out,
    )  # fmt: skip
    check("tradeoff", payload)
    assert payload["curves"] == ["mmr", "popularity+mmr"]
    assert payload["strengths"] == [0.0, 0.5, 1.0]
    assert payload["similarity"] == "categories"
    assert payload["rule"] == {
        "choose_by": "coverage",
        "max_ndcg_loss": 0.03,
        "chosen_on": "validation",
    }
    assert payload["test"]["n_users"] == payload["split"]["n_test_users"]
    assert payload["validation"]["n_users"] == payload["validation_split"]["n_test_users"]
    assert payload["report"]["png"]["path"] == str(out / "report.png")
    assert payload["report"]["png"]["bytes"] == (out / "report.png").stat().st_size
    saved = json.loads((out / "report.json").read_text())
    assert saved == {k: v for k, v in payload.items() if k not in ("report", "notes")}


def test_tradeoff_without_categories_leaves_calibration_out(shop, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data = tmp_path / "tx.csv"
    data.write_bytes(shop.read_bytes())  # no items.csv beside it: no categories
    payload = run_json(
        capsys, "tradeoff", "--data", data, "--factors", 4, "--strengths", "1",
        "--rerankers", "mmr", "--output", tmp_path / "r",
    )  # fmt: skip
    check("tradeoff", payload)
    assert payload["similarity"] == "purchases"  # every backend has them
    assert "miscalibration" not in payload["metrics"]
    code = main(["tradeoff", "--data", str(data), "--factors", "4", "--strengths", "1",
                 "--output", str(tmp_path / "r2"), "--json"])  # fmt: skip
    assert code == 0
    defaulted = json.loads(capsys.readouterr().out)
    assert "calibration" not in defaulted["curves"]
    assert defaulted["notes"] == [
        "calibration left out: the catalogue has no 'category' column (name one with "
        "--category-col)"
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--rerank", "mmr", "--strength", "0.3"], "are what tradeoff sweeps"),
        (["--popularity-penalty", "0.1"], "are what tradeoff sweeps"),
        (["--coverage", "0.3"], "--coverage is what tradeoff sweeps"),
        (["--strengths", "0.2,1.5"], "1.5 is outside [0, 1]"),
        (["--strengths", "0"], "at least one strength above 0"),
        (["--strengths", "a"], "'a' is not a number"),
        (["--rerankers", "mmr,xquad"], "unknown re-ranker 'xquad'"),
        (["--k", "5", "10"], "tradeoff takes one K"),
        (["--sampled", "50"], "--sampled"),
        (["--max-ndcg-loss", "1"], "--max-ndcg-loss 1"),
        (["--protocol", "cold-items", "--features"], "tradeoff ranks warm customers"),
        (["--category-col", "nope"], "--category-col nope"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(shop, tmp_path, capsys, options, expected):
    out = tmp_path / "report"
    message = assert_error(
        capsys, 2, "tradeoff", "--data", shop, "--factors", 3, "--output", out, *options
    )
    assert expected in message
    assert not out.exists()


def test_output_that_is_a_file_is_refused(shop, tmp_path, capsys):
    target = tmp_path / "report"
    target.write_text("keep me")
    message = assert_error(capsys, 2, "tradeoff", "--data", shop, "--output", target)
    assert "is a file" in message
    assert target.read_text() == "keep me"


def test_without_matplotlib_one_line_before_any_work(shop, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = tmp_path / "report"
    message = assert_error(capsys, 1, "tradeoff", "--data", shop, "--output", out)
    assert 'pip install "growthrec[plots]"' in message
    assert not out.exists()


def test_diversity_compares_items_by_their_category_rows():
    # Items a|b, a, c: cosine 1/sqrt(2) between the first two, 0 with the third.
    data = build_interactions(
        np.array(["u1", "u1", "u2", "u2", "u3"]), np.array(["i0", "i1", "i1", "i2", "i0"])
    )
    attributes = {"category": np.array(["a|b", "a", "c"])}
    model = fit_model(data, "popularity", seed=0, item_attributes=attributes)
    name, basis = diversity_basis(model, "category")
    assert name == "category rows (cosine)"
    rows = basis["item_vectors"]
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    assert unit @ unit.T == pytest.approx(np.array([[1, 2**-0.5, 0], [2**-0.5, 1, 0], [0, 0, 1]]))
    assert diversity_basis(model, "nope")[0] == "item vectors (svd of train)"
