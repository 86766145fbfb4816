"""``growthrec serve``: the HTTP recommendation service (FastAPI on uvicorn), hot model swap."""

from __future__ import annotations

import argparse
import copy
import errno
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from growthrec.cli.notes import warn
from growthrec.cli.options import positive_int
from growthrec.cli.output import Output
from growthrec.errors import GrowthrecError, ModelFileError, ParameterError

__all__ = ["INSTALL_HINT", "add_parser", "run"]

INSTALL_HINT = 'pip install "growthrec[serve]"'
#: The modules of the ``serve`` extra.
_EXTRA_MODULES = ("fastapi", "uvicorn", "prometheus_client", "starlette", "pydantic")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1 to 65535)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value} must be between 0.05 and 3600 seconds")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve recommendations over HTTP",
        description="Serve a model file, or a model store's champion, over HTTP (JSON; the "
        "OpenAPI page is at /docs, a page for people at /). The file is watched: a new model "
        "written to the same path (atomically, as 'train' does), or a new champion of the "
        "store ('retrain', 'models promote', 'models rollback'), is loaded, checked and "
        "swapped in without a restart; a bad one is refused and the old model keeps serving. "
        f"Needs {INSTALL_HINT}.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="model file written by 'train'")
    source.add_argument(
        "--store",
        type=Path,
        metavar="DIR",
        help="model store written by 'retrain': serve its champion, and follow the alias",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for every "
        "interface, behind a reverse proxy)",
    )
    p.add_argument("--port", type=_port, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes (default: 1); each loads its own copy of the model",
    )
    p.add_argument(
        "--admin-token",
        default=os.environ.get("GROWTHREC_ADMIN_TOKEN") or None,
        metavar="TOKEN",
        help="turns on POST /v1/admin/reload, authorised by 'Authorization: Bearer TOKEN' "
        "(default: $GROWTHREC_ADMIN_TOKEN; without one there are no admin endpoints)",
    )
    p.add_argument(
        "--watch-interval",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how often the model file (or the store's manifest) is checked for a change "
        "(default: 0.1)",
    )
    p.add_argument(
        "--warm",
        type=Path,
        default=None,
        metavar="FILE",
        help="list settings to rank on every model loaded before it serves (at start and on "
        "every swap): a JSON array of the list options of POST /v1/recommendations without "
        'customer, e.g. [{"rerank": {"coverage": 0.5}}]; builds what they need once '
        "per model (coverage boosts, purchase vectors) so no request waits for it, and "
        "refuses a model that cannot take them",
    )
    p.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="log level (default: info)",
    )
    p.add_argument(
        "--access-log", action="store_true", help="log every request (off by default: it costs)"
    )
    p.set_defaults(run=run)


def _check_port_free(host: str, port: int) -> None:
    """One line naming --port (or --host) before uvicorn starts, rather than its log."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ParameterError(f"--host {host}: not an address of this machine") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ParameterError(
                    f"--port {port}: already in use on {host} (another server runs there; "
                    "choose another port)"
                ) from None
            raise ParameterError(f"--host {host}: cannot listen there ({exc.strerror})") from None


def _log_config(uvicorn_config: Any, level: str) -> dict[str, Any]:
    """uvicorn's logging, with growthrec's own lines (loads, swaps, refusals) beside its."""
    config = copy.deepcopy(uvicorn_config.LOGGING_CONFIG)
    config["loggers"]["growthrec"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


#: The signals that stop the service: the normal end of a server, not an error.
_STOPPING = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _run_until_stopped(serve: Any, *args: Any, **kwargs: Any) -> None:
    """Serve until SIGTERM or Ctrl-C, then return (exit 0, no error line).

    uvicorn finishes the requests in flight and raises the signal again once it has put the
    previous handlers back; while it serves, those are no-ops, so the command line's own
    (which turn a signal into an error exit) see nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        serve(*args, **kwargs)
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in _STOPPING}
    try:
        serve(*args, **kwargs)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _source(args: argparse.Namespace) -> Path:
    """The model file, or the store (checked to be one), as an absolute path."""
    if args.store is None:
        if not args.model.is_file():
            raise ModelFileError(
                f"{args.model}: no such model file (train one with 'growthrec train')"
            )
        return args.model.resolve()
    from growthrec.store.versions import read_manifest

    try:
        read_manifest(args.store)  # a store without a champion serves once one is promoted
    except GrowthrecError as exc:
        raise ModelFileError(f"--store {exc}") from None
    return args.store.resolve()


def run(args: argparse.Namespace, out: Output) -> None:
    try:
        import uvicorn
        import uvicorn.config

        from growthrec.serving import app as serving_app
        from growthrec.serving.warmup import read_warm_lists
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in _EXTRA_MODULES:
            raise ParameterError(
                f"growthrec serve needs {exc.name}, which is not installed; install the "
                f"service's extra with: {INSTALL_HINT}"
            ) from None
        raise
    source = _source(args)
    warm = read_warm_lists(args.warm) if args.warm is not None else ()
    _check_port_free(args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warn(
            f"listening on {args.host}: the recommendation endpoints have no authentication; "
            "put the service behind a reverse proxy or a firewall"
        )
    watch = args.watch_interval or serving_app.DEFAULT_WATCH_SECONDS
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": _log_config(uvicorn.config, args.log_level),
        "log_level": args.log_level,
        "access_log": args.access_log,
        # Keep-alive across a shop's page loads; the default (5 s) drops idle proxies' pools.
        "timeout_keep_alive": 30,
    }
    if args.workers == 1:
        app = serving_app.create_app(
            source,
            store=args.store is not None,
            admin_token=args.admin_token,
            watch_seconds=watch,
            warm=warm,
        )
        _run_until_stopped(uvicorn.run, app, **options)
        return
    # Each worker process builds its own app (and loads its own model) from the environment.
    os.environ[serving_app.ENV_STORE if args.store else serving_app.ENV_MODEL] = str(source)
    os.environ[serving_app.ENV_WATCH] = str(watch)
    if args.warm is not None:
        os.environ[serving_app.ENV_WARM] = str(args.warm.resolve())
    if args.admin_token:
        os.environ[serving_app.ENV_ADMIN_TOKEN] = args.admin_token
    _run_until_stopped(
        uvicorn.run,
        "growthrec.serving.app:app_from_environment",
        factory=True,
        workers=args.workers,
        **options,
    )
