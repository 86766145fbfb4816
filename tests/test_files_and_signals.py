"""Files growthrec writes: never one the user did not name, normal permissions, no temporary
file left by a signal, and the exit codes the README promises (issue 10)."""

from __future__ import annotations

import os
import select
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import assert_error, run

import growthrec.cli.generate
from growthrec.cli.main import Terminated, main
from growthrec.store.atomic import atomic_write

pytestmark = pytest.mark.usefixtures("plain_console")

SMALL = ("--users", 60, "--items", 12, "--density", 0.2)
REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    target = folder / "transactions.csv"
    assert main(["generate", *map(str, SMALL), "--output", str(target)]) == 0
    return target


@pytest.fixture(scope="module")
def model(shop, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("model") / "svd.npz"
    assert main(["train", "--data", str(shop), "--factors", "3", "--output", str(target)]) == 0
    return target


# Never overwrite what the user did not name


def test_generate_refuses_the_catalogue_beside_output_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "items.csv").write_bytes(b"item_id,name\nmine,my real catalogue\n")
    before = snapshot(tmp_path)
    message = assert_error(capsys, 1, "generate", *SMALL, "--output", tmp_path / "t.csv")
    catalogue = tmp_path / "items.csv"
    assert message == (
        f"error: {catalogue}: exists and was not named on the command line; name it with "
        f"--catalog-output {catalogue} or pass --force to replace it"
    )
    assert snapshot(tmp_path) == before  # not even the named t.csv was written


def test_generate_replaces_the_catalogue_when_named_or_forced(tmp_path, capsys):
    catalogue = tmp_path / "items.csv"
    for extra in (["--catalog-output", catalogue], ["--force"]):
        catalogue.write_bytes(b"old\n")
        code, _, err = run(capsys, "generate", *SMALL, "--output", tmp_path / "t.csv", *extra)
        assert (code, err) == (0, "")
        assert catalogue.read_bytes().startswith(b'"item_id","category","price","brand","line"\n')


def test_generate_replaces_the_output_it_was_given(tmp_path, capsys):
    target = tmp_path / "t.csv"
    target.write_bytes(b"old transactions\n")
    code, _, err = run(
        capsys, "generate", *SMALL, "--output", target, "--catalog-output", tmp_path / "c.csv"
    )
    assert (code, err) == (0, "")
    assert target.read_bytes().startswith(b'"user_id","item_id","quantity","timestamp"\n')


def test_generate_refuses_its_default_output_when_it_exists(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = Path("data/transactions.csv")
    default.parent.mkdir()
    default.write_bytes(b"a shop's real transactions\n")
    message = assert_error(capsys, 1, "generate", *SMALL)
    assert message.startswith(f"error: {default}: exists and was not named on the command line")
    assert f"--output {default}" in message
    assert snapshot(tmp_path) == {"data/transactions.csv": b"a shop's real transactions\n"}
    assert default == growthrec.cli.generate.DEFAULT_OUTPUT


def test_generate_output_that_is_its_own_catalogue_is_a_usage_error(tmp_path, capsys):
    message = assert_error(capsys, 2, "generate", *SMALL, "--output", tmp_path / "items.csv")
    assert message == (
        f"error: --output and --catalog-output are the same file ({tmp_path / 'items.csv'}); "
        "give each its own file"
    )
    assert list(tmp_path.iterdir()) == []


def test_demo_refuses_a_workdir_holding_its_files(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "items.csv").write_bytes(b"mine\n")
    message = assert_error(capsys, 1, "demo", "--workdir", tmp_path)
    assert message == (
        f"error: {data / 'items.csv'}: exists and was not named on the command line; "
        "pass --force to replace it"
    )
    assert snapshot(tmp_path) == {"data/items.csv": b"mine\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no models/ either


def test_train_replaces_its_model_in_the_output_folder(shop, tmp_path, capsys):
    """``--output DIR`` names the folder whose ``<backend>.npz`` is the command's own output."""
    for factors in (2, 3):
        code, _, err = run(
            capsys, "train", "--data", shop, "--factors", factors, "--output", tmp_path
        )
        assert (code, err) == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svd.npz"]


# Permissions: what an ordinary open() gives, and a replaced file keeps its mode


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_honours_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    with atomic_write(tmp_path / "f.bin") as handle:
        handle.write(b"x")
    assert mode(tmp_path / "f.bin") == expected
    with open(tmp_path / "plain.bin", "wb") as handle:  # exactly as an ordinary write
        handle.write(b"x")
    assert mode(tmp_path / "plain.bin") == expected


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with atomic_write(target) as handle:
        handle.write(b"new")
    assert (target.read_bytes(), mode(target)) == (b"new", 0o640)


def test_every_written_file_gets_the_umask_mode(shop, model, tmp_path, capsys, umask):
    umask(0o027)
    written = {
        "generate": (tmp_path / "g" / "t.parquet", tmp_path / "g" / "items.parquet"),
        "train": (tmp_path / "m" / "svd.npz",),
        "export": (tmp_path / "recs.csv.gz",),
    }
    commands = {
        "generate": ["generate", *SMALL, "--output", written["generate"][0]],
        "train": ["train", "--data", shop, "--factors", 2, "--output", tmp_path / "m"],
        "export": ["export", "--model", model, "--output", written["export"][0]],
    }
    for name, argv in commands.items():
        code, _, err = run(capsys, *argv)
        assert (code, err) == (0, ""), name
        for path in written[name]:
            assert mode(path) == 0o640, path
    exported = written["export"][0]
    exported.chmod(0o604)
    code, _, err = run(capsys, *commands["export"])
    assert (code, err, mode(exported)) == (0, "", 0o604)


def test_writing_onto_a_folder_names_the_folder_and_leaves_nothing(model, tmp_path, capsys):
    target = tmp_path / "recs.csv"
    target.mkdir()
    message = assert_error(capsys, 1, "export", "--model", model, "--output", target)
    assert message == f"error: {target}: Is a directory"
    assert [p.name for p in tmp_path.iterdir()] == ["recs.csv"]
    assert list(target.iterdir()) == []


# Signals: a real process, a write in progress, then SIGTERM / SIGINT / SIGHUP

#: Runs the CLI with a slowed-down write that announces itself on stderr once the temporary
#: file holds data: export between two batches, any other command just before its fsync.
_SLOW_WRITE = textwrap.dedent(
    """
    import os, signal, sys, time
    import growthrec.cli.export as export
    import growthrec.store.atomic
    from growthrec.cli.main import main

    # As from a terminal: a test run under nohup would hand its SIGHUP-ignoring disposition
    # down, and the CLI rightly leaves an ignored SIGHUP ignored.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

    def announce():
        sys.stderr.write("writing\\n")
        sys.stderr.flush()
        time.sleep(60)

    real_batches = export.recommend_in_batches
    def slow_batches(*args, **kwargs):
        for n, batch in enumerate(real_batches(*args, **{**kwargs, "batch_users": 8})):
            yield batch
            if n == 1:
                announce()
    export.recommend_in_batches = slow_batches

    real_fsync = os.fsync
    def slow_fsync(fd):
        if sys.argv[1] != "export":
            announce()
        real_fsync(fd)
    growthrec.store.atomic.os.fsync = slow_fsync

    sys.exit(main(sys.argv[1:]))
    """
)


def run_until_writing(argv: list[object], cwd: Path) -> subprocess.Popen:
    """Start the CLI in a real process and return once it is in the middle of a write."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITE, *map(str, argv)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    ready, _, _ = select.select([process.stderr], [], [], 60)
    if not ready:
        process.kill()
        pytest.fail("the command never reached its write")
    line = process.stderr.readline()
    assert line == b"writing\n", line + process.stderr.read()
    return process


@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGHUP, 129, "terminated (SIGHUP)"),
    ],
)
def test_signal_during_export_removes_the_temporary_file(model, tmp_path, signum, code, message):
    target = tmp_path / "recs.parquet"
    target.write_bytes(b"the previous export")
    process = run_until_writing(["export", "--model", model, "--output", target], tmp_path)
    temporary = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(temporary) == 1 and temporary[0].startswith(".recs.parquet.")
    process.send_signal(signum)
    assert process.wait(30) == code
    assert process.stderr.read() == f"error: {message}\n".encode()
    assert snapshot(tmp_path) == {"recs.parquet": b"the previous export"}


@pytest.mark.parametrize("command", ["train", "generate"])
def test_sigterm_before_the_rename_leaves_no_file(shop, tmp_path, command):
    argv = {
        "train": ["train", "--data", shop, "--factors", 2, "--output", "models"],
        "generate": ["generate", *SMALL, "--output", "shop.csv"],
    }[command]
    process = run_until_writing(argv, tmp_path)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 143
    assert time.monotonic() - started < 20  # the sleep was cut short, not waited out
    assert process.stderr.read() == b"error: terminated (SIGTERM)\n"
    assert snapshot(tmp_path) == {}


# Exit codes: 2 usage, 1 data or file, 130 interrupted, 143 terminated, 141 closed pipe


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (KeyboardInterrupt(), 130, "error: interrupted"),
        (Terminated(signal.SIGTERM), 143, "error: terminated (SIGTERM)"),
        (Terminated(signal.SIGHUP), 129, "error: terminated (SIGHUP)"),
        (
            PermissionError(13, "Permission denied", "/srv/m.npz"),
            1,
            "error: /srv/m.npz: Permission denied",
        ),
        (OSError(28, "No space left on device"), 1, "error: No space left on device"),
    ],
)
def test_each_way_a_command_ends_has_its_exit_code(monkeypatch, capsys, raised, code, line):
    def fail(args, out):
        raise raised

    monkeypatch.setattr(growthrec.cli.generate, "run", fail)
    actual, out, err = run(capsys, "generate")
    assert (actual, out, err) == (code, "", line + "\n")


def test_usage_errors_exit_2_in_one_line(capsys):
    message = assert_error(capsys, 2, "generate", "--users", "many")
    assert message == (
        "error: growthrec generate: argument --users: 'many' is not a whole number "
        "(see 'growthrec generate --help')"
    )


def test_sigterm_handler_is_only_installed_while_a_command_runs(capsys):
    before = signal.getsignal(signal.SIGTERM)
    code, _, _ = run(capsys, "backends")
    assert code == 0
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("argv", [["backends"], ["backends", "--json"]])
def test_a_closed_pipe_ends_quietly(argv):
    """``growthrec backends | head -0``: no traceback, no message, exit 141 (128 + SIGPIPE)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "growthrec", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    process.stdout.close()  # the reader goes away before anything is written
    assert process.wait(60) == 141
    assert process.stderr.read() == b""
