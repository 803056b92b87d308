"""Scoring cost of the exported unsupervised models against the scikit-learn objects they mirror.

On UCI Adult's six numeric columns (bundled), each family is fitted once (IsolationForest with
100 trees, LOF with 20 neighbours over 2,000 reference rows, k-means with k=5, HDBSCAN's
exemplar assignment is shipyard's own and has no peer) and then asked two ways:

- one record at a time, as a server answers: shipyard's predictor (validation, standardising,
  the exported model) against scikit-learn's ``score_samples`` / ``predict`` + ``transform``
  on a one-row array (already standardised: the peer is given less work);
- a batch of 10,000 rows through ``score_frame`` against scikit-learn on the same rows.

The two sides alternate within each round; medians of ``--rounds`` rounds are reported, with
the largest score gap between them on the batch.
Run: python benchmarks/unsupervised/scoring.py [--records 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from shipyard import datasets
from shipyard.data.unlabelled import numeric_contract, numeric_values
from shipyard.runtime.numeric import fit_numeric_view
from shipyard.tasks.anomaly.export import AnomalyPredictor
from shipyard.tasks.anomaly.export import export_document as anomaly_document
from shipyard.tasks.clustering.export import ClusterPredictor
from shipyard.tasks.clustering.export import export_document as cluster_document
from shipyard.training.export import frame_to_records

COLUMNS = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def _median_seconds(call: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    adult = datasets.load("adult")
    train, test = adult.train, adult.test.head(10_000)
    contract, _ = numeric_contract(train, None, drop=["income"])
    view = fit_numeric_view(numeric_values(train, COLUMNS), COLUMNS)
    rows = view.transform(numeric_values(train, COLUMNS))
    test_rows = view.transform(numeric_values(test, COLUMNS))
    records = frame_to_records(test[COLUMNS].head(args.records))
    one_rows = [test_rows[i : i + 1] for i in range(len(records))]
    reference = rows[np.random.default_rng(0).permutation(len(rows))[:2000]]

    forest = IsolationForest(n_estimators=100, random_state=0).fit(rows)
    lof = LocalOutlierFactor(n_neighbors=20, novelty=True).fit(reference)
    kmeans = KMeans(n_clusters=5, n_init=2, random_state=0).fit(rows)
    cases: dict[str, tuple[Any, Callable[[Any], Any]]] = {
        "isolation_forest": (
            AnomalyPredictor(contract, view, anomaly_document("isolation_forest", forest, 6)),
            lambda x: -forest.score_samples(x),
        ),
        "lof": (
            AnomalyPredictor(contract, view, anomaly_document("lof", lof, 6)),
            lambda x: -lof.score_samples(x),
        ),
        "kmeans": (
            ClusterPredictor(contract, view, cluster_document("kmeans", kmeans, rows, 0, 0)),
            lambda x: kmeans.transform(x)[np.arange(len(x)), kmeans.predict(x)],
        ),
    }
    results = []
    for name, (predictor, peer) in cases.items():
        ours = _median_seconds(
            lambda predictor=predictor: [predictor.score_records([r]) for r in records],
            args.rounds,
        )
        theirs = _median_seconds(lambda peer=peer: [peer(row) for row in one_rows], args.rounds)
        ours_batch = _median_seconds(lambda predictor=predictor: predictor.score_frame(test), 1)
        theirs_batch = _median_seconds(lambda peer=peer: peer(test_rows), 1)
        gap = float(
            np.max(
                np.abs(
                    predictor.score_frame(test)[:, -1 if name == "kmeans" else 0] - peer(test_rows)
                )
            )
        )
        results.append(
            {
                "model": name,
                "shipyard_ms_per_record": round(1000 * ours / len(records), 3),
                "sklearn_ms_per_record": round(1000 * theirs / len(records), 3),
                "record_speedup": round(theirs / ours, 1),
                "shipyard_batch_s": round(ours_batch, 3),
                "sklearn_batch_s": round(theirs_batch, 3),
                "batch_rows": len(test),
                "max_gap": gap,
            }
        )
        print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
