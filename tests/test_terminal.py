"""What reaches a terminal: data never acts on it (markup, escapes); numbers never fold."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from cli_helpers import assert_error, run, run_json
from rich.console import Console

from growthrec.cli.output import Output, data_text, printable

pytestmark = pytest.mark.usefixtures("plain_console")

#: Text a shop's data may hold that rich or a terminal would act on.
HOSTILE = [
    "Mug [red]",
    "[/]",
    "[bold]x",
    "\x1b[31mred",
    "\x1b]0;title\x07",
    ":thumbs_up:",
    "back\\",
    "tab\there",
    "\u202egnp.exe",
]
#: How each is shown: literally, with control characters as escapes.
SHOWN = [
    "Mug [red]",
    "[/]",
    "[bold]x",
    "\\x1b[31mred",
    "\\x1b]0;title\\x07",
    ":thumbs_up:",
    "back\\",
    "tab\\there",
    "\\u202egnp.exe",
]
#: Characters that must never reach the terminal raw.
RAW_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def render(out_or_console, *renderables, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, highlight=False, emoji=False)
    Output(console=console).print(*renderables)
    return console.file.getvalue()


def test_printable_shows_control_characters_as_escapes():
    assert printable("a\x1b[31mb\x07c\nd\te\rf\x00\x7f\x9b") == (
        "a\\x1b[31mb\\x07c\\nd\\te\\rf\\x00\\x7f\\x9b"
    )
    assert printable("\u202eabc\u2066\u2028") == "\\u202eabc\\u2066\\u2028"
    assert printable("Café 北京 [red] 🙂") == "Café 北京 [red] 🙂"  # printable text untouched


@pytest.mark.parametrize(("raw", "shown"), list(zip(HOSTILE, SHOWN, strict=True)))
def test_data_text_in_markup_shows_exactly_the_text(raw, shown):
    printed = render(None, f"[bold]{data_text(raw)}[/bold] after")
    assert printed == f"{shown} after\n"


def test_tables_show_headers_cells_and_titles_literally():
    out = Output()
    table = out.table(
        ["item", *HOSTILE[:2], "score"],
        [(raw, raw, raw, 0.5) for raw in HOSTILE],
        title=f"Recommendations for user {HOSTILE[3]}{HOSTILE[1]}",
        numeric=["score"],
    )
    printed = render(out, table)
    assert RAW_CONTROLS.search(printed) is None
    assert printed.splitlines()[0].strip() == f"Recommendations for user {SHOWN[3]}{SHOWN[1]}"
    header = printed.splitlines()[2].split()
    assert header == ["item", "Mug", "[red]", "[/]", "score"]
    for shown in SHOWN:
        line = next(line for line in printed.splitlines() if line.strip().startswith(shown))
        assert line.split("  ")[1:] != []  # the row is there, its cells side by side
        assert line.count(shown) == 3 and line.rstrip().endswith("0.5000")


def test_a_cell_given_as_a_list_shows_one_literal_line_per_value():
    """``growthrec backends`` lists parameters one per line: real lines, each value literal."""
    out = Output()
    printed = render(out, out.table(["params"], [(["factors=64", "sep='\\n'\x1b"],)]))
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    assert lines[-2:] == ["factors=64", "sep='\\n'\\x1b"]
    assert RAW_CONTROLS.search(printed) is None


def test_progress_lines_show_paths_literally():
    console = Console(file=io.StringIO(), width=120, force_terminal=True, emoji=False)
    out = Output(console=console)
    with out.steps(2) as steps:
        steps.step("reading [/]x[bold].csv")  # rich would raise MarkupError on "[/]"
        steps._progress.refresh()  # draw now, not on the refresh thread's next tick
        drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())
        steps.step("fitting")
    assert "reading [/]x[bold].csv" in drawn


# Numbers never fold, at 80 columns (a pipe) or 40 (a narrow terminal)

TUNE_COLUMNS = [
    "rank",
    "factors",
    "ndcg@10 (sorted)",
    "hit_rate@5",
    "recall@5",
    "ndcg@5",
    "hit_rate@10",
    "recall@10",
    "ndcg@10",
    "fit s",
]
TUNE_ROWS = [
    (1, 128, 0.123456, 0.5, 0.25, 0.333333, 0.9, 0.8125, 0.7, 12.345),
    (2, 64, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1234.5),
]
EVALUATE_COLUMNS = ["metric", "svd @5", "popularity @5", "svd @10", "popularity @10"]
EVALUATE_ROWS = [
    ("hit_rate", 0.123456, 0.05, 0.9999, 0.25),
    ("catalogue coverage of the recommendations", 0.4321, 0.01, 0.8765, 0.02),
    ("fit seconds", 12345.678, 0.001, 12345.678, 0.001),
]
SUMMARY_ROWS = [
    ("transactions file", "data/a/rather/long/folder/name/for/the/transactions.csv"),
    ("interactions (distinct pairs)", "1,234,567"),
    ("density", "4.0060%"),
    ("customers x items", "138,493 x 26,744"),
    ("fit time", "1234.567 s"),
]


def words(text: str) -> set[str]:
    return {w.strip("()") for line in text.splitlines() for w in line.split()}


@pytest.mark.parametrize("width", [80, 40])
@pytest.mark.parametrize(
    ("columns", "rows", "numeric"),
    [
        (TUNE_COLUMNS, TUNE_ROWS, TUNE_COLUMNS),
        (EVALUATE_COLUMNS, EVALUATE_ROWS, EVALUATE_COLUMNS[1:]),
        (["", "value"], SUMMARY_ROWS, ["value"]),
    ],
)
def test_numbers_appear_whole_on_one_line(width, columns, rows, numeric):
    out = Output()
    printed = render(out, out.table(columns, rows, title="A table", numeric=numeric), width=width)
    shown = words(printed)
    numbers = [
        word
        for row in rows
        for cell in row
        for word in (f"{cell:.4f}" if isinstance(cell, float) else str(cell)).split()
        if re.fullmatch(r"[\d.,%]+", word)
    ]
    assert len(numbers) >= 5
    for number in numbers:
        assert number in shown, (number, printed)
    for header in ("ndcg@10", "hit_rate@10", "recall@5"):
        if header in columns:
            assert header in shown, printed


def test_a_table_that_fits_keeps_to_the_width():
    out = Output()
    printed = render(out, out.table(["", "value"], SUMMARY_ROWS, numeric=["value"]), width=40)
    assert max(len(line) for line in printed.splitlines()) <= 40
    assert "transactions.csv" not in printed  # the path (text) folded instead


# The command line end to end


@pytest.fixture(scope="module")
def hostile_shop(tmp_path_factory) -> Path:
    """Transactions whose ids, and a catalogue whose text, would act on a terminal."""
    folder = tmp_path_factory.mktemp("hostile")
    items = ["Mug [red]", "[/]", "[bold]x", "\x1b[31mred", "\x1b]0;title\x07", "plain"]
    users = ["[/]", "\x1b[2Jclear", "u3", "u4", "u5", "u6"]
    lines = ["user_id,item_id,quantity"]
    for u, user in enumerate(users):
        for i, item in enumerate(items):
            if (u + i) % 3:
                lines.append(f'"{user}","{item}",1')
    (folder / "transactions.csv").write_text("\n".join(lines) + "\n")
    catalogue = ["item_id,category"] + [
        f'"{item}","[italic]cat {i}[/]"' for i, item in enumerate(items)
    ]
    (folder / "items.csv").write_text("\n".join(catalogue) + "\n")
    return folder / "transactions.csv"


@pytest.fixture(scope="module")
def hostile_model(hostile_shop, tmp_path_factory) -> Path:
    from growthrec.cli.main import main

    target = tmp_path_factory.mktemp("model") / "m.npz"
    argv = ["train", "--data", str(hostile_shop), "--model", "popularity", "--output", str(target)]
    assert main(argv) == 0
    return target


def test_recommend_prints_ids_and_catalogue_text_literally(hostile_model, capsys):
    code, out, err = run(capsys, "recommend", "--model", hostile_model, "--user-id", "u3", "--n", 5)
    assert (code, err) == (0, "")
    assert RAW_CONTROLS.search(out) is None
    payload = run_json(capsys, "recommend", "--model", hostile_model, "--user-id", "u3", "--n", 5)
    recommended = payload["results"][0]["items"]
    assert recommended  # u3 has items left to recommend
    for item in recommended:
        assert printable(item["item"]) in out
    assert "[italic]cat" in out


def test_a_user_id_with_escapes_in_a_title_is_shown_literally(hostile_model, capsys):
    code, out, err = run(capsys, "recommend", "--model", hostile_model, "--user-id", "\x1b[2Jclear")
    assert (code, err) == (0, "")
    assert "Recommendations for user \\x1b[2Jclear" in out
    assert RAW_CONTROLS.search(out) is None


def test_an_error_naming_a_hostile_id_is_one_visible_line(hostile_model, tmp_path, capsys):
    message = assert_error(
        capsys,
        1,
        "export",
        "--model",
        hostile_model,
        "--user-id",
        "\x1b]0;pwned\x07\nsecond line",
        "--output",
        tmp_path / "r.csv",
    )
    assert "\\x1b]0;pwned\\x07\\nsecond line" in message
    assert RAW_CONTROLS.search(message) is None
    assert list(tmp_path.iterdir()) == []


def test_tune_best_parameters_line_shows_a_bracketed_path(hostile_shop, tmp_path, capsys):
    folder = tmp_path / "runs[/]x"
    argv = ("tune", "--data", hostile_shop, "--model", "itemknn", "--grid", "neighbors=2,3")
    code, out, err = run(capsys, *argv, "--output", folder)
    assert code == 0, err
    params = folder / "itemknn.params.json"
    assert json.loads(params.read_text())["backend"] == "itemknn"
    expected = f"Best parameters: {params} (growthrec train --params-file {params})"
    assert " ".join(expected.split()) in " ".join(out.split())  # long lines wrap at spaces


def test_evaluate_on_a_narrow_terminal_keeps_every_figure_whole(tmp_path, capsys, monkeypatch):
    shop = tmp_path / "t.csv"
    code, _, err = run(
        capsys, "generate", "--users", 80, "--items", 15, "--density", 0.2, "--output", shop
    )
    assert code == 0, err
    argv = ("evaluate", "--data", shop, "--factors", 3, "--k", 5, 10)
    payload = run_json(capsys, *argv)
    monkeypatch.setenv("COLUMNS", "40")
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    figures = {
        f"{value:.4f}"
        for result in payload["results"]
        for metrics in result["metrics"].values()
        for value in metrics.values()
        if isinstance(value, float)
    }
    assert len(figures) >= 10
    assert figures <= words(out), sorted(figures - words(out))
