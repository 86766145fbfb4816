"""``growthrec backends``: every registered backend, who provides it, and its parameters."""

from __future__ import annotations

import argparse

from growthrec.backends.registry import available_backends
from growthrec.cli.options import add_json_option
from growthrec.cli.output import Output

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backends",
        help="list the registered backends and their parameters",
        description="List every backend registered through the 'growthrec' plugin hook.",
    )
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Output) -> None:
    registered = available_backends()
    payload = [
        {
            "name": name,
            "description": reg.backend.description,
            "plugin": reg.plugin,
            "distribution": reg.distribution,
            "params": [
                {
                    "name": p.name,
                    "type": p.type.__name__,
                    "default": p.default,
                    "help": p.help,
                    **({"choices": list(p.choices)} if p.choices else {}),
                }
                for p in reg.backend.params
            ],
        }
        for name, reg in sorted(registered.items())
    ]
    out.emit_json(payload)
    rows = [
        (
            entry["name"],
            entry["description"],
            [entry["plugin"], f"({entry['distribution']})"],
            [f"{p['name']}={p['default']!r}" for p in entry["params"]] or "-",
        )
        for entry in payload
    ]
    out.print(out.table(["backend", "description", "plugin", "parameters"], rows))
