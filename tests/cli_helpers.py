"""The ``growthrec`` command run in-process from tests, and what every failure must look like."""

from __future__ import annotations

import json

from growthrec.cli.main import main

__all__ = ["assert_error", "run", "run_json"]


def run(capsys, *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: object):
    """Run a command with --json; it must succeed and its whole stdout must be one JSON value."""
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def assert_error(capsys, code: int, *argv: object) -> str:
    """The command fails with ``code``, one ``error:`` line on stderr, no traceback, no stdout."""
    actual, out, err = run(capsys, *argv)
    assert actual == code, err
    assert out == ""
    assert err.startswith("error: ")
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()
