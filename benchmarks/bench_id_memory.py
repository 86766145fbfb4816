"""What keeping ids exactly as written costs: peak memory of loading a CSV whose ids are
canonical integers (stored as int64) against the same CSV with zero-padded ids (stored as text).

MovieLens-20M's shape by default: 20,000,263 rows, 138,493 customers, 26,744 items, with a
Unix-seconds timestamp column. Each file is loaded by ``growthrec.data.loading.load_events`` in a
fresh process, which reports its peak RSS (``VmHWM``), its load time and its id maps' bytes.

    python -m benchmarks.bench_id_memory                 # MovieLens-20M shape (~2 minutes)
    python -m benchmarks.bench_id_memory --rows 1000000  # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

REPO = Path(__file__).resolve().parents[1]
ML20M = (20_000_263, 138_493, 26_744)

#: Run in a fresh process: load the file, print what it cost as JSON.
_CHILD = """
import json, sys, time
from growthrec.data.loading import load_events
start = time.perf_counter()
events, report = load_events(sys.argv[1])
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({
    "kinds": [events.users.kind, events.items.kind],
    "id_map_bytes": int(events.users.ids.nbytes + events.items.ids.nbytes),
    "rows": report.rows_kept,
    "load_seconds": round(seconds, 2),
    "peak_rss_mib": round(peak / 1024, 1),
}))
"""


def write_files(folder: Path, rows: int, users: int, items: int, seed: int = 0) -> dict[str, Path]:
    """The same events twice: ids as canonical integers, and zero-padded (``0000042``)."""
    rng = np.random.default_rng(seed)
    user = pa.array(rng.integers(1, users + 1, rows))
    item = pa.array(rng.integers(1, items + 1, rows))
    stamp = pa.array(rng.integers(789_652_009, 1_427_784_002, rows))
    files = {}
    for name, width in (("canonical", 0), ("zero-padded", 7)):
        if width:
            columns = [pc.utf8_lpad(pc.cast(c, pa.string()), width, "0") for c in (user, item)]
        else:
            columns = [user, item]
        table = pa.table({"user_id": columns[0], "item_id": columns[1], "timestamp": stamp})
        path = folder / f"{name}.csv"
        pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))
        files[name] = path
    return files


def measure(path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ML20M[0])
    parser.add_argument("--users", type=int, default=ML20M[1])
    parser.add_argument("--items", type=int, default=ML20M[2])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        files = write_files(Path(folder), args.rows, args.users, args.items)
        written = time.perf_counter() - start
        results = {
            name: {"file_mib": round(path.stat().st_size / 2**20, 1), **measure(path)}
            for name, path in files.items()
        }
    summary = {"shape": vars(args), "write_seconds": round(written, 1), **results}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
