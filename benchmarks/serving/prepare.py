"""Build the benchmark's Adult model once, for shipyard and for every peer.

One scikit-learn pipeline (ordinal-encoded categoricals + LightGBM, 200 trees) is fitted on the
bundled Adult training file. shipyard serves its export (registered in WORKDIR/home); the peers
serve the pipeline itself (WORKDIR/pipeline.joblib, and an MLflow model in WORKDIR/mlflow-model
when mlflow is importable). Also written: one JSON record (WORKDIR/record.json) and, with
--rows, a Parquet file of that many Adult-like rows for batch scoring (WORKDIR/rows.parquet).

Run with the project's interpreter:  python benchmarks/serving/prepare.py WORKDIR [--rows N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
import numpy as np

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.monitoring.reference import build_reference, reference_to_json
from shipyard.registry.store import Registry
from shipyard.serving.keys import KeyStore, default_keys_file
from shipyard.tasks.tabular import LightGBMCandidate, feature_set
from shipyard.training.export import export_pipeline, frame_to_records

TREES = 200


def build(workdir: Path, rows: int) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    adult = datasets.load("adult")
    train = adult.train
    contract = infer_contract(train, adult.target, drop=["fnlwgt"])
    columns = contract.feature_names
    candidate = LightGBMCandidate(feature_set(contract), "binary", seed=0)
    candidate.best_trees_ = TREES  # a fixed forest, as if early stopping had chosen it
    pipeline = candidate.cv_pipeline()
    labels = (train[adult.target] == ">50K").astype(int).to_numpy()
    pipeline.fit(train[columns], labels, **candidate.fit_params())
    joblib.dump(pipeline, workdir / "pipeline.joblib")

    exported = export_pipeline(pipeline, "binary")
    home = workdir / "home"
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    manifest = {
        "task": "binary",
        "target": adult.target,
        "metric": "roc_auc",
        "classes": ["<=50K", ">50K"],
        "model": {
            "format": exported.model_format,
            "path": exported.model_filename,
            "family": "lightgbm",
        },
        "contract": "contract.yaml",
        "preprocessing": "preprocessing.json",
        # Served predictions are sketched at log time against it, as a trained model's are.
        "drift_reference": "drift_reference.json",
    }
    reference = build_reference(
        train[columns], contract, pipeline.predict_proba(train[columns]), "binary"
    )
    files = {
        "contract.yaml": contract.to_yaml().encode(),
        "preprocessing.json": json.dumps(exported.preprocessing, allow_nan=False).encode(),
        exported.model_filename: exported.model_payload.encode(),
        "drift_reference.json": json.dumps(reference_to_json(reference), allow_nan=False).encode(),
    }
    version = registry.register("adult", files, manifest)
    registry.promote("adult", version.version, "champion", reason="benchmark")
    _, key = KeyStore(default_keys_file(home)).create("benchmark")
    (workdir / "api-key.txt").write_text(key)

    test = adult.test[columns]
    record = frame_to_records(test.head(1))[0]
    (workdir / "record.json").write_text(json.dumps(record))
    (workdir / "columns.json").write_text(json.dumps(columns))
    test.head(1000).to_parquet(workdir / "test-1000.parquet")
    if rows:
        generator = np.random.default_rng(0)
        picks = generator.integers(0, len(test), size=rows)
        big = test.iloc[picks].reset_index(drop=True)
        big.to_parquet(workdir / "rows.parquet", row_group_size=100_000)
    try:
        import mlflow.sklearn

        target = workdir / "mlflow-model"
        if not target.exists():
            mlflow.sklearn.save_model(
                pipeline, target, serialization_format="cloudpickle", input_example=test.head(2)
            )
    except ImportError:
        pass
    print(f"prepared {workdir}: shipyard adult:{version.version}, {TREES} trees")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--rows", type=int, default=0, help="rows of the batch scoring file")
    arguments = parser.parse_args()
    build(arguments.workdir, arguments.rows)


if __name__ == "__main__":
    main()
