"""Batch scoring with the compiled trees gives the server's and the training model's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import DataValidationError
from shipyard.pipeline.scoring import score_file
from shipyard.runtime.fast import SingleRecordPath, accelerate


@pytest.fixture
def compiled_predictor(fitted_adult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHIPYARD_CACHE_DIR", str(tmp_path / "cache"))
    return fitted_adult.registry.load_predictor("adult:1")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_thousand_records_identical_compiled_alone_in_batches_and_from_the_training_model(
    fitted_adult, compiled_predictor, tmp_path: Path, suffix: str
):
    frame, classes = fitted_adult.frame, fitted_adult.classes
    source = tmp_path / f"rows{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source)
    output = tmp_path / f"scored{suffix}"
    assert (
        score_file(compiled_predictor, source, output, chunk_size=300, compile_trees=True).rows
        == 1000
    )
    assert compiled_predictor.scorer.compiled is not None  # the kernel did score the file
    scored = pd.read_csv(output) if suffix == ".csv" else pd.read_parquet(output)
    columns = [f"probability_{label}" for label in classes]
    from_file = scored[columns].to_numpy()

    expected = fitted_adult.pipeline.predict_proba(frame)
    fresh = accelerate(fitted_adult.registry.load_predictor("adult:1"))  # the server's path
    single = SingleRecordPath(fresh)
    alone = np.array([single.outputs(record) for record in fitted_adult.records])
    batched = np.vstack(
        [
            fresh.score_records(fitted_adult.records[start : start + 100])
            for start in range(0, 1000, 100)
        ]
    )
    # CSV too: pandas writes floats with repr, which reads back to the same double.
    assert np.array_equal(from_file, expected)
    assert np.array_equal(from_file, alone)
    assert np.array_equal(from_file, batched)
    assert scored["prediction"].tolist() == [classes[i] for i in expected.argmax(axis=1)]


def test_compiled_and_lightgbm_files_are_identical(fitted_adult, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SHIPYARD_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "rows.parquet"
    fitted_adult.frame.to_parquet(source)
    outputs = {}
    for compile_trees in (True, False):
        predictor = fitted_adult.registry.load_predictor("adult:1")
        outputs[compile_trees] = tmp_path / f"scored-{compile_trees}.parquet"
        score_file(predictor, source, outputs[compile_trees], compile_trees=compile_trees)
        assert (predictor.scorer.compiled is not None) is compile_trees
    assert pd.read_parquet(outputs[True]).equals(pd.read_parquet(outputs[False]))


def test_small_files_keep_lightgbm_by_default(fitted_adult, compiled_predictor, tmp_path: Path):
    source = tmp_path / "rows.parquet"
    fitted_adult.frame.head(50).to_parquet(source)
    score_file(compiled_predictor, source, tmp_path / "out.parquet")
    assert compiled_predictor.scorer.compiled is None  # under COMPILE_MIN_ROWS: no kernel


def test_a_broken_chunk_still_gets_the_detailed_report(
    fitted_adult, compiled_predictor, tmp_path: Path
):
    frame = fitted_adult.frame.copy()
    # In the third chunk: two chunks are already written when it fails.
    frame.loc[650, "age"] = -3
    frame.loc[655, "workclass"] = "Astronaut"
    source = tmp_path / "rows.parquet"
    frame.to_parquet(source)
    with pytest.raises(DataValidationError) as caught:
        score_file(
            compiled_predictor,
            source,
            tmp_path / "out.parquet",
            chunk_size=300,
            compile_trees=True,
        )
    expected = fitted_adult.registry.load_predictor("adult:1").contract.validate_frame(frame)
    assert len(expected.violations) == 2
    message = str(caught.value)
    assert "age" in message
    assert "workclass" in message
    assert "650" in message  # rows are counted from the start of the file
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache", "rows.parquet"]
