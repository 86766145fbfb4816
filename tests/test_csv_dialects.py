"""CSV dialects a shop exports: delimiters, day-first and other time formats, epoch units, zone
offsets; and errors that name the first bad row, not the last."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest
from cli_helpers import assert_error, run_json

from growthrec.cli.main import build_parser
from growthrec.data.catalog import read_catalog
from growthrec.data.files import detect_delimiter
from growthrec.data.loading import load_events
from growthrec.errors import DataError, ParameterError

# 2025-03-01 14:30:00 UTC
T0 = 1_740_839_400


def _utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path, kind: type[Exception] = DataError, **kwargs) -> str:
    with pytest.raises(kind) as info:
        load_events(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# Delimiters


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("user_id,item_id,quantity", ","),
        ("user_id;item_id;quantity", ";"),
        ("user_id\titem_id\tquantity", "\t"),
        ("user_id|item_id|quantity", "|"),
        ('"user;id","item;id",quantity', ","),  # inside quotes nothing counts
        ("\ufeffuser_id;item_id", ";"),  # a byte-order mark before the header
        ("user_id", ","),  # one column
        ("user_id;item_id,quantity;timestamp", ";"),  # the most frequent one
        ("a,b;c", ","),  # a tie goes to the earlier of , ; tab |
    ],
)
def test_detect_delimiter(tmp_path, header, expected):
    assert detect_delimiter(_csv(tmp_path, header + "\n1,2\n")) == expected


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_european_exports_are_read_with_the_detected_delimiter(tmp_path, delimiter):
    text = f"user_id{delimiter}item_id{delimiter}quantity\n007{delimiter}A,1{delimiter}2.5\n"
    text += f"8{delimiter}B{delimiter}3\n"
    events, report = load_events(_csv(tmp_path, text))
    assert events.users.ids.tolist() == ["007", "8"]
    assert events.items.ids.tolist() == ["A,1", "B"]
    assert events.weights.tolist() == [2.5, 3.0]
    assert report.weight_column == "quantity"


def test_a_decimal_comma_is_an_error_naming_the_row(tmp_path):
    path = _csv(tmp_path, "user_id;item_id;quantity\n1;A;2\n2;B;2,5\n")
    assert _error(path).endswith("column 'quantity': cannot read '2,5' at row 2 (line 3)")


def test_semicolon_csv_gz(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"user_id;item_id\n1;A\n2;B\n"))
    assert detect_delimiter(path) == ";"
    events, _ = load_events(path)
    assert events.users.ids.tolist() == [1, 2]


def test_given_delimiter_wins_over_detection(tmp_path):
    # The header has more commas than pipes; the user knows the file is pipe-separated.
    path = _csv(tmp_path, "user_id|item_id|note,with,commas\n1|A|x\n2|B|y\n")
    assert detect_delimiter(path) == ","
    events, _ = load_events(path, delimiter="|")
    assert events.items.ids.tolist() == ["A", "B"]
    message = _error(path)  # read with commas, the rows do not fit the header
    assert message == (
        f"{path}: not a readable CSV file (CSV parse error: Expected 3 columns, got 1: 1|A|x)"
    )


@pytest.mark.parametrize("spelling", ["tab", "\\t", "\t"])
def test_tab_spellings(tmp_path, spelling):
    path = _csv(tmp_path, "user_id\titem_id\n1\tA\n")
    events, _ = load_events(path, delimiter=spelling)
    assert events.items.ids.tolist() == ["A"]


@pytest.mark.parametrize("bad", ["", ";;", '"', "\n", "é"])
def test_bad_delimiter_is_a_parameter_error(tmp_path, bad):
    path = _csv(tmp_path, "user_id,item_id\n1,A\n")
    message = _error(path, ParameterError, delimiter=bad)
    assert message == (f"delimiter {bad!r}: expected one character such as ',', ';', '|' or 'tab'")


def test_catalogue_delimiter_is_detected_too(tmp_path):
    table = read_catalog(_csv(tmp_path, "item_id;title\n0042;Mug\n", "items.csv"))
    assert table.column_names == ["item_id", "title"]
    assert table["item_id"].to_pylist() == ["0042"]


# Time formats


def test_day_first_time_format(tmp_path):
    path = _csv(tmp_path, "user_id;item_id;timestamp\n1;A;01/03/2025 14:30\n2;B;13/03/2025 09:05\n")
    events, _ = load_events(path, time_format="%d/%m/%Y %H:%M")
    assert events.timestamps.tolist() == [T0, _utc(2025, 3, 13, 9, 5)]


def test_time_format_names_the_first_row_it_does_not_fit(tmp_path):
    text = "user_id,item_id,timestamp\n1,A,01/03/2025 14:30\n2,B,2025-03-01\n3,C,31/02/2025 10:00\n"
    message = _error(_csv(tmp_path, text), time_format="%d/%m/%Y %H:%M")
    assert message.endswith(
        "column 'timestamp': cannot read '2025-03-01' at row 2 (line 3) "
        "with the time format '%d/%m/%Y %H:%M'"
    )


def test_time_format_reads_digits_only_times_as_text(tmp_path):
    # 20250301 would be inferred as an integer (Unix seconds) without the format.
    path = _csv(tmp_path, "user_id,item_id,timestamp\n1,A,20250301\n")
    events, _ = load_events(path, time_format="%Y%m%d")
    assert events.timestamps.tolist() == [_utc(2025, 3, 1)]


def test_time_format_with_an_offset(tmp_path):
    path = _csv(tmp_path, "user_id,item_id,timestamp\n1,A,01.03.2025 15:30 +0100\n")
    events, _ = load_events(path, time_format="%d.%m.%Y %H:%M %z")
    assert events.timestamps.tolist() == [T0]


@pytest.mark.parametrize("bad", ["", "dd/mm/yyyy", 5])
def test_time_format_without_a_directive_is_a_parameter_error(tmp_path, bad):
    path = _csv(tmp_path, "user_id,item_id,timestamp\n1,A,2025-03-01\n")
    message = _error(path, ParameterError, time_format=bad)
    assert message == (
        f"time_format={bad!r}: expected a strptime-style format such as '%d/%m/%Y %H:%M'"
    )


# Epoch units


@pytest.mark.parametrize(
    ("values", "seconds"),
    [
        ([T0, T0 + 60], [T0, T0 + 60]),
        ([T0 * 1000, T0 * 1000 + 1500], [T0, T0 + 1.5]),  # milliseconds (1.7e12)
        ([T0 * 10**6], [T0]),  # microseconds
        ([T0 * 10**9], [T0]),  # nanoseconds
        ([0, 5], [0, 5]),  # small numbers are seconds
        ([99_999_999_999], [99_999_999_999]),  # below 1e11: seconds (year 5138)
        ([100_000_000_000], [100_000_000]),  # from 1e11: milliseconds (1973)
    ],
)
def test_epoch_unit_by_magnitude(tmp_path, values, seconds):
    lines = "".join(f"{n},A{n},{v}\n" for n, v in enumerate(values))
    path = _csv(tmp_path, "user_id,item_id,timestamp\n" + lines)
    events, _ = load_events(path)
    assert events.timestamps.tolist() == pytest.approx(seconds, abs=1e-3)


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)])
def test_epoch_unit_given(tmp_path, unit, scale):
    path = _csv(tmp_path, f"user_id,item_id,timestamp\n1,A,{int(5000 * scale)}\n")
    events, _ = load_events(path, time_unit=unit)
    assert events.timestamps.tolist() == [5000.0]


def test_milliseconds_read_as_seconds_are_refused_at_the_first_row(tmp_path):
    ms = T0 * 1000
    text = f"user_id,item_id,timestamp\n1,A,{T0}\n2,B,{ms}\n3,C,{ms + 1}\n"
    message = _error(_csv(tmp_path, text), time_unit="s")
    assert message.endswith(
        f"column 'timestamp' has {float(ms):g} at row 2 (line 3), which as Unix time in s is "
        "after the year 9999; give the unit with --time-unit s|ms|us|ns"
    )


def test_bad_time_unit(tmp_path):
    path = _csv(tmp_path, "user_id,item_id,timestamp\n1,A,5\n")
    message = _error(path, ParameterError, time_unit="minutes")
    assert message == "time_unit='minutes': expected one of s, ms, us, ns"


# Zone offsets


def test_times_all_with_offsets_are_utc(tmp_path):
    text = "user_id,item_id,timestamp\n1,A,2025-03-01T15:30:00+01:00\n2,B,2025-03-01T14:30:00Z\n"
    events, _ = load_events(_csv(tmp_path, text))
    assert events.timestamps.tolist() == [T0, T0]


def test_naive_times_are_read_as_utc(tmp_path):
    events, _ = load_events(_csv(tmp_path, "user_id,item_id,timestamp\n1,A,2025-03-01 14:30\n"))
    assert events.timestamps.tolist() == [T0]


def test_mixed_naive_and_offset_times_are_refused_naming_the_first_odd_row(tmp_path):
    text = (
        "user_id,item_id,timestamp\n"
        "1,A,2025-03-01 14:30:00\n"
        "2,B,2025-03-01 15:00:00\n"
        "3,C,2025-03-01T15:30:00+01:00\n"
        "4,D,2025-03-01T16:30:00+01:00\n"
    )
    message = _error(_csv(tmp_path, text))
    assert message.endswith(
        "column 'timestamp': '2025-03-01T15:30:00+01:00' at row 3 (line 4) has a zone offset "
        "that '2025-03-01 14:30:00' at row 1 (line 2) lacks; write every time with an offset "
        "or every time without"
    )


def test_mixed_times_starting_with_an_offset(tmp_path):
    text = "user_id,item_id,timestamp\n1,A,2025-03-01T14:30:00Z\n2,B,2025-03-02\n"
    message = _error(_csv(tmp_path, text))
    assert "'2025-03-02' at row 2 (line 3) lacks a zone offset that" in message


def test_an_unreadable_time_before_the_mix_is_named_first(tmp_path):
    text = (
        "user_id,item_id,timestamp\n"
        "1,A,2025-03-01 14:30:00\n"
        "2,B,yesterday\n"
        "3,C,2025-03-01T15:30:00+01:00\n"
    )
    message = _error(_csv(tmp_path, text))
    assert "column 'timestamp': cannot read 'yesterday' at row 2 (line 3);" in message


# The first bad row, not the last


def test_unreadable_weight_names_the_first_bad_row(tmp_path):
    text = "user_id,item_id,quantity\n1,A,1\n2,B,x\n3,C,2\n4,D,y\n"
    message = _error(_csv(tmp_path, text))
    assert message.endswith("column 'quantity': cannot read 'x' at row 2 (line 3)")


def test_unreadable_time_names_the_first_bad_row(tmp_path):
    text = "user_id,item_id,timestamp\n1,A,2025-03-01\n2,B,soon\n3,C,later\n"
    message = _error(_csv(tmp_path, text))
    assert "cannot read 'soon' at row 2 (line 3)" in message


def test_first_bad_row_far_into_a_large_file(tmp_path):
    rows = [f"{n % 500},{n % 70},1\n" for n in range(150_000)]
    rows[70_001], rows[140_000] = "1,1,x\n", "1,1,y\n"
    message = _error(_csv(tmp_path, "user_id,item_id,quantity\n" + "".join(rows)))
    assert message.endswith("column 'quantity': cannot read 'x' at row 70002 (line 70003)")


# The command line


@pytest.mark.parametrize("command", ["train", "evaluate", "tune", "compare"])
def test_every_loading_command_takes_the_dialect_options(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    options = {s for a in sub._actions for s in a.option_strings}
    assert {"--delimiter", "--time-format", "--time-unit"} <= options


def test_train_with_a_semicolon_day_first_export(tmp_path, capsys):
    data = _csv(
        tmp_path,
        "Kunde;Artikel;Menge;Datum\n"
        "007;0042;1;01/03/2025 14:30\n"
        "007;0043;2;02/03/2025 10:00\n"
        "008;0042;1;03/03/2025 11:00\n",
    )
    summary = run_json(
        capsys, "train", "--data", data, "--user-col", "Kunde", "--item-col", "Artikel",
        "--weight-col", "Menge", "--time-col", "Datum", "--time-format", "%d/%m/%Y %H:%M",
        "--model", "popularity", "--output", tmp_path / "m.npz",
    )  # fmt: skip
    assert summary["data"]["rows_kept"] == 3
    assert summary["data"]["time_column"] == "Datum"
    recs = run_json(capsys, "recommend", "--model", tmp_path / "m.npz", "--user-id", "008")
    assert [entry["item"] for entry in recs["results"][0]["items"]] == ["0043"]


def test_cli_time_errors(tmp_path, capsys):
    data = _csv(tmp_path, f"user_id,item_id,timestamp\n1,A,{T0 * 1000}\n")
    out = tmp_path / "m.npz"
    message = assert_error(capsys, 1, "train", "--data", data, "--time-unit", "s", "--output", out)
    assert "which as Unix time in s is after the year 9999" in message
    message = assert_error(
        capsys, 2, "train", "--data", data, "--time-unit", "hours", "--output", out
    )
    assert "--time-unit: invalid choice: 'hours'" in message
    message = assert_error(capsys, 2, "train", "--data", data, "--delimiter", ";;", "--output", out)
    assert message == (
        "error: delimiter ';;': expected one character such as ',', ';', '|' or 'tab'"
    )
    assert not out.exists()
