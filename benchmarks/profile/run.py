"""Profile a 5-million-row, 20-column file with shipyard, pandas and ydata-profiling.

Usage::

    python benchmarks/profile/run.py [--rows 5000000] [--format csv|parquet] [--folder FOLDER]
        [--peers pandas ydata-minimal ydata-full] [--peer-python YDATA_PYTHON] [--timeout 1800]

The file is generated once (seeded) and reused. Each contender runs in its own process so its
peak resident memory (ru_maxrss) is its own; the clock starts before the file is read. Wall
time and CPU time (all threads) are both reported: on a shared machine the wall time follows
the load, the CPU time much less.

- shipyard: ``profile_table(path, target="label")`` (DuckDB, memory limit 3 GB), which also
  computes histograms, top values, outliers, duplicates and target associations;
- pandas: ``pd.read_csv(path)`` (or ``read_parquet``) then ``describe(include="all")``;
- ydata-profiling: ``peer.py`` run by ``--peer-python`` (ydata-profiling pins its own pandas and
  numpy, so it lives in a virtual environment of its own): ``ProfileReport(frame,
  minimal=True)`` (``ydata-minimal``) or the default full report (``ydata-full``), statistics
  only (``get_description()``), no HTML. A peer that runs past ``--timeout`` is reported as such.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

CHUNK = 500_000


def generate(path: Path, rows: int) -> None:
    """Write a deterministic CSV: 12 numeric, 5 categorical, 1 yes/no, 1 identifier, 1 target.

    Values come from hashes of the row number, so the file is the same on every machine.
    """
    import duckdb

    def unit(salt: int) -> str:
        return f"(hash(i, {salt}) % 1000000)::DOUBLE / 1000000"

    columns = ["i AS id"]
    for index in range(12):
        value = f"round({index} + (1 + {index}) * ({unit(index)} - 0.5) * 3.4, 4)"
        if index % 3 == 0:
            value = f"CASE WHEN {unit(100 + index)} < 0.05 THEN NULL ELSE {value} END"
        columns.append(f"{value} AS x{index}")
    for index in range(5):
        columns.append(
            f"'city_' || lpad((hash(i, {200 + index}) % {5 * (index + 1) ** 2})::VARCHAR, 3, '0')"
            f" AS c{index}"
        )
    columns.append(f"CASE WHEN {unit(300)} < 0.5 THEN 'yes' ELSE 'no' END AS member")
    columns.append(f"({unit(301)} < 0.3)::INTEGER AS label")
    duckdb.connect().execute(
        f"COPY (SELECT {', '.join(columns)} FROM range({rows}) AS t(i) ORDER BY i) "
        + (
            f"TO '{path}' (FORMAT parquet)"
            if path.suffix == ".parquet"
            else f"TO '{path}' (HEADER, DELIMITER ',')"
        )
    )


def contender(name: str, path: str) -> None:
    # Imports happen before the clock starts, for both contenders.
    import duckdb  # noqa: F401

    from shipyard.data.profile import profile_table

    started, processor = time.perf_counter(), cpu_seconds()
    if name == "shipyard":
        profile = profile_table(path, target="label")
        detail = f"{len(profile.columns)} columns, {profile.duplicate_rows} duplicate rows"
    else:
        frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
        summary = frame.describe(include="all")
        detail = f"describe: {summary.shape}"
    seconds, processor = time.perf_counter() - started, cpu_seconds() - processor
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"name": name, "seconds": seconds, "cpu_seconds": processor, "peak_bytes": peak}
    print(json.dumps({**result, "detail": detail}))


def cpu_seconds() -> float:
    """CPU time of this process, every thread: the load of a shared machine changes it less."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, path: Path, arguments: argparse.Namespace) -> dict[str, Any]:
    """Run one contender in its own process; return its JSON line, or why it has none."""
    if name.startswith("ydata-"):
        command = [
            arguments.peer_python,
            str(Path(__file__).parent / "peer.py"),
            str(path),
            name.removeprefix("ydata-"),
        ]
    else:
        command = [sys.executable, __file__, "--rows", str(arguments.rows)]
        command += ["--format", arguments.format, "--folder", str(arguments.folder)]
        command += ["--contender", name]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=arguments.timeout
        )
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"did not finish in {arguments.timeout:.0f} s"}
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        return {"name": name, "error": last}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "shipyard-profile-benchmark"
    )
    parser.add_argument("--contender")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument(
        "--peers", nargs="*", default=["pandas"], choices=["pandas", "ydata-minimal", "ydata-full"]
    )
    parser.add_argument("--peer-python", default=sys.executable)
    parser.add_argument("--timeout", type=float, default=1800.0)
    arguments = parser.parse_args()
    path = arguments.folder / f"profile-{arguments.rows}.{arguments.format}"
    if arguments.contender:
        contender(arguments.contender, str(path))
        return
    arguments.folder.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        started = time.perf_counter()
        generate(path, arguments.rows)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(f"file: {path} ({path.stat().st_size / 2**20:.0f} MiB, {arguments.rows:,} rows x 20)")
    print("load:", uptime(), flush=True)
    ours = measure("shipyard", path, arguments)
    for name in ["shipyard", *arguments.peers]:
        item = ours if name == "shipyard" else measure(name, path, arguments)
        if "error" in item:
            print(f"{name:13s} {item['error']}", flush=True)
            continue
        line = (
            f"{name:13s} {item['seconds']:7.1f} s  CPU {item['cpu_seconds']:6.1f} s  "
            f"peak {item['peak_bytes'] / 2**30:5.2f} GiB  ({item['detail']})"
        )
        if name != "shipyard" and "error" not in ours:
            ratio = item["seconds"] / ours["seconds"]
            speed = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
            memory = item["peak_bytes"] / ours["peak_bytes"]
            processor = item["cpu_seconds"] / ours["cpu_seconds"]
            line += f"; shipyard {speed}, {processor:.1f}x less CPU, {memory:.1f}x less memory"
        print(line, flush=True)
        print("load:", uptime(), flush=True)


if __name__ == "__main__":
    main()
