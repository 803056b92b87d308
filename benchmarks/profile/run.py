"""Profile a 5-million-row, 20-column CSV with shipyard and with pandas; compare time and memory.

Usage::

    python benchmarks/profile/run.py [--rows 5000000] [--folder /tmp/shipyard-bench]

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
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHUNK = 500_000


def generate(path: Path, rows: int) -> None:
    """Write a seeded CSV: 12 numeric, 5 categorical, 1 yes/no, 1 identifier, 1 target."""
    generator = np.random.default_rng(0)
    cities = np.array([f"city_{i:03d}" for i in range(300)])
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        columns: dict[str, object] = {"id": np.arange(start, start + n)}
        for index in range(12):
            values = generator.normal(index, 1 + index, n).round(4)
            if index % 3 == 0:
                values[generator.random(n) < 0.05] = np.nan
            columns[f"x{index}"] = values
        for index in range(5):
            columns[f"c{index}"] = generator.choice(cities[: 5 * (index + 1) ** 2], n)
        columns["member"] = generator.choice(["yes", "no"], n)
        columns["label"] = (generator.random(n) < 0.3).astype(int)
        pd.DataFrame(columns).to_csv(
            path, mode="a" if start else "w", header=not start, index=False
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
        frame = pd.read_csv(path)
        summary = frame.describe(include="all")
        detail = f"describe: {summary.shape}"
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"name": name, "seconds": seconds, "peak_bytes": peak, "detail": detail}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/shipyard-bench"))
    parser.add_argument("--contender")
    arguments = parser.parse_args()
    path = arguments.folder / f"profile-{arguments.rows}.csv"
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
    print(f"shipyard is {ratio:.1f}x faster and uses {memory:.1f}x less peak memory")
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
