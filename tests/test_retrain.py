"""``growthrec retrain`` and ``growthrec models`` end to end, on a small generated shop.

The shop's year of purchases is cut into what a shop would export at the end of October, of
November and of December; each test retrains a store on such files (some sabotaged) and reads
what the store recorded.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import assert_error, run, run_json
from test_json_contract import check

from growthrec.store.modelfile import load_model
from growthrec.store.versions import (
    EXIT_STORE_BUSY,
    lock_store,
    manifest_stamp,
    read_manifest,
    version_path,
)

pytest.importorskip("implicit")
pytestmark = pytest.mark.usefixtures("plain_console")

FIRST = ["--model", "als", "--factors", "8", "--param", "iterations=15", "--bootstrap", "500"]


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """The shop as exported at the end of October, November and December, and sabotages."""
    from growthrec.cli.main import main

    folder = tmp_path_factory.mktemp("exports")
    full = folder / "full" / "transactions.csv"
    argv = ["generate", "--users", "600", "--items", "80", "--density", "0.08", "--seed", "1"]
    assert main([*argv, "--output", str(full)]) == 0
    header, rows = _read(full)
    out = {"dec": full}
    for name, end in (("oct", "2025-11-01"), ("nov", "2025-12-01")):
        out[name] = _write(
            folder / name / "transactions.csv", header, [r for r in rows if r["timestamp"] < end]
        )
    rng = random.Random(0)
    october = [r for r in rows if r["timestamp"] < "2025-11-01"]
    november = [r for r in rows if "2025-11-01" <= r["timestamp"] < "2025-12-01"]
    kept = [r for r in november if rng.random() >= 0.6]  # 60% of November's rows lost
    out["nov_dropped"] = _write(folder / "dropped" / "transactions.csv", header, october + kept)
    items = sorted({r["item_id"] for r in rows})
    shuffled = dict(zip(items, rng.sample(items, len(items)), strict=True))
    relabelled = [{**r, "item_id": shuffled[r["item_id"]]} for r in november]
    out["nov_shuffled"] = _write(
        folder / "shuffled" / "transactions.csv", header, october + relabelled
    )
    out["nov_relabelled"] = _write(
        folder / "relabelled" / "transactions.csv",
        header,
        [{**r, "item_id": shuffled[r["item_id"]]} for r in october + november],
    )
    out["dec_thinned"] = _write(
        folder / "thinned" / "transactions.csv", header, [r for r in rows if rng.random() >= 0.3]
    )
    gone = set(sorted({r["user_id"] for r in rows})[::3])  # a third of the customers lost
    out["dec_fewer_customers"] = _write(
        folder / "customers" / "transactions.csv",
        header,
        [r for r in rows if r["user_id"] not in gone],
    )
    lost_items = set(items[::3])
    out["dec_fewer_items"] = _write(
        folder / "items" / "transactions.csv",
        header,
        [r for r in rows if r["item_id"] not in lost_items],
    )
    out["sep"] = _write(
        folder / "sep" / "transactions.csv",
        header,
        [r for r in rows if r["timestamp"] < "2025-10-01"],
    )
    return out


@pytest.fixture
def store(tmp_path, exports, capsys) -> Path:
    """A store whose champion (v0001) was trained on the October export."""
    path = tmp_path / "store"
    payload = run_json(capsys, "retrain", "--store", path, "--data", exports["oct"], *FIRST)
    assert (payload["outcome"], payload["version"]) == ("promoted", "v0001")
    return path


def _versions(store: Path) -> list[str]:
    return sorted(p.stem for p in (store / "versions").glob("*.npz"))


def test_first_retrain_needs_a_backend(tmp_path, exports, capsys):
    err = assert_error(capsys, 2, "retrain", "--store", tmp_path / "s", "--data", exports["oct"])
    assert "no champion yet" in err and "--model" in err
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_promote_records_the_decision_with_its_figures(store, exports, capsys):
    payload = run_json(
        capsys, "retrain", "--store", store, "--data", exports["nov"], "--bootstrap", 500
    )
    check("retrain", payload)
    assert (payload["outcome"], payload["version"], payload["champion_before"]) == (
        "promoted",
        "v0002",
        "v0001",
    )
    figures = payload["judgement"]
    assert figures["lower_bound"] > -figures["epsilon"]
    assert figures["lower_bound"] <= figures["difference"]
    assert figures["difference"] == pytest.approx(
        figures["ndcg"]["challenger"] - figures["ndcg"]["champion"], abs=2e-5
    )
    assert all(c["passed"] for c in payload["checks"])
    assert payload["fit"]["warm_start"] is True
    assert payload["fit"]["params"]["iterations"] == 5  # a third of the champion's 15
    assert payload["fit"]["holdout_start"] == "2025-11-16T21:20:31Z"  # the last 14 days
    manifest = read_manifest(store)
    assert manifest["aliases"] == {"champion": "v0002", "challenger": "v0002"}
    assert manifest["champions"] == ["v0001", "v0002"]
    assert manifest["decisions"][-1]["judgement"] == figures
    entry = manifest["versions"][1]
    assert entry["params"]["iterations"] == 15  # the recipe keeps the full fit's
    assert entry["fitted_on"] == "all the data"
    assert entry["data"]["last_date"] == "2025-11-30T21:20:31Z"
    assert [e["action"] for e in entry["history"]] == ["promoted"]
    assert [e["action"] for e in manifest["versions"][0]["history"]] == ["promoted", "retired"]
    assert _versions(store) == ["v0001", "v0002"]


def test_same_data_twice_writes_nothing(store, exports, capsys):
    run_json(capsys, "retrain", "--store", store, "--data", exports["nov"], "--bootstrap", 200)
    before = (store / "manifest.json").read_bytes()
    code, out, err = run(capsys, "retrain", "--store", store, "--data", exports["nov"])
    assert code == 0, err
    assert "unchanged (v0002): this data" in " ".join(out.split())
    assert "nothing to do" in out
    assert (store / "manifest.json").read_bytes() == before
    assert _versions(store) == ["v0001", "v0002"]
    payload = run_json(capsys, "retrain", "--store", store, "--data", exports["nov"])
    check("retrain", payload)
    assert (payload["outcome"], payload["version"]) == ("unchanged", "v0002")


@pytest.mark.parametrize(
    ("export", "failing"),
    [
        ("sep", {"date range"}),
        ("dec_thinned", {"rows", "history match"}),
        ("dec_fewer_customers", {"rows", "customers", "history match"}),
        ("dec_fewer_items", {"rows", "items", "history match"}),
        ("nov_dropped", {"recent rows per day"}),
        ("nov_shuffled", {"recent repeat share"}),
        ("nov_relabelled", {"history match"}),
    ],
)
def test_each_data_guardrail_refuses(store, exports, capsys, export, failing):
    payload = run_json(capsys, "retrain", "--store", store, "--data", exports[export])
    check("retrain", payload)
    assert payload["outcome"] == "refused"
    assert {c["name"] for c in payload["checks"] if not c["passed"]} == failing
    assert payload["judgement"] is None and payload["version"] is None
    assert payload["reason"].startswith("data refused: ")
    manifest = read_manifest(store)
    assert manifest["aliases"]["champion"] == "v0001"
    assert manifest["decisions"][-1]["outcome"] == "refused"
    assert _versions(store) == ["v0001"]


def test_guardrail_thresholds_are_options(store, exports, capsys):
    payload = run_json(
        capsys,
        "retrain",
        "--store",
        store,
        "--data",
        exports["nov_dropped"],
        "--min-recent-rate",
        0.2,
    )
    rate = next(c for c in payload["checks"] if c["name"] == "recent rows per day")
    assert rate["passed"] and rate["limit"] == 0.2
    assert payload["outcome"] in ("promoted", "rejected")


def test_a_worse_challenger_is_rejected_and_kept_as_challenger(store, exports, capsys):
    payload = run_json(
        capsys,
        "retrain",
        "--store",
        store,
        "--data",
        exports["nov"],
        "--param",
        "regularization=5000",
    )
    check("retrain", payload)
    assert (payload["outcome"], payload["version"]) == ("rejected", "v0002")
    figures = payload["judgement"]
    assert figures["lower_bound"] <= -figures["epsilon"]
    assert figures["ndcg"]["challenger"] < figures["ndcg"]["champion"]
    assert "may be worse" in payload["reason"]
    manifest = read_manifest(store)
    assert manifest["aliases"] == {"champion": "v0001", "challenger": "v0002"}
    entry = manifest["versions"][1]
    assert entry["fitted_on"].startswith("the data before 2025-11-16")
    assert entry["history"][-1]["action"] == "rejected"
    listed = run_json(capsys, "models", "list", "--store", store)
    check("models", listed)
    assert [v["status"] for v in listed["versions"]] == ["champion", "challenger"]
    assert listed["last_decision"]["outcome"] == "rejected"
    # a person may overrule the decision
    promoted = run_json(
        capsys, "models", "promote", "--store", store, "v0002", "--reason", "checked"
    )
    check("models", promoted)
    assert promoted == {"store": str(store), "champion": "v0002", "previous": "v0001"}
    assert read_manifest(store)["versions"][1]["history"][-1] == {
        "at": read_manifest(store)["versions"][1]["history"][-1]["at"],
        "action": "promoted",
        "reason": "checked",
    }


def test_rollback_serves_the_previous_champion(store, exports, capsys):
    run_json(capsys, "retrain", "--store", store, "--data", exports["nov"], "--bootstrap", 200)
    run_json(capsys, "retrain", "--store", store, "--data", exports["dec"], "--bootstrap", 200)
    assert read_manifest(store)["aliases"]["champion"] == "v0003"
    stamp = manifest_stamp(store)
    payload = run_json(capsys, "models", "rollback", "--store", store)
    check("models", payload)
    assert (payload["champion"], payload["previous"]) == ("v0002", "v0003")
    assert manifest_stamp(store) != stamp  # what a server polls
    payload = run_json(capsys, "models", "rollback", "--store", store)
    assert (payload["champion"], payload["previous"]) == ("v0001", "v0002")
    err = assert_error(capsys, 1, "models", "rollback", "--store", store)
    assert "v0001 is the store's first champion: nothing to roll back to" in err
    shown = run_json(capsys, "models", "show", "--store", store)
    check("models", shown)
    assert shown["version"]["id"] == "v0001" and shown["status"] == "champion"
    assert [e["action"] for e in shown["version"]["history"]] == ["promoted", "retired", "restored"]
    assert shown["path"] == str(version_path(store, "v0001"))


def test_a_failed_manifest_write_leaves_the_champion_and_reports_the_orphan(
    store, exports, capsys, monkeypatch
):
    import growthrec.evaluation.retraining as retraining

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(store / "manifest.json"))

    monkeypatch.setattr(retraining, "write_manifest", disk_full)
    err = assert_error(capsys, 1, "retrain", "--store", store, "--data", exports["nov"])
    assert "No space left on device" in err
    monkeypatch.undo()
    assert _versions(store) == ["v0001", "v0002"]
    assert read_manifest(store)["aliases"]["champion"] == "v0001"
    listed = run_json(capsys, "models", "list", "--store", store)
    assert listed["orphans"] == ["v0002"]
    _, out, _ = run(capsys, "models", "list", "--store", store)
    assert "orphan: versions/v0002.npz is not in the manifest" in " ".join(out.split())
    payload = run_json(capsys, "retrain", "--store", store, "--data", exports["nov"])
    assert (payload["outcome"], payload["version"]) == ("promoted", "v0003")  # never reuses v0002


def test_a_retrain_killed_between_version_and_alias_leaves_the_store_consistent(
    store, exports, capsys
):
    script = textwrap.dedent(
        """
        import os, signal, sys
        import growthrec.evaluation.retraining as retraining
        from growthrec.cli.main import main

        def crash(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        retraining.write_manifest = crash
        sys.exit(main(sys.argv[1:]))
        """
    )
    argv = ["retrain", "--store", str(store), "--data", str(exports["nov"])]
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL
    assert _versions(store) == ["v0001", "v0002"]
    manifest = read_manifest(store)  # still the whole old manifest
    assert manifest["aliases"]["champion"] == "v0001" and len(manifest["versions"]) == 1
    shown = run_json(capsys, "models", "show", "--store", store)
    assert (shown["version"]["id"], shown["orphans"]) == ("v0001", ["v0002"])
    assert not list(store.glob(".manifest.json.*.tmp"))


def _retrain_process(store: Path, data: Path, *extra: str) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "growthrec",
        "retrain",
        "--store",
        str(store),
        "--data",
        str(data),
    ]
    return subprocess.Popen(
        [*argv, *extra, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_locked_store_refuses_a_second_retrain_or_makes_it_wait(store, exports):
    with lock_store(store):
        busy = _retrain_process(store, exports["nov"])
        out, err = busy.communicate(timeout=300)
        waiting = _retrain_process(store, exports["nov"], "--wait", "120")
        time.sleep(1.0)
        assert waiting.poll() is None  # still waiting for the lock
    assert busy.returncode == EXIT_STORE_BUSY
    assert out == ""
    assert err.startswith("error: ") and "holds the store's lock (pid " in err
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert json.loads(out)["outcome"] == "promoted"


def test_two_retrains_at_once_never_corrupt_the_manifest(store, exports):
    processes = [_retrain_process(store, exports["nov"], "--wait", "300") for _ in range(2)]
    results = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in results]
    outcomes = sorted(json.loads(out)["outcome"] for out, _ in results)
    assert outcomes == ["promoted", "unchanged"]  # the second saw the first's decision
    manifest = read_manifest(store)
    assert [v["id"] for v in manifest["versions"]] == ["v0001", "v0002"]
    assert [d["outcome"] for d in manifest["decisions"]] == ["promoted", "promoted"]
    assert _versions(store) == ["v0001", "v0002"]


def test_later_retrains_read_the_data_as_the_champion_was_read(store, exports, capsys):
    err = assert_error(
        capsys, 2, "retrain", "--store", store, "--data", exports["nov"], "--min-weight", "2"
    )
    assert "--min-weight: the store reads data as its champion was read" in err
    err = assert_error(
        capsys, 2, "retrain", "--store", store, "--data", exports["nov"], "--model", "svd"
    )
    assert "the store's champion is als" in err


def test_models_commands_on_a_folder_that_is_not_a_store(tmp_path, capsys):
    err = assert_error(capsys, 1, "models", "list", "--store", tmp_path)
    assert f"{tmp_path}: not a model store (no manifest.json)" in err
    (tmp_path / "manifest.json").write_text("{broken")
    err = assert_error(capsys, 1, "models", "show", "--store", tmp_path)
    assert "unreadable store manifest" in err


def test_models_show_names_an_unknown_version(store, capsys):
    err = assert_error(capsys, 1, "models", "show", "--store", store, "v0042")
    assert "no version 'v0042' in the store (versions: v0001)" in err
    err = assert_error(capsys, 1, "models", "promote", "--store", store, "v0001")
    assert "v0001 is the champion already" in err


# schedule


def test_schedule_prints_systemd_units(tmp_path, capsys):
    payload = run_json(
        capsys,
        "schedule",
        "--store",
        tmp_path / "s",
        "--data",
        tmp_path / "t.csv",
        "--cadence",
        "weekly",
        "--at",
        "03:15",
    )
    check("schedule", payload)
    assert payload["cron"] == "15 3 * * 1"
    assert payload["on_calendar"] == "Mon *-*-* 03:15:00"
    service = payload["units"]["growthrec-retrain.service"]
    assert f"--store {tmp_path / 's'} --data {tmp_path / 't.csv'} --json" in service
    assert "Type=oneshot" in service
    assert "OnCalendar=Mon *-*-* 03:15:00" in payload["units"]["growthrec-retrain.timer"]
    assert payload["installed"] == []


def test_schedule_translates_a_cron_expression(tmp_path, capsys):
    payload = run_json(
        capsys,
        "schedule",
        "--store",
        tmp_path,
        "--data",
        tmp_path / "t.csv",
        "--cadence",
        "*/15 6-18 1,15 * 1-5",
    )
    assert payload["on_calendar"] == "Mon..Fri *-*-01,15 06..18:0/15:00"
    if shutil.which("systemd-analyze"):
        result = subprocess.run(
            ["systemd-analyze", "calendar", payload["on_calendar"]], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("cadence", ["61 * * * *", "hourly", "* * * *", "0 0 32 * *"])
def test_schedule_refuses_a_bad_cadence(tmp_path, capsys, cadence):
    err = assert_error(
        capsys, 2, "schedule", "--store", tmp_path, "--data", "t.csv", "--cadence", cadence
    )
    assert f"--cadence {cadence!r}" in err


def test_schedule_installs_systemd_units(tmp_path, capsys):
    units = tmp_path / "units"
    payload = run_json(
        capsys, "schedule", "--store", tmp_path, "--data", "t.csv", "--install", "--unit-dir", units
    )
    assert sorted(p.name for p in units.iterdir()) == [
        "growthrec-retrain.service",
        "growthrec-retrain.timer",
    ]
    assert payload["installed"] == [
        str(units / "growthrec-retrain.service"),
        str(units / "growthrec-retrain.timer"),
    ]
    assert (units / "growthrec-retrain.timer").read_text() == payload["units"][
        "growthrec-retrain.timer"
    ]


def test_schedule_installs_one_crontab_line(tmp_path, capsys, monkeypatch):
    table = tmp_path / "crontab.txt"
    table.write_text("0 1 * * * backup # backup\n")
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-l" ]; then cat {table}; else cat > {table}; fi\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    for _ in range(2):
        payload = run_json(
            capsys,
            "schedule",
            "--store",
            tmp_path,
            "--data",
            "t.csv",
            "--format",
            "cron",
            "--install",
        )
    check("schedule", payload)
    lines = table.read_text().splitlines()
    assert lines == ["0 1 * * * backup # backup", payload["line"]]
    assert payload["line"].startswith("30 2 * * * ") and payload["line"].endswith(
        "# growthrec-retrain"
    )


def test_server_stamp_changes_only_when_the_store_does(store, exports, capsys):
    stamp = manifest_stamp(store)
    run(capsys, "models", "list", "--store", store)
    assert manifest_stamp(store) == stamp
    threading.Event().wait(0.01)
    run_json(capsys, "retrain", "--store", store, "--data", exports["nov"], "--bootstrap", 200)
    assert manifest_stamp(store) != stamp


def test_too_few_holdout_customers_is_a_refusal_not_a_verdict(store, exports, capsys):
    payload = run_json(
        capsys,
        "retrain",
        "--store",
        store,
        "--data",
        exports["nov"],
        "--min-holdout-customers",
        10_000,
    )
    check("retrain", payload)
    assert payload["outcome"] == "refused"
    assert payload["reason"].startswith("too little new data to judge: ")
    assert "need 10000" in payload["reason"]
    assert "ndcg" not in payload["judgement"] and payload["version"] is None
    assert read_manifest(store)["aliases"]["champion"] == "v0001"
    assert _versions(store) == ["v0001"]


def test_recency_is_kept_from_the_first_version_to_the_next(tmp_path, exports, capsys):
    """A store started with --recency keeps the champion's half-life in every challenger."""
    path = tmp_path / "store"
    run_json(capsys, "retrain", "--store", path, "--data", exports["oct"], *FIRST, "--recency", 3)
    assert load_model(path / "versions" / "v0001.npz").recency == 3.0
    payload = run_json(
        capsys, "retrain", "--store", path, "--data", exports["nov"], "--bootstrap", 200
    )
    assert payload["version"] == "v0002"
    assert load_model(path / "versions" / "v0002.npz").recency == 3.0
