"""Profile, clean and check for leakage the messy public sets (California housing, Adult, bikes).

Usage::

    python benchmarks/profile/real_sets.py DATASETS_FOLDER

``DATASETS_FOLDER`` holds ``california_housing/housing.csv``, ``adult/adult.data`` and
``bike_sharing/hour.csv`` as published (see docs/data.md); nothing here is shipped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from shipyard.data.clean import clean_training_frame
from shipyard.data.contract import infer_contract
from shipyard.data.leakage import check_leakage
from shipyard.data.profile import profile_table

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
    "native-country", "income",
]  # fmt: skip


def run(name: str, source: Path, target: str, task: str, **read: object) -> None:
    started = time.perf_counter()
    raw = pd.read_csv(source, **read)  # type: ignore[call-overload]
    profile = profile_table(raw, target=target)
    print(f"\n== {name}: {profile.n_rows:,} rows x {profile.n_columns} ({source.name})")
    print("profile missing:", {c.name: c.missing for c in profile.columns if c.missing})
    print("profile warnings:", profile.warnings)
    cleaned = clean_training_frame(raw, target)
    print("cleaning actions:")
    for action in cleaned.actions:
        print("  -", action)
    contract = infer_contract(cleaned.frame, target)
    report = contract.validate_frame(cleaned.frame, with_target=True)
    print(f"contract: {len(contract.columns)} features; training data valid: {report.ok}")
    features = list(contract.feature_names)
    findings = check_leakage(cleaned.frame, target, features, task=task)
    print("leakage:", [f"{f.level}: {f.message}" for f in findings] or "none")
    print(f"({time.perf_counter() - started:.1f} s)")


def main() -> None:
    folder = Path(sys.argv[1])
    run(
        "California housing",
        folder / "california_housing/housing.csv",
        "median_house_value",
        "regression",
    )
    run(
        "Adult (raw UCI file, '?' as missing)",
        folder / "adult/adult.data",
        "income",
        "binary",
        header=None,
        names=ADULT_COLUMNS,
    )
    run("Bike sharing (hourly)", folder / "bike_sharing/hour.csv", "cnt", "regression")


if __name__ == "__main__":
    main()
