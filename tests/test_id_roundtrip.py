"""Ids come back byte for byte: whatever a CSV's id columns hold, train, recommend and export
give back exactly the strings of the file (leading zeros, signs, spaces, exponents, quotes)."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from cli_helpers import run, run_json
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from growthrec.core.interactions import IdMap
from growthrec.data.catalog import catalog_attributes, read_catalog
from growthrec.data.loading import load_events

#: Ids that a number parser would change, and ids CSV quoting must carry.
TRICKY = [
    "007",
    "0042",
    "42",
    "7",
    "+1",
    " 42",
    "42 ",
    "1e3",
    "-0",
    "-5",
    "17850.0",
    "1_000",
    "0x1F",
    "NA",
    "nan",
    "9223372036854775808",
    "\u0667",
    "a,b",
    'say "hi"',
    '"',
    "a;b",
    "a|b",
    "Mug [red]",
    "é",
]

#: Any printable text: no control characters (newlines, tabs, NUL) and no lone surrogates.
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=8).filter(
    lambda text: text.strip("\ufeff") == text
)  # a leading BOM is the file's, not the id's
IDS = st.lists(st.sampled_from(TRICKY) | ANY_TEXT, min_size=1, max_size=4, unique=True)


def _write_csv(path, rows: list[tuple[str, str]], delimiter: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(["user_id", "item_id"])
        writer.writerows(rows)


def _read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _as_read(ids: list[str]) -> list[str]:
    """The ids as growthrec reads them back: as written, except the one documented rewrite.

    A column whose every id is a canonical int64 followed by ``.0`` is a float column of whole
    numbers (Online Retail's ``17850.0``), read as those integers.
    """
    whole = [re.fullmatch(r"(0|-?[1-9][0-9]{0,18})\.0", i) for i in ids]
    if all(whole) and all(-(2**63) <= int(m.group(1)) < 2**63 for m in whole):
        return [m.group(1) for m in whole]
    return list(ids)


def _rows(users: list[str], items: list[str]) -> list[tuple[str, str]]:
    """Every user buys the item at its position (wrapping), and every item is bought."""
    count = max(len(users), len(items))
    return [(users[n % len(users)], items[n % len(items)]) for n in range(count)]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(users=IDS, items=IDS, delimiter=st.sampled_from([",", ";", "\t", "|"]))
@example(users=["7", "42", "-5"], items=["0042", "42"], delimiter=",")  # int users, text items
@example(users=["17850.0", "9.0"], items=["a,b", 'say "hi"', " 42"], delimiter=";")
def test_ids_round_trip_through_train_recommend_and_export(
    users, items, delimiter, tmp_path_factory, capsys
):
    folder = tmp_path_factory.mktemp("ids")
    data, model = folder / "shop.csv", folder / "model.npz"
    _write_csv(data, _rows(users, items), delimiter)

    trained = run_json(capsys, "train", "--data", data, "--model", "popularity", "--output", model)
    assert json.dumps(trained)  # a JSON value (the vocabulary is tested elsewhere)

    n = len(items)
    users, items = _as_read(users), _as_read(items)
    for user in users:
        payload = run_json(
            capsys, "recommend", "--model", model, f"--user-id={user}", "--n", n,
            "--include-purchased",
        )  # fmt: skip
        (result,) = payload["results"]
        assert result["user"] == user
        assert sorted(entry["item"] for entry in result["items"]) == sorted(items)

    target = folder / "recs.csv"
    code, _, err = run(
        capsys, "export", "--model", model, "--output", target, "--n", n, "--include-purchased"
    )
    assert code == 0, err
    exported = _read_csv(target.read_text(encoding="utf-8"))
    assert sorted({row["user_id"] for row in exported}) == sorted(users)
    assert sorted({row["item_id"] for row in exported}) == sorted(items)
    assert len(exported) == len(users) * len(items)


@pytest.mark.parametrize(
    ("values", "kind", "ids"),
    [
        (["1", "22", "-3"], "int", [-3, 1, 22]),
        (["0", "10", "999", "1000"], "int", [0, 10, 999, 1000]),  # digit counts at 10**k
        (["0", "00"], "str", ["0", "00"]),
        (["17850.0", "9.0"], "int", [9, 17850]),  # a float column as pandas writes it
        (["1", "007"], "str", ["007", "1"]),
        (["1", "+2"], "str", ["+2", "1"]),
        (["1", " 2"], "str", [" 2", "1"]),
        (["1", "2.0"], "str", ["1", "2.0"]),  # a mix of the two integer forms is text
        (["1", "-0"], "str", ["-0", "1"]),
        (["1", "1e3"], "str", ["1", "1e3"]),
        (["1", "NA"], "str", ["1", "NA"]),
        (["9223372036854775807", "-9223372036854775808"], "int", [-(2**63), 2**63 - 1]),
        (["9223372036854775808", "1"], "str", ["1", "9223372036854775808"]),
        (["-9223372036854775809", "1"], "str", ["-9223372036854775809", "1"]),
    ],
)
def test_csv_id_column_kind(tmp_path, values, kind, ids):
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id\n" + "".join(f"{v},A\n" for v in values))
    events, _ = load_events(path)
    assert events.users.kind == kind
    assert events.users.ids.tolist() == ids
    assert events.users.external(events.user_codes).tolist() == [
        int(v.removesuffix(".0")) if kind == "int" else v for v in values
    ]


def test_missing_ids_in_an_integer_column_are_empty_fields(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('user_id,item_id\n1,A\n,B\n"",C\n2,D\n')
    events, report = load_events(path)
    assert events.users.kind == "int"
    assert events.users.ids.tolist() == [1, 2]
    assert report.dropped["missing user or item"] == 2


def test_catalogue_ids_are_matched_as_written(tmp_path):
    (tmp_path / "items.csv").write_text("item_id;title\n0042;padded\n42;plain\n7;seven\n")
    text_items = np.array(["0042", "42"])
    attributes = catalog_attributes(
        read_catalog(tmp_path / "items.csv"), IdMap.from_ids(text_items)
    )
    assert attributes["title"].tolist() == ["padded", "plain"]
    int_items = IdMap.from_ids(np.array([7, 42]))
    attributes = catalog_attributes(read_catalog(tmp_path / "items.csv"), int_items)
    assert attributes["title"].tolist() == ["seven", "plain"]  # "0042" is not item 42


def test_a_padded_id_after_the_first_block_makes_the_column_text(tmp_path):
    """Arrow infers integers from the first megabyte; one "0042" later keeps every id as text."""
    path = tmp_path / "t.csv"
    lines = [f"{n % 97},{n % 5000}" for n in range(200_000)]
    path.write_text("user_id,item_id\n" + "\n".join(lines) + "\n7,0042\n")
    events, report = load_events(path)
    assert events.users.kind == "int"
    assert events.items.kind == "str"
    assert report.n_items == 5001
    assert events.items.external(events.item_codes[-1:]).tolist() == ["0042"]
    assert "42" in events.items.ids.tolist()
