"""Peer: FastAPI + the scikit-learn pipeline, one pandas DataFrame per request.

Run in the benchmark venv: WORKDIR=... python peers/fastapi_app.py PORT
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import uvicorn
from fastapi import FastAPI

WORKDIR = Path(os.environ["WORKDIR"])
pipeline = joblib.load(WORKDIR / "pipeline.joblib")
CLASSES = ["<=50K", ">50K"]
app = FastAPI()


@app.post("/predict")
def predict(record: dict[str, Any]) -> dict[str, Any]:
    frame = pd.DataFrame([record])
    probabilities = pipeline.predict_proba(frame)[0]
    best = int(probabilities.argmax())
    return {
        "prediction": CLASSES[best],
        "probabilities": dict(zip(CLASSES, probabilities.tolist(), strict=True)),
    }


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False
    )
