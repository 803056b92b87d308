"""The recommender through the whole loop: train -> register -> serve (real socket) -> retrain.

There is no feedback endpoint for recommenders yet, so retraining is tested by training again
on the interactions extended with new ones, as a feedback job would.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.config import ServingConfig, load_config_dict
from shipyard.errors import BundleIntegrityError, ConfigError
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry
from shipyard.runtime.recommend import RecommenderScorer
from shipyard.serving import KeyStore, build_app, running_server

ACTIVE_USERS = 800


@dataclass
class Trained:
    registry: Registry
    run: TrainRun
    ratings: pd.DataFrame
    config: dict[str, Any]


def _config(source: Path, home: Path) -> dict[str, Any]:
    return {
        "name": "wines",
        "task": "recommendation",
        "data": {"source": str(source), "target": "Rating"},
        "recommendation": {
            "user": "UserID",
            "item": "WineID",
            "rating": "Rating",
            "time": "Date",
            "feedback": "explicit",
            "factors": 32,
            "iterations": 10,
            "bpr_iterations": 30,
            "items_source": "dataset:xwines:items",
            "item_fields": ["WineName", "Type"],
        },
        "evaluation": {"bootstrap_samples": 200},
        "registry": {"home": str(home)},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("recommend")
    ratings = datasets.load("xwines").train
    active = ratings["UserID"].value_counts().index[:ACTIVE_USERS]
    sample = ratings[ratings["UserID"].isin(active)].reset_index(drop=True)
    source = folder / "ratings.parquet"
    sample.to_parquet(source)
    raw = _config(source, folder / "home")
    config = load_config_dict(raw)
    registry = Registry.from_config(config.registry)
    return Trained(registry, train(config, registry=registry), sample, raw)


def _get(url: str, key: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=10
        ) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_recommender_is_registered_like_any_model(trained: Trained):
    run = trained.run
    assert run.task == "recommendation"
    assert run.version.task == "recommendation"
    assert run.best in ("als", "bpr")
    assert run.version.aliases == ("champion",)
    gain = run.test_metrics["ndcg_gain@k"]
    assert gain.low <= gain.value <= gain.high
    assert run.parity["single"] <= 1e-6
    manifest = trained.registry.manifest(run.version.reference)
    assert manifest["task"] == "recommendation"
    assert 0 < manifest["recommendation"]["coverage"] <= 1
    # Every array loads without pickles; the registry verifies every hash.
    scorer = trained.registry.load_predictor(run.version.reference)
    assert isinstance(scorer, RecommenderScorer)


def test_served_recommendations_over_a_real_socket(trained: Trained, tmp_path):
    registry, reference = trained.registry, trained.run.version.reference
    scorer = registry.load_predictor(reference)
    user = int(trained.ratings["UserID"].iloc[-1])
    seen = set(scorer.seen(user))
    assert seen
    keys = KeyStore(tmp_path / "keys.json")
    _, key = keys.create("test")
    app = build_app(registry, reference, ServingConfig(), keys)
    with running_server(app) as url:
        base = f"{url}/v1/models/wines"
        assert _get(f"{base}/recommend?user={user}&k=10")[0] == 401  # keys are on by default
        status, answer = _get(f"{base}/recommend?user={user}&k=10", key)
        assert status == 200
        assert answer["model"] == "wines"
        assert answer["cold_start"] is False
        items = [entry["item"] for entry in answer["items"]]
        assert len(items) == len(set(items)) == 10
        assert not seen & set(items)
        assert all(entry["WineName"] for entry in answer["items"])
        scores = [entry["score"] for entry in answer["items"]]
        assert scores == sorted(scores, reverse=True)

        status, cold = _get(f"{base}/recommend?user=no-such-user&k=5", key)
        assert status == 200
        assert cold["cold_start"] is True
        popularity = np.argsort(-scorer.popularity, kind="stable")[:5]
        assert [entry["item"] for entry in cold["items"]] == [
            scorer.items[index] for index in popularity
        ]

        status, similar = _get(f"{base}/similar?item={items[0]}&k=5", key)
        assert status == 200
        assert len(similar["similar"]) == 5
        assert items[0] not in [entry["item"] for entry in similar["similar"]]
        cosines = [entry["score"] for entry in similar["similar"]]
        assert all(-1 - 1e-9 <= value <= 1 + 1e-9 for value in cosines)

        assert _get(f"{base}/similar?item=1", key)[0] == 404
        status, problem = _get(f"{base}/recommend?k=3", key)
        assert status == 422
        assert "'user' is required" in problem["message"]
        assert _get(f"{base}/recommend?user={user}&k=zero", key)[0] == 422
        assert _get(f"{base}/recommend?user={user}&k=0", key)[0] == 422
        assert _get(f"{url}/v1/models/other/recommend?user={user}", key)[0] == 404
        status, metadata = _get(base, key)
        assert status == 200
        assert metadata["task"] == "recommendation"


def test_retraining_on_new_interactions_learns_the_new_user(trained: Trained, tmp_path: Path):
    ratings = trained.ratings
    newcomer = 999_999_999
    liked = ratings["WineID"].value_counts().index[:12]
    later = ratings["Date"].max() - pd.Timedelta(days=400)
    new_rows = pd.DataFrame(
        {
            "RatingID": np.arange(12) + 10**9,
            "UserID": newcomer,
            "WineID": liked,
            "Vintage": 0,
            "Rating": 5.0,
            "Date": [later + pd.Timedelta(hours=hour) for hour in range(12)],
        }
    )
    extended = pd.concat([ratings, new_rows], ignore_index=True)
    source = tmp_path / "extended.parquet"
    extended.to_parquet(source)
    raw = {**trained.config, "data": {"source": str(source), "target": "Rating"}}
    second = train(load_config_dict(raw), registry=trained.registry)
    assert second.version.version == trained.run.version.version + 1
    assert second.version.parent_version == trained.run.version.version
    assert second.version.aliases == ()  # the champion alias does not move by itself
    scorer = trained.registry.load_predictor(second.version.reference)
    answer = scorer.recommend(newcomer, k=10)
    assert answer["cold_start"] is False
    assert not set(liked.tolist()) & {entry["item"] for entry in answer["items"]}
    before = trained.registry.load_predictor(trained.run.version.reference)
    assert before.recommend(newcomer, k=10)["cold_start"] is True


def test_tampered_factors_are_refused(trained: Trained, tmp_path: Path):
    import shutil

    bundle = tmp_path / "copy"
    shutil.copytree(trained.run.version.bundle_path, bundle)
    factors = bundle / "recommender" / "item_factors.npy"
    data = bytearray(factors.read_bytes())
    data[-1] ^= 1
    factors.write_bytes(bytes(data))
    from shipyard.registry.bundle import load_predictor

    with pytest.raises(BundleIntegrityError, match=r"item_factors\.npy"):
        load_predictor(bundle)


def test_recommendation_config_needs_its_section(tmp_path: Path):
    raw = _config(tmp_path / "x.parquet", tmp_path)
    del raw["recommendation"]
    from shipyard.tasks.base import task_for_config

    with pytest.raises(ConfigError, match="'recommendation' section is missing"):
        task_for_config(load_config_dict(raw))


def test_row_scoring_paths_refuse_a_recommender_with_a_clear_error(trained: Trained, tmp_path):
    from shipyard.errors import DataError
    from shipyard.pipeline import evaluate

    source = tmp_path / "rows.csv"
    trained.ratings.head(5).to_csv(source, index=False)
    with pytest.raises(DataError, match="is a recommender"):
        evaluate(trained.registry, trained.run.version.reference, str(source))
