"""Recommendation benchmark: NDCG@10 and training time of ALS/BPR beside popularity.

Datasets: the bundled X-Wines Slim ratings (explicit; ratings >= 4 are positives) and the UCI
Online Retail purchases (implicit; needs ``pyreadr``, a benchmark-only dependency, and the path
of ``onlineretail.rda``). Both are split by time: the latest 20% of positive interactions is
the test period; models are compared on a validation period cut the same way from the rest.

Usage::

    python benchmarks/recommendation/run.py                       # X-Wines only
    python benchmarks/recommendation/run.py --retail path/to/onlineretail.rda --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import pandas as pd

from shipyard import datasets
from shipyard.config import RecommendationConfig
from shipyard.tasks.recommendation import train_recommender

NON_PRODUCTS = {"POST", "M", "C2", "DOT", "BANK CHARGES", "PADS", "B"}


def retail_purchases(path: str) -> pd.DataFrame:
    """Known customers' purchase lines (no cancellations, no non-product codes)."""
    import pyreadr

    frame = pyreadr.read_r(path)["onlineretail"]
    frame = frame[frame["CustomerID"].notna() & (frame["Quantity"] > 0)]
    frame = frame[~frame["InvoiceNo"].astype(str).str.startswith("C")]
    frame = frame[~frame["StockCode"].astype(str).isin(NON_PRODUCTS)]
    frame = frame.assign(
        CustomerID=frame["CustomerID"].astype("int64"),
        StockCode=frame["StockCode"].astype(str),
        InvoiceDate=pd.to_datetime(frame["InvoiceDate"]),
    )
    return frame.reset_index(drop=True)


def run_one(name: str, frame: pd.DataFrame, settings: RecommendationConfig) -> dict[str, Any]:
    started = time.perf_counter()
    run = train_recommender(frame, settings, seed=42, bootstrap_samples=1000)
    total = time.perf_counter() - started
    validation = {row["name"]: row for row in run.leaderboard}
    return {
        "dataset": name,
        "rows": len(frame),
        "users": run.rows["users"],
        "items": run.rows["items"],
        "test_interactions": run.rows["test"],
        "evaluated_users": run.test.users,
        "best": run.family,
        "ndcg@10": run.test.metrics["ndcg"].as_dict(),
        "popularity_ndcg@10": run.baseline.metrics["ndcg"].as_dict(),
        "gain": run.ndcg_gain.as_dict(),
        "coverage": run.test.coverage,
        "popularity_coverage": run.baseline.coverage,
        "train_seconds": run.seconds["train"],
        "popularity_seconds": run.seconds["popularity"],
        "validation": validation,
        "pipeline_seconds": round(total, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--retail", help="path of onlineretail.rda (UCI Online Retail)")
    parser.add_argument("--json", help="write the results to this file")
    arguments = parser.parse_args()
    results = []
    xwines = datasets.load("xwines").train
    wine_settings = RecommendationConfig(
        user="UserID", item="WineID", rating="Rating", time="Date", feedback="explicit"
    )
    results.append(run_one("X-Wines Slim (ratings >= 4)", xwines, wine_settings))
    if arguments.retail:
        retail_settings = RecommendationConfig(
            user="CustomerID", item="StockCode", time="InvoiceDate", feedback="implicit"
        )
        results.append(
            run_one(
                "UCI Online Retail (purchases)",
                retail_purchases(arguments.retail),
                retail_settings,
            )
        )
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(
        "| dataset | best | NDCG@10 [95% CI] | popularity NDCG@10 | gain [95% CI] | fit s "
        "| popularity fit s | coverage (model / popularity) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in results:
        model, base, gain = row["ndcg@10"], row["popularity_ndcg@10"], row["gain"]
        print(
            f"| {row['dataset']} | {row['best']} | {model['value']:.4f} [{model['low']:.4f}, "
            f"{model['high']:.4f}] | {base['value']:.4f} [{base['low']:.4f}, {base['high']:.4f}] "
            f"| {gain['value']:+.4f} [{gain['low']:+.4f}, {gain['high']:+.4f}] | "
            f"{row['train_seconds']:.2f} | {row['popularity_seconds']:.3f} | "
            f"{row['coverage']:.3f} / {row['popularity_coverage']:.3f} |"
        )
        for family, entry in row["validation"].items():
            print(
                f"    validation {family}: NDCG@10 {entry['validation_ndcg']:.4f}, "
                f"fit {entry['seconds']:.2f} s"
            )
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
