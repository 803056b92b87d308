"""Peer: BentoML serving the scikit-learn pipeline, plain or with adaptive batching.

Run in the benchmark venv:
  WORKDIR=... BENTO_BATCHING=0|1 bentoml serve peers/bento_service.py:AdultService --port PORT
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bentoml
import joblib
import pandas as pd

WORKDIR = Path(os.environ["WORKDIR"])
BATCHING = os.environ.get("BENTO_BATCHING", "0") == "1"
CLASSES = ["<=50K", ">50K"]


def _answers(frame: pd.DataFrame, pipeline: Any) -> list[dict[str, Any]]:
    probabilities = pipeline.predict_proba(frame)
    return [
        {
            "prediction": CLASSES[int(row.argmax())],
            "probabilities": dict(zip(CLASSES, row.tolist(), strict=True)),
        }
        for row in probabilities
    ]


if BATCHING:

    @bentoml.service(workers=1)
    class AdultService:
        def __init__(self) -> None:
            self.pipeline = joblib.load(WORKDIR / "pipeline.joblib")

        @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
        def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return _answers(pd.DataFrame(records), self.pipeline)

else:

    @bentoml.service(workers=1)
    class AdultService:  # type: ignore[no-redef]
        def __init__(self) -> None:
            self.pipeline = joblib.load(WORKDIR / "pipeline.joblib")

        @bentoml.api
        def predict(self, record: dict[str, Any]) -> dict[str, Any]:
            return _answers(pd.DataFrame([record]), self.pipeline)[0]
