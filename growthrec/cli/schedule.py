"""``growthrec schedule``: the systemd timer and service, or the crontab line, of a retrain.

``--install`` writes the systemd units into the user's unit folder (then enable them with the
``systemctl --user`` line printed), or adds the line to the user's crontab (replacing a line
of the same ``--name``, so installing twice leaves one).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from growthrec.cli.options import add_json_option
from growthrec.cli.output import Output, data_text
from growthrec.errors import GrowthrecError, ParameterError
from growthrec.store.atomic import atomic_write

__all__ = ["add_parser", "cron_expression", "on_calendar"]

_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?$")
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schedule",
        help="print (or --install) a systemd timer or crontab line that runs 'growthrec retrain'",
        description="Print the systemd service and timer units, or the crontab line, that run "
        "'growthrec retrain --store DIR --data FILE' on a cadence; --install writes them.",
    )
    p.add_argument("--store", type=Path, required=True, help="the model store directory")
    p.add_argument("--data", type=Path, required=True, help="the transactions file to retrain on")
    p.add_argument(
        "--cadence",
        default="daily",
        help="daily, weekly, or a five-field cron expression such as '30 2 * * 1-5' "
        "(default: daily)",
    )
    p.add_argument(
        "--at", default="02:30", metavar="HH:MM", help="time of day for daily/weekly (02:30)"
    )
    p.add_argument("--format", choices=("systemd", "cron"), default="systemd", dest="kind")
    p.add_argument("--name", default="growthrec-retrain", help="unit name / crontab marker")
    p.add_argument(
        "--unit-dir",
        type=Path,
        default=Path.home() / ".config" / "systemd" / "user",
        help="where --install writes systemd units (default: ~/.config/systemd/user)",
    )
    p.add_argument("--install", action="store_true", help="write the units / crontab line")
    add_json_option(p)
    p.set_defaults(run=run)


def cron_expression(cadence: str, at: str) -> str:
    """The five cron fields of ``cadence`` (daily, weekly at ``at``, or given), checked."""
    hour, minute = _time_of_day(at)
    if cadence == "daily":
        return f"{minute} {hour} * * *"
    if cadence == "weekly":
        return f"{minute} {hour} * * 1"
    fields = cadence.split()
    if len(fields) != 5:
        raise ParameterError(
            f"--cadence {cadence!r}: expected daily, weekly or five cron fields "
            "(minute hour day-of-month month day-of-week)"
        )
    for text, (low, high), name in zip(fields, _RANGES, _NAMES, strict=True):
        for part in text.split(","):
            match = _FIELD.match(part)
            numbers = [int(n) for n in re.findall(r"\d+", match.group(1))] if match else None
            if match is None or any(not low <= n <= high for n in numbers or []):
                raise ParameterError(
                    f"--cadence {cadence!r}: {name} field {text!r} is not a number {low}-{high}, "
                    "a range a-b, a list, * or a step /n"
                )
    return " ".join(fields)


def _time_of_day(at: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", at)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ParameterError(f"--at {at!r}: expected a time of day HH:MM, e.g. 02:30")
    return int(match.group(1)), int(match.group(2))


def on_calendar(cron: str) -> str:
    """The systemd ``OnCalendar=`` of a five-field cron expression (``cron_expression``'s)."""
    minute, hour, day, month, weekday = cron.split()

    def field(text: str, width: int) -> str:
        out = []
        for part in text.split(","):
            base, _, step = part.partition("/")
            if base == "*":
                base = "*" if not step else "0"
            elif "-" in base:
                a, b = base.split("-")
                base = f"{int(a):0{width}d}..{int(b):0{width}d}"
            else:
                base = f"{int(base):0{width}d}"
            out.append(f"{base}/{step}" if step else base)
        return ",".join(out)

    days = ""
    if weekday != "*":
        names = []
        for part in weekday.split(","):
            if "-" in part:
                a, b = (int(n) % 7 for n in part.split("-"))
                names.append(f"{_DAYS[a]}..{_DAYS[b]}")
            else:
                names.append(_DAYS[int(part) % 7])
        days = ",".join(names) + " "
    return f"{days}*-{field(month, 2)}-{field(day, 2)} {field(hour, 2)}:{field(minute, 2)}:00"


def _command(store: Path, data: Path) -> list[str]:
    program = shutil.which("growthrec") or f"{sys.executable} -m growthrec"
    return [
        *shlex.split(program),
        "retrain",
        "--store",
        str(store.resolve()),
        "--data",
        str(data.resolve()),
        "--json",
    ]


def _units(name: str, command: list[str], calendar: str, store: Path) -> dict[str, str]:
    service = (
        "[Unit]\n"
        f"Description=growthrec retrain of {store.resolve()}\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={store.resolve().parent}\n"
        f"ExecStart={shlex.join(command)}\n"
        "Nice=10\n"
        "# 0: a decision was recorded (promoted, rejected, refused, unchanged); 1: an error;\n"
        "# 75: another retrain held the store's lock (the next run tries again)\n"
        "SuccessExitStatus=75\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=growthrec retrain of {store.resolve()} on a schedule\n\n"
        "[Timer]\n"
        f"OnCalendar={calendar}\n"
        "Persistent=true\n"
        "RandomizedDelaySec=300\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def _cron_line(name: str, cron: str, command: list[str], store: Path) -> str:
    log = store.resolve() / "retrain.log"
    return f"{cron} {shlex.join(command)} >> {shlex.quote(str(log))} 2>&1 # {name}"


def _install_cron(name: str, line: str) -> None:
    """Add ``line`` to the user's crontab, replacing a line that ends with the same marker."""
    if shutil.which("crontab") is None:
        raise GrowthrecError("crontab: not installed here; add the printed line by hand")
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    lines = current.stdout.splitlines() if current.returncode == 0 else []
    kept = [text for text in lines if not text.endswith(f"# {name}")]
    result = subprocess.run(
        ["crontab", "-"], input="\n".join([*kept, line]) + "\n", text=True, capture_output=True
    )
    if result.returncode != 0:
        raise GrowthrecError(f"crontab: {result.stderr.strip() or 'refused the new table'}")


def run(args: argparse.Namespace, out: Output) -> None:
    cron = cron_expression(args.cadence, args.at)
    command = _command(args.store, args.data)
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", args.name):
        raise ParameterError(f"--name {args.name!r}: use letters, digits, '-', '_', '.' or '@'")
    written: list[str] = []
    if args.kind == "cron":
        line = _cron_line(args.name, cron, command, args.store)
        if args.install:
            _install_cron(args.name, line)
        out.emit_json({"format": "cron", "cron": cron, "line": line, "installed": args.install})
        _print_plain(out, line)
        return
    calendar = on_calendar(cron)
    units = _units(args.name, command, calendar, args.store)
    if args.install:
        for filename, text in units.items():
            path = args.unit_dir / filename
            with atomic_write(path) as handle:
                handle.write(text.encode())
            written.append(str(path))
    enable = f"systemctl --user daemon-reload && systemctl --user enable --now {args.name}.timer"
    out.emit_json(
        {
            "format": "systemd",
            "cron": cron,
            "on_calendar": calendar,
            "units": units,
            "installed": written,
            "enable": enable,
        }
    )
    if written:
        out.print(f"wrote {data_text(', '.join(written))}; enable with: {data_text(enable)}")
        return
    for filename, text in units.items():
        _print_plain(out, f"# {filename}\n{text}")
    _print_plain(out, f"# install with --install, or copy into {os.fspath(args.unit_dir)}")


def _print_plain(out: Output, text: str) -> None:
    """Text to copy into a file: never wrapped at the terminal's width, no markup."""
    if not out.json_mode:
        out.console.print(text, markup=False, highlight=False, soft_wrap=True)
