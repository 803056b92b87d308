"""The compiled tree kernel gives LightGBM's answers to the last bit, and falls back cleanly.

Models are fitted the way shipyard fits them (native categoricals, missing values as NaN) on
the bundled data: Adult for binary and multiclass, Bike Sharing for regression.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.runtime import compiled
from shipyard.runtime.compiled import CompilationError, compile_model, load_compiled
from shipyard.runtime.models import LightGBMScorer
from shipyard.runtime.predictor import encode_frame
from shipyard.runtime.preprocess import CompiledPreprocessor
from shipyard.tasks.tabular import LightGBMCandidate, feature_set
from shipyard.training.export import export_pipeline

TREES = 40


@dataclass(frozen=True)
class Fitted:
    model_text: str
    features: Any  # encoded rows of the held-out data, with missing values and odd values
    task: str


def _fit(frame: Any, target: str, task: str, drop: list[str], labels: Any) -> Fitted:
    contract = infer_contract(frame, target, drop=drop)
    columns = contract.feature_names
    candidate = LightGBMCandidate(feature_set(contract), task, seed=0)
    candidate.best_trees_ = TREES
    pipeline = candidate.cv_pipeline()
    train, held_out = frame.iloc[:6000], frame.iloc[6000:8000]
    pipeline.fit(train[columns], labels[:6000], **candidate.fit_params())
    exported = export_pipeline(pipeline, task)
    features = encode_frame(CompiledPreprocessor(exported.preprocessing), held_out[columns])
    return Fitted(exported.model_payload, _with_odd_values(features), task)


def _with_odd_values(features: Any) -> Any:
    """Append rows whose cells are the values LightGBM treats specially."""
    odd = np.array(
        [np.nan, 0.0, -0.0, 1e-40, -1e-40, 1e-35, -0.5, 0.5, -1.0, 3.0, 64.0, 1e10, -1e10, 2.0**31]
    )
    odd = np.concatenate([odd, [np.inf, -np.inf]])
    generator = np.random.default_rng(0)
    extra = generator.choice(odd, size=(2000, features.shape[1]))
    keep = generator.random(extra.shape) < 0.5
    extra[keep] = features[:2000][keep]
    return np.vstack([features, extra])


@pytest.fixture(scope="module")
def binary() -> Fitted:
    adult = datasets.load("adult").train
    labels = (adult["income"] == ">50K").astype(int).to_numpy()
    return _fit(adult, "income", "binary", ["fnlwgt"], labels)


@pytest.fixture(scope="module")
def multiclass() -> Fitted:
    adult = datasets.load("adult").train
    classes = sorted(adult["race"].unique())
    labels = adult["race"].map({name: index for index, name in enumerate(classes)}).to_numpy()
    return _fit(adult, "race", "multiclass", ["fnlwgt"], labels)


@pytest.fixture(scope="module")
def regression() -> Fitted:
    bike = datasets.load("bike_sharing").train
    labels = bike["cnt"].to_numpy(dtype=float)
    return _fit(bike, "cnt", "regression", ["instant", "dteday", "casual", "registered"], labels)


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compiled")


@pytest.mark.parametrize("name", ["binary", "multiclass", "regression"])
def test_bit_for_bit_with_lightgbm(name: str, request: Any, kernel_cache: Path) -> None:
    fitted: Fitted = request.getfixturevalue(name)
    booster = lightgbm.Booster(model_str=fitted.model_text)
    trees, _ = compile_model(fitted.model_text, kernel_cache)
    features = fitted.features
    assert np.isnan(features).any()
    for raw_score in (False, True):
        expected = booster.predict(features, raw_score=raw_score)
        got = trees.predict(features, raw_score=raw_score)
        assert got.shape == expected.shape
        assert np.array_equal(got, expected), np.abs(got - expected).max()
    # Threads split the rows; one row at a time gives the same answers.
    trees.threads = 1
    assert np.array_equal(trees.predict(features[:50]), booster.predict(features[:50]))
    single = np.array([trees.predict(features[index : index + 1])[0] for index in range(50)])
    assert np.array_equal(single, booster.predict(features[:50]))


def test_categorical_splits_are_exercised(binary: Fitted) -> None:
    # The exactness test means something only if the model has categorical splits and
    # NaN-aware ones.
    assert "decision_type=" in binary.model_text
    decisions = [
        int(value)
        for line in binary.model_text.splitlines()
        if line.startswith("decision_type=")
        for value in line.split("=")[1].split()
    ]
    assert any(value & 1 for value in decisions)
    assert any((value >> 2) & 3 == 2 for value in decisions)


def test_scorer_uses_the_kernel_and_keeps_its_answers(binary: Fitted, kernel_cache: Path) -> None:
    scorer = LightGBMScorer(binary.model_text, "binary")
    before = scorer.score(binary.features)
    assert scorer.compile(kernel_cache)
    assert scorer.compiled is not None
    after = scorer.score(binary.features)
    assert np.array_equal(before, after)
    assert np.array_equal(after[:, 1], scorer.booster.predict(binary.features))


def test_no_compiler_falls_back_to_lightgbm(
    binary: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    scorer = LightGBMScorer(binary.model_text, "binary")
    with caplog.at_level(logging.INFO, logger="shipyard.runtime.compiled"):
        assert not scorer.compile(tmp_path / "cache")
    assert "Scoring with LightGBM's predict" in caplog.text
    assert "no-such-compiler" in caplog.text
    assert scorer.compiled is None
    assert not (tmp_path / "cache").exists()
    expected = scorer.booster.predict(binary.features)
    assert np.array_equal(scorer.score(binary.features)[:, 1], expected)


def test_failed_build_falls_back(
    binary: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    broken = tmp_path / "cc"
    broken.write_text("#!/bin/sh\necho 'cc 1.0'\n[ \"$1\" = --version ] || exit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    with caplog.at_level(logging.INFO, logger="shipyard.runtime.compiled"):
        assert load_compiled(binary.model_text, tmp_path / "cache") is None
    assert "the C compiler failed" in caplog.text


def test_unsupported_models_are_refused(tmp_path: Path) -> None:
    generator = np.random.default_rng(0)
    features = generator.normal(size=(500, 3))
    counts = generator.poisson(2.0, size=500)
    data = lightgbm.Dataset(features, counts, params={"verbose": -1})
    poisson = lightgbm.train({"objective": "poisson", "verbose": -1}, data, num_boost_round=3)
    with pytest.raises(CompilationError, match="objective 'poisson"):
        compile_model(poisson.model_to_string(), tmp_path)
    linear = lightgbm.train(
        {"objective": "regression", "linear_tree": True, "verbose": -1},
        lightgbm.Dataset(features, features[:, 0], params={"verbose": -1}),
        num_boost_round=3,
    )
    assert load_compiled(linear.model_to_string(), tmp_path) is None


def test_turned_off_by_environment(
    binary: Fitted, kernel_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_COMPILED_TREES", "0")
    with pytest.raises(CompilationError, match="turned off"):
        compile_model(binary.model_text, kernel_cache)


def test_second_load_reuses_the_cache(
    binary: Fitted, regression: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, first = compile_model(binary.model_text, tmp_path)
    assert not first.cached
    assert sorted(path.suffix for path in tmp_path.iterdir()) == [".json", ".so"]

    def no_build(source: str, compiler: str) -> bytes:
        raise AssertionError("the cached kernel was rebuilt")

    monkeypatch.setattr(compiled, "_build", no_build)
    _, second = compile_model(binary.model_text, tmp_path)
    assert second.cached
    assert second.key == first.key
    # The kernel serves every model: another model needs no build either.
    other, third = compile_model(regression.model_text, tmp_path)
    assert third.cached
    booster = lightgbm.Booster(model_str=regression.model_text)
    assert np.array_equal(other.predict(regression.features), booster.predict(regression.features))


def test_corrupted_cache_is_detected_and_rebuilt(
    binary: Fitted, tmp_path: Path, caplog: Any
) -> None:
    _, first = compile_model(binary.model_text, tmp_path)
    library = tmp_path / f"{first.key}.so"
    record = json.loads((tmp_path / f"{first.key}.json").read_text())
    damaged = bytearray(library.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    library.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, logger="shipyard.runtime.compiled"):
        trees, again = compile_model(binary.model_text, tmp_path)
    assert not again.cached
    assert "does not match its recorded hash" in caplog.text
    assert hashlib.sha256(library.read_bytes()).hexdigest() == record["library_sha256"]
    booster = lightgbm.Booster(model_str=binary.model_text)
    assert np.array_equal(trees.predict(binary.features), booster.predict(binary.features))


def test_wrong_width_is_refused(binary: Fitted, kernel_cache: Path) -> None:
    trees, _ = compile_model(binary.model_text, kernel_cache)
    with pytest.raises(ValueError, match="expects rows of"):
        trees.predict(binary.features[:, :-1])


def test_oversized_categorical_tables_fall_back(
    binary: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "_MAX_CATEGORY_WORDS", 10)
    with pytest.raises(CompilationError, match="categorical tables"):
        compile_model(binary.model_text, tmp_path)
    scorer = LightGBMScorer(binary.model_text, "binary")
    assert not scorer.compile(tmp_path)
