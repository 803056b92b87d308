"""Profile a 5-million-row, 20-column CSV with shipyard and with pandas; compare time and memory.

Usage::

    python benchmarks/profile/run.py [--rows 5000000] [--format csv|parquet] [--folder FOLDER]

The file is generated once (seeded) and reused. Each contender runs in its own process so its
peak resident memory (ru_maxrss) is its own:

- shipyard: ``profile_table(path, target="label")`` (DuckDB, memory limit 3 GB), which also
  computes histograms, top values, outliers, duplicates and target associations;
- pandas: ``pd.read_csv(path)`` then ``describe(include="all")`` (ydata-profiling is not
  installable here; pandas ``describe`` is the fallback peer the issue names).
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

    started = time.perf_counter()
    if name == "shipyard":
        profile = profile_table(path, target="label")
        detail = f"{len(profile.columns)} columns, {profile.duplicate_rows} duplicate rows"
    else:
        frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
        summary = frame.describe(include="all")
        detail = f"describe: {summary.shape}"
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"name": name, "seconds": seconds, "peak_bytes": peak, "detail": detail}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "shipyard-profile-benchmark"
    )
    parser.add_argument("--contender")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
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
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    results = {}
    for name in ("shipyard", "pandas"):
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--rows",
                str(arguments.rows),
                "--folder",
                str(arguments.folder),
                "--format",
                arguments.format,
                "--contender",
                name,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        item = results[name]
        print(
            f"{name:9s} {item['seconds']:7.1f} s  peak {item['peak_bytes'] / 2**30:5.2f} GiB"
            f"  ({item['detail']})"
        )
    ratio = results["pandas"]["seconds"] / results["shipyard"]["seconds"]
    memory = results["pandas"]["peak_bytes"] / results["shipyard"]["peak_bytes"]
    speed = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
    print(f"shipyard is {speed} and uses {memory:.1f}x less peak memory")
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
