"""What the one reader's checks cost: sniffing plus the whole-file UTF-8 check, against parsing.

Usage::

    python benchmarks/data/reader.py [--rows 1000000] [--repeat 3] [--folder FOLDER]

The file is the bundled Adult training set repeated to ``--rows`` rows (a plain UTF-8 CSV,
written once and reused). For each repeat it times, in this process:

- ``sniff_text``: encoding (the whole file read and decoded as UTF-8), delimiter and header;
- ``pandas.read_csv`` with the options the reader passes it (what parsing costs on its own);
- ``read_table``: the reader end to end (sniffing, parsing, the duplicate and empty checks).

It prints the medians and the share of ``read_table`` spent on the checks, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from shipyard import datasets
from shipyard.data.sniff import sniff_text
from shipyard.data.sources import _csv_options, read_table


def generate(path: Path, rows: int) -> None:
    """Write the Adult training rows over and over until ``rows`` rows are written."""
    train = datasets.load("adult").train
    copies = -(-rows // len(train))
    pd.concat([train] * copies, ignore_index=True).head(rows).to_csv(path, index=False)


def _timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    arguments = parser.parse_args()
    path = arguments.folder / f"adult-{arguments.rows}.csv"
    if not path.is_file():
        generate(path, arguments.rows)
    found = sniff_text(path)
    times: dict[str, list[float]] = {"sniff": [], "pandas": [], "read_table": []}
    for _ in range(arguments.repeat):
        times["sniff"].append(_timed(lambda: sniff_text(path)))
        times["pandas"].append(_timed(lambda: pd.read_csv(path, **_csv_options(found))))
        times["read_table"].append(_timed(lambda: read_table(path)))
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    print(
        json.dumps(
            {
                "rows": arguments.rows,
                "megabytes": round(path.stat().st_size / 1e6, 1),
                "seconds": medians,
                "check_share_of_read_table": round(medians["sniff"] / medians["read_table"], 3),
                "load_average": os.getloadavg(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
