"""Load test of ``growthrec serve`` at MovieLens-20M shape, with a hot swap every 10 seconds.

    python benchmarks/load_test.py                 # 2 workers: open loop 200/s for 60 s,
                                                   # closed loop 32 connections for 30 s
    python benchmarks/load_test.py --workers 1 --open-seconds 0

The model is synthetic but valid: an ``als`` model file with 138,000 customers, 27,000 items,
64 factors and 20M purchases (random directions; item norms grow with popularity, as trained
factors' do, so the pruned top-k works as on a real model). Two generations of it differ in
their item ids (``v0-…`` and ``v1-…``), so every answer says which model made it: an answer
whose items come from one generation and whose version names the other would be a mixed
answer. Every ``--swap-every`` seconds the watched file is replaced by the other generation
(an atomic rename, as ``growthrec train`` writes), and the time until every worker serves it
is measured.

Open loop: requests are sent on a fixed schedule (``--rate`` per second) whatever the
answers do, from a light asyncio client over raw keep-alive connections (Debian's wrk has no
rate option); latency is measured from each request's scheduled time, so a stall is counted
in full. Closed loop: ``wrk`` with ``benchmarks/recommend.lua`` (a random customer per
request), ``--connections`` connections. Everything runs on loopback and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from growthrec.backends.contract import resolve_params
from growthrec.backends.registry import get_backend
from growthrec.core.interactions import IdMap, Interactions
from growthrec.core.model import Model
from growthrec.serving.holder import content_version
from growthrec.store.modelfile import save_model

HERE = Path(__file__).resolve().parent
LUA = HERE / "recommend.lua"
HOST = "127.0.0.1"


# -- the model -------------------------------------------------------------------------------


def build_models(
    folder: Path, users: int, items: int, factors: int, purchases: int, seed: int = 0
) -> list[Path]:
    """Two generations of a synthetic ``als`` model (item ids ``v0-…``, ``v1-…``); reused
    when already built with the same shape."""
    tag = f"{users}x{items}x{factors}x{purchases}"
    paths = [folder / f"model-{tag}-v{g}.npz" for g in (0, 1)]
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(seed)
    # Popularity: a long tail (Zipf-like), as in MovieLens.
    weight = 1.0 / (np.arange(items) + 10.0)
    weight /= weight.sum()
    item_of = rng.choice(items, size=purchases, p=weight).astype(np.int32)
    user_of = rng.integers(0, users, size=purchases, dtype=np.int32)
    matrix = sp.csr_matrix(
        (np.ones(purchases, np.float32), (user_of, item_of)), shape=(users, items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    buyers = np.bincount(matrix.indices, minlength=items).astype(np.float32)
    directions = rng.standard_normal((items, factors), dtype=np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    norms = 0.2 + 2.0 * np.sqrt(buyers / buyers.max())
    item_factors = (directions * norms[:, None]).astype(np.float32)
    user_factors = (0.3 * rng.standard_normal((users, factors), dtype=np.float32)).astype(
        np.float32
    )
    params = resolve_params(get_backend("als"), {"factors": factors})
    arrays = {"user_factors": user_factors, "item_factors": item_factors}
    for generation, path in enumerate(paths):
        ids = np.array([f"v{generation}-{i}" for i in range(items)])
        train = Interactions(matrix, IdMap.from_ids(np.arange(1, users + 1)), IdMap.from_ids(ids))
        save_model(Model("als", params, arrays, train), path)
    return paths


def version_of(path: Path) -> str:
    return content_version(path)


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Service:
    """``growthrec serve`` with ``workers`` workers on a free loopback port."""

    def __init__(self, model: Path, workers: int, log: Path) -> None:
        self.port = free_port()
        self.workers = workers
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        argv = [sys.executable, "-m", "growthrec", "serve", "--model", str(model)]
        argv += ["--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_loaded(self, timeout: float = 300) -> None:
        """Until every worker has loaded the model (one startup line each)."""
        deadline = time.monotonic() + timeout
        while self.log().count("(startup)") < self.workers:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited:\n{self.log()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not load the model in {timeout} s")
            time.sleep(0.2)

    def memory(self) -> dict[int, int]:
        """Resident MiB of each process holding a model (the workers, or the one process)."""
        pids = [self.process.pid]
        if self.workers > 1:
            out = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            pids = [int(p) for p in out.split()]
        sizes = {}
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            rss = re.search(r"VmRSS:\s+(\d+) kB", status)
            if rss and int(rss.group(1)) > 100 * 1024:  # skip spawn's small helper processes
                sizes[pid] = int(rss.group(1)) // 1024
        return sizes

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the model-holding processes have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.memory():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / ticks

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _get_version(port: int) -> str | None:
    """The version one fresh connection is served (fresh: it may land on any worker)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        return json.loads(connection.getresponse().read()).get("model_version")
    except (OSError, ValueError):
        return None
    finally:
        connection.close()


class Swapper(threading.Thread):
    """Every ``every`` seconds, the watched file becomes the other generation; records how
    long until ``confirm`` fresh connections in a row are served the new version."""

    def __init__(
        self,
        served: Path,
        generations: list[Path],
        versions: list[str],
        port: int,
        every: float,
        confirm: int,
    ) -> None:
        super().__init__(daemon=True)
        self.served, self.generations, self.versions = served, generations, versions
        self.port, self.every, self.confirm = port, every, confirm
        self.current = 0
        self.flips: list[float] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.every):
            self.current = 1 - self.current
            staging = self.served.with_name(self.served.name + ".staging")
            os.link(self.generations[self.current], staging)
            swapped_at = time.monotonic()
            os.replace(staging, self.served)
            wanted, streak, first = self.versions[self.current], 0, None
            while streak < self.confirm and time.monotonic() - swapped_at < 30:
                if _get_version(self.port) == wanted:
                    first = first if streak else time.monotonic()
                    streak += 1
                else:
                    streak = 0
                    time.sleep(0.02)
            self.flips.append((first or time.monotonic()) - swapped_at)


# -- the open loop ---------------------------------------------------------------------------


class Checker:
    """Counts answers by (version, item generation); an answer is mixed when its header and
    body disagree, its items span generations, or its generation is not its version's."""

    def __init__(self, versions: list[str]) -> None:
        self.generation_of = {v: str(g) for g, v in enumerate(versions)}
        self.seen: dict[str, int] = {}
        self.mixed = 0

    def check(self, header: str, body: bytes) -> None:
        text = body.decode()
        inside = re.search(r'"model_version":"(\w+)"', text)
        generations = set(re.findall(r'"item":"v(\d+)-', text))
        version = inside.group(1) if inside else "none"
        if (
            header != version
            or len(generations) != 1
            or generations != {self.generation_of.get(version)}
        ):
            self.mixed += 1
        self.seen[version] = self.seen.get(version, 0) + 1


async def _open_loop(
    port: int, rate: float, seconds: float, customers: int, checker: Checker, connections: int
) -> dict:
    loop = asyncio.get_running_loop()
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(HOST, port))
    total = int(rate * seconds)
    latencies = np.zeros(total)
    errors: list[str] = []
    extra_connections = 0
    rng = np.random.default_rng(1)
    chosen = rng.integers(1, customers + 1, size=total)

    async def one(i: int, due: float) -> None:
        nonlocal extra_connections
        if pool.empty():  # all busy: open one more rather than wait (the schedule is fixed)
            extra_connections += 1
            pool.put_nowait(await asyncio.open_connection(HOST, port))
        reader, writer = await pool.get()
        body = b'{"customer": %d, "n": 10}' % chosen[i]
        writer.write(
            b"POST /v1/recommendations HTTP/1.1\r\nHost: loadtest\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
            payload = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, AttributeError) as exc:
            errors.append(repr(exc))
            writer.close()
            pool.put_nowait(await asyncio.open_connection(HOST, port))
            return
        latencies[i] = loop.time() - due
        pool.put_nowait((reader, writer))
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            errors.append(f"status {status}")
            return
        version = re.search(rb"(?i)x-model-version: (\w+)", head)
        checker.check(version.group(1).decode() if version else "none", payload)

    start = loop.time() + 0.2
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    ms = latencies[latencies > 0] * 1000
    return {
        "requests": total,
        "seconds": round(elapsed, 2),
        "achieved_rate": round(total / elapsed, 1),
        "errors": len(errors),
        "error_examples": errors[:3],
        "extra_connections": extra_connections,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


# -- the closed loop -------------------------------------------------------------------------


def closed_loop(
    port: int, seconds: int, connections: int, threads: int, customers: int, checker: Checker
) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://{HOST}:{port}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CUSTOMERS": str(customers)},
        timeout=seconds + 60,
        check=True,
    ).stdout
    values = dict(re.findall(r"^(\w[\w.]*) (\d+)$", out, re.M))
    for version, generation, count in re.findall(r"^version (\w+) (\w+) (\d+)$", out, re.M):
        expected = checker.generation_of.get(version)
        if expected != generation:
            checker.mixed += int(count)
        checker.seen[version] = checker.seen.get(version, 0) + int(count)
    checker.mixed += int(values["mixed"])
    requests = int(values["requests"])
    errors = sum(int(values[k]) for k in values if k.startswith("errors_")) + int(values["non200"])
    return {
        "requests": requests,
        "seconds": round(int(values["duration_us"]) / 1e6, 2),
        "throughput": round(requests / (int(values["duration_us"]) / 1e6), 1),
        "errors": errors,
        "p50_ms": int(values["latency_p50_us"]) / 1000,
        "p90_ms": int(values["latency_p90_us"]) / 1000,
        "p99_ms": int(values["latency_p99_us"]) / 1000,
    }


# -- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=138_000)
    parser.add_argument("--items", type=int, default=27_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--purchases", type=int, default=20_000_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--open-seconds", type=float, default=60.0)
    parser.add_argument("--open-connections", type=int, default=16)
    parser.add_argument("--closed-seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--swap-every", type=float, default=10.0)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/growthrec-load-test"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    args.folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generations = build_models(args.folder, args.users, args.items, args.factors, args.purchases)
    versions = [version_of(p) for p in generations]
    print(
        f"models: {[p.name for p in generations]} versions {versions} "
        f"({time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )
    served = args.folder / "served.npz"
    if served.exists():
        served.unlink()
    os.link(generations[0], served)

    service = Service(served, args.workers, args.folder / f"server-{args.workers}.log")
    result: dict = {
        "workers": args.workers,
        "versions": versions,
        "machine": _machine(),
        "load_average_before": os.getloadavg(),
    }
    try:
        service.wait_loaded()
        result["resident_mib"] = list(service.memory().values())
        for phase in ("open", "closed"):
            seconds = args.open_seconds if phase == "open" else args.closed_seconds
            if seconds <= 0:
                continue
            swapper = Swapper(
                served,
                generations,
                versions,
                service.port,
                args.swap_every,
                confirm=4 * args.workers,
            )
            swapper.current = 0 if _get_version(service.port) == versions[0] else 1
            checker = Checker(versions)
            loads_before = len(_load_seconds(service.log()))
            swapper.start()
            cpu_before = service.cpu_seconds()
            try:
                if phase == "open":
                    figures = asyncio.run(
                        _open_loop(
                            service.port,
                            args.rate,
                            seconds,
                            args.users,
                            checker,
                            args.open_connections,
                        )
                    )
                else:
                    figures = closed_loop(
                        service.port,
                        int(seconds),
                        args.connections,
                        args.wrk_threads,
                        args.users,
                        checker,
                    )
            finally:
                swapper.stop_event.set()
                swapper.join(timeout=60)
            served_requests = figures["requests"]
            figures.update(
                server_cpu_ms_per_request=round(
                    1000 * (service.cpu_seconds() - cpu_before) / max(served_requests, 1), 3
                ),
                swaps=len(swapper.flips),
                flip_seconds_max=round(max(swapper.flips), 2) if swapper.flips else None,
                flip_seconds=[round(f, 2) for f in swapper.flips],
                mixed_answers=checker.mixed,
                answers_by_version=checker.seen,
                # each worker's load and check of each new model (the log's "loaded in")
                load_seconds=_load_seconds(service.log())[loads_before:],
            )
            result[phase] = figures
            print(f"{phase}: {figures}", file=sys.stderr)
        failures = service.log().count("model file rejected")
        result["rejected_swaps"] = failures
    finally:
        service.stop()
    result["load_average"] = os.getloadavg()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    ok = all(
        result[p]["errors"] == 0 and result[p]["mixed_answers"] == 0
        for p in ("open", "closed")
        if p in result
    )
    return 0 if ok else 1


def _load_seconds(log: str) -> list[float]:
    return [float(s) for s in re.findall(r"loaded in ([\d.]+) s", log)]


def _machine() -> str:
    """CPU model and count, and memory, for the figures' caption."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*: (.*)", info)
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    gib = int(memory.group(1)) / 2**20 if memory else 0
    return f"{os.cpu_count()} x {model.group(1) if model else 'unknown CPU'}, {gib:.0f} GiB"


def _print_table(result: dict) -> None:
    print(f"workers: {result['workers']}, resident MiB per worker: {result['resident_mib']}")
    if "open" in result:
        o = result["open"]
        print(
            f"open loop {o['achieved_rate']}/s for {o['seconds']} s: p50 {o['p50_ms']} ms, "
            f"p90 {o['p90_ms']} ms, p99 {o['p99_ms']} ms, max {o['max_ms']} ms, "
            f"errors {o['errors']}, swaps {o['swaps']} (flip <= {o['flip_seconds_max']} s), "
            f"mixed {o['mixed_answers']}, server CPU {o['server_cpu_ms_per_request']} ms/request"
        )
    if "closed" in result:
        c = result["closed"]
        print(
            f"closed loop {c['throughput']}/s for {c['seconds']} s: p50 {c['p50_ms']} ms, "
            f"p90 {c['p90_ms']} ms, p99 {c['p99_ms']} ms, errors {c['errors']}, swaps "
            f"{c['swaps']} (flip <= {c['flip_seconds_max']} s), mixed {c['mixed_answers']}, "
            f"server CPU {c['server_cpu_ms_per_request']} ms/request"
        )
    print(
        f"rejected swaps: {result['rejected_swaps']}, load average before "
        f"{result['load_average_before']}, after {result['load_average']}; {result['machine']}"
    )


if __name__ == "__main__":
    sys.exit(main())
