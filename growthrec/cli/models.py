"""``growthrec models list|show|promote|rollback``: read and act on a model store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from growthrec.cli.options import add_json_option
from growthrec.cli.output import Output, data_text
from growthrec.store.versions import (
    CHALLENGER,
    CHAMPION,
    StoreError,
    find_version,
    lock_store,
    missing_versions,
    orphan_versions,
    promote_version,
    read_manifest,
    rollback_champion,
    version_path,
    write_manifest,
)

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list, show, promote or roll back the versions of a model store",
        description="Read and act on a model store written by 'growthrec retrain': its "
        "versions, the champion (served) and the last challenger, and every decision.",
    )
    actions = p.add_subparsers(dest="models_command", metavar="ACTION", parser_class=type(p))
    actions.required = True

    def action(name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_text, description=help_text)
        a.add_argument("--store", type=Path, required=True, help="the model store directory")
        add_json_option(a)
        a.set_defaults(run=run)
        return a

    action("list", "every version, the aliases, and files the manifest does not name", run_list)
    show = action(
        "show", "one version in full (default: the champion) and the last decision", run_show
    )
    show.add_argument("version", nargs="?", default=None, help="version id, champion or challenger")
    promote = action("promote", "make a version the champion (overrules a decision)", run_promote)
    promote.add_argument("version", help="the version id to serve, e.g. v0003")
    promote.add_argument("--reason", default="promoted by hand", help="recorded in its history")
    promote.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait for the lock"
    )
    rollback = action("rollback", "serve the previous champion again", run_rollback)
    rollback.add_argument("--reason", default="rolled back by hand", help="recorded in the history")
    rollback.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait for the lock"
    )


def _status(manifest: dict[str, Any], entry: dict[str, Any]) -> str:
    aliases = manifest["aliases"]
    names = [a for a in (CHAMPION, CHALLENGER) if aliases.get(a) == entry["id"]]
    if names:
        return " + ".join(names)
    return entry["history"][-1]["action"] if entry["history"] else "created"


def _summary(manifest: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    metrics = entry.get("metrics") or {}
    return {
        "id": entry["id"],
        "status": _status(manifest, entry),
        "created": entry["created"],
        "backend": entry["backend"],
        "fingerprint": entry["data"]["fingerprint"],
        "last_date": entry["data"].get("last_date"),
        "ndcg": (metrics.get("ndcg") or {}).get("challenger"),
        "fitted_on": entry.get("fitted_on", "all the data"),
    }


def _problems(store: Path, manifest: dict[str, Any]) -> dict[str, list[str]]:
    return {
        "orphans": orphan_versions(store, manifest),
        "missing": missing_versions(store, manifest),
    }


def _warn_problems(out: Output, problems: dict[str, list[str]]) -> None:
    for version in problems["orphans"]:
        out.print(
            f"orphan: versions/{data_text(version)}.npz is not in the manifest (a retrain "
            "stopped between writing it and recording it; the champion did not change)"
        )
    for version in problems["missing"]:
        out.print(f"missing: the model file of {data_text(version)} is gone")


def run_list(args: argparse.Namespace, out: Output) -> None:
    manifest = read_manifest(args.store)
    versions = [_summary(manifest, e) for e in manifest["versions"]]
    problems = _problems(args.store, manifest)
    last = manifest["decisions"][-1] if manifest["decisions"] else None
    out.emit_json(
        {
            "store": str(args.store),
            "aliases": manifest["aliases"],
            "versions": versions,
            **problems,
            "last_decision": _decision_summary(last),
        }
    )
    rows = [
        (
            v["id"],
            v["status"],
            _minute(v["created"]),
            v["backend"],
            _minute(v["last_date"]),
            "-" if v["ndcg"] is None else f"{v['ndcg']:.4f}",
        )
        for v in versions
    ]
    columns = ["version", "status", "created", "backend", "data until", "ndcg@10 judged"]
    out.print(out.table(columns, rows, title=f"Model store {args.store}"))
    _warn_problems(out, problems)
    _print_last(out, last)


def _minute(iso: str | None) -> str:
    """An ISO time to the minute, for tables (the JSON keeps it whole)."""
    return "-" if iso is None else iso[:16].replace("T", " ")


def _print_last(out: Output, last: dict[str, Any] | None) -> None:
    if last is not None:
        what = f"{last['outcome']}: {last['reason']}"
        out.print(f"last decision ({data_text(last['at'])}): {data_text(what)}")


def _decision_summary(decision: dict[str, Any] | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {k: decision[k] for k in ("at", "outcome", "reason", "version", "champion_before")}


def _resolve(manifest: dict[str, Any], name: str | None) -> dict[str, Any]:
    wanted = (
        manifest["aliases"].get(name or CHAMPION, name)
        if name in (None, CHAMPION, CHALLENGER)
        else name
    )
    entry = find_version(manifest, wanted)
    if entry is None:
        known = ", ".join(e["id"] for e in manifest["versions"]) or "none"
        raise StoreError(f"no version {name or CHAMPION!r} in the store (versions: {known})")
    return entry


def run_show(args: argparse.Namespace, out: Output) -> None:
    manifest = read_manifest(args.store)
    entry = _resolve(manifest, args.version)
    problems = _problems(args.store, manifest)
    last = manifest["decisions"][-1] if manifest["decisions"] else None
    out.emit_json(
        {
            "store": str(args.store),
            "status": _status(manifest, entry),
            "path": str(version_path(args.store, entry["id"])),
            "version": entry,
            **problems,
            "last_decision": last,
        }
    )
    data = entry["data"]
    rows = [
        ("status", _status(manifest, entry)),
        ("file", str(version_path(args.store, entry["id"]))),
        ("backend", entry["backend"]),
        ("parameters", ", ".join(f"{k}={v}" for k, v in entry["params"].items())),
        (
            "data",
            f"{data['path']} ({data['rows']:,} rows, {data['n_users']:,} customers, "
            f"{data['n_items']:,} items)",
        ),
        ("date range", f"{data.get('first_date') or '-'} .. {data.get('last_date') or '-'}"),
        ("fingerprint", data["fingerprint"]),
        ("fitted on", entry.get("fitted_on", "all the data")),
    ]
    rows += [(f"{e['at']}", f"{e['action']}: {e['reason']}") for e in entry["history"]]
    out.print(out.table(["", entry["id"]], rows, title=f"Version {entry['id']}"))
    _warn_problems(out, problems)
    _print_last(out, last)


def _act(args: argparse.Namespace, out: Output, change: Any) -> None:
    with lock_store(args.store, wait=args.wait):
        manifest = read_manifest(args.store)
        before = manifest["aliases"][CHAMPION]
        entry = change(manifest)
        if not version_path(args.store, entry["id"]).is_file():
            raise StoreError(
                f"{version_path(args.store, entry['id'])}: the model file is gone; not served"
            )
        write_manifest(args.store, manifest)
    out.emit_json({"store": str(args.store), "champion": entry["id"], "previous": before})
    out.print(f"champion: {data_text(entry['id'])} (was {data_text(before)})")


def run_promote(args: argparse.Namespace, out: Output) -> None:
    _act(args, out, lambda manifest: promote_version(manifest, args.version, args.reason))


def run_rollback(args: argparse.Namespace, out: Output) -> None:
    _act(args, out, lambda manifest: rollback_champion(manifest, args.reason))
