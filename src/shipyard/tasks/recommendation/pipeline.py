"""The recommendation task through the shared loop: read, train, export, check, register.

:func:`train_recommendation` is what :func:`shipyard.lifecycle.train` runs for
``task: recommendation``. It returns the same :class:`~shipyard.lifecycle.TrainRun` as the
tabular path and registers the same kind of hashed bundle (manifest task ``recommendation``).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.config import PipelineConfig, RecommendationConfig, dump_config
from shipyard.data.sources import fingerprint, read_table
from shipyard.errors import DataError, ExportError
from shipyard.evaluation.card import bundle_documents
from shipyard.evaluation.metrics import MetricValue
from shipyard.monitoring.reference import reference_to_json
from shipyard.registry.bundle import write_bundle
from shipyard.registry.store import DEFAULT_ALIAS, Registry
from shipyard.tasks.recommendation.export import export_recommender
from shipyard.tasks.recommendation.monitoring import recommendation_reference
from shipyard.tasks.recommendation.training import RecommenderRun, train_recommender
from shipyard.training.trainer import CandidateResult

if TYPE_CHECKING:
    from shipyard.lifecycle import TrainRun

__all__ = ["check_recommender_parity", "item_details", "train_recommendation"]

PARITY_USERS = 500


def item_details(settings: RecommendationConfig) -> dict[Any, dict[str, Any]] | None:
    """Read the display fields of each item from ``items_source``, keyed by item id.

    Raises
    ------
    DataError
        When the table lacks the item column or a listed field.
    """
    if settings.items_source is None:
        return None
    table = read_table(settings.items_source)
    for column in (settings.item, *settings.item_fields):
        if column not in table.columns:
            raise DataError(
                f"The items table '{settings.items_source}' has no column '{column}' "
                "(recommendation.item / recommendation.item_fields)."
            )
    fields = list(settings.item_fields)
    details: dict[Any, dict[str, Any]] = {}
    for row in table[[settings.item, *fields]].itertuples(index=False):
        key = row[0].item() if hasattr(row[0], "item") else row[0]
        details[key] = {
            name: (value.item() if hasattr(value, "item") else value)
            for name, value in zip(fields, row[1:], strict=True)
        }
    return details


def check_recommender_parity(run: RecommenderRun, files: dict[str, bytes], manifest: Any) -> float:
    """Largest gap between the trained model's scores and the served scorer's, over users.

    Raises
    ------
    ExportError
        When the gap exceeds 1e-6.
    """
    from shipyard.runtime.recommend import RecommenderScorer

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "bundle"
        write_bundle(folder, files, manifest)
        scorer = RecommenderScorer(folder, manifest)
        users = np.arange(min(PARITY_USERS, run.interactions.n_users), dtype=np.int64)
        expected = run.model.score_users(users)
        gap = 0.0
        for index in users.tolist():
            answer = scorer.recommend(run.interactions.users[index], k=10)
            for entry in answer["items"]:
                column = scorer._item_index[str(entry["item"])]
                gap = max(gap, abs(entry["score"] - float(expected[index, column])))
    if gap > 1e-6:
        raise ExportError(
            f"The served recommender's scores differ from the trained model's by {gap:.2e} "
            "(more than 1e-6); the bundle was not registered."
        )
    return gap


def _metrics(run: RecommenderRun) -> dict[str, MetricValue]:
    k = run.test.metrics
    metrics = {f"{name}@k": value for name, value in k.items()}
    metrics["popularity_ndcg@k"] = run.baseline.metrics["ndcg"]
    metrics["ndcg_gain@k"] = run.ndcg_gain
    return metrics


def _leaderboard(run: RecommenderRun) -> list[CandidateResult]:
    """List the families compared on the validation period, best first, as leaderboard rows."""
    return [
        CandidateResult(
            name=row["name"],
            status="ok",
            cv_scores=[row["validation_ndcg"]],
            cv_mean=row["validation_ndcg"],
            cv_low=row["validation_low"],
            cv_high=row["validation_high"],
            fit_seconds=row["seconds"],
            params={} if row["name"] == "popularity" else run.params,
            message="shipped" if row["name"] == run.family else "",
        )
        for row in sorted(run.leaderboard, key=lambda row: -row["validation_ndcg"])
    ]


def train_recommendation(
    config: PipelineConfig,
    report: Callable[[str], None] | None = None,
    registry: Registry | None = None,
) -> TrainRun:
    """Train, evaluate, export and register a recommender as a config describes.

    Raises
    ------
    DataError
        When the data or the ``recommendation`` section is unusable.
    ExportError
        When the exported recommender disagrees with the trained one.
    """
    from shipyard.lifecycle import TrainRun, _latest_version, package_versions

    report = report or (lambda message: None)
    started = time.perf_counter()
    settings = config.recommendation
    if settings is None:
        raise DataError("task is 'recommendation' but the config has no 'recommendation' section.")
    report(f"reading {config.data.source}")
    frame = read_table(config.data.source)
    run = train_recommender(
        frame,
        settings,
        seed=config.seed,
        bootstrap_samples=config.evaluation.bootstrap_samples,
        confidence=config.evaluation.confidence,
        report=report,
    )
    files, model_entry = export_recommender(run, item_details(settings))
    metrics = _metrics(run)
    leaderboard = _leaderboard(run)
    manifest: dict[str, Any] = {
        "task": "recommendation",
        "target": settings.item,
        "classes": [],
        "metric": f"ndcg@{settings.k}",
        "model": model_entry,
        "config": "config.yaml",
        "recommendation": {
            **settings.model_dump(mode="json"),
            "coverage": round(run.test.coverage, 4),
            "popularity_coverage": round(run.baseline.coverage, 4),
            "evaluated_users": run.test.users,
            "cold_start": run.cold_start,
        },
        "metrics": {
            "test": {name: value.as_dict() for name, value in metrics.items()},
            "validation": {row["name"]: row for row in run.leaderboard},
        },
        "leaderboard": [row.as_dict() for row in leaderboard],
        "rows": run.rows,
        "notes": run.notes,
        "sensitive": [],
        "drift_reference": "drift_reference.json",
        "evaluation": {
            "intended_use": config.evaluation.intended_use,
            "out_of_scope_use": config.evaluation.out_of_scope_use,
            "data": {"source": config.data.source, "test_source": config.data.test_source},
        },
    }
    files["config.yaml"] = dump_config(config).encode()
    # Popularity-drift references for monitoring: what the served model lists, what users take.
    reference = recommendation_reference(run, settings.k, seed=config.seed)
    files["drift_reference.json"] = json.dumps(
        reference_to_json(reference), allow_nan=False
    ).encode()
    report("checking the served scorer against the trained model")
    gap = check_recommender_parity(run, files, manifest)
    parity = {"rows": float(min(PARITY_USERS, run.interactions.n_users)), "single": gap}
    parity["batched"] = gap
    manifest["parity"] = parity

    registry = registry or Registry.from_config(config.registry)
    parent = _latest_version(registry, config.name)
    if config.evaluation.report:
        files.update(
            bundle_documents(
                {
                    **manifest,
                    "name": config.name,
                    "parent_version": parent,
                    "package_versions": package_versions(),
                },
                files,
            )
        )
    version = registry.register(
        config.name,
        files,
        manifest,
        params={"family": run.family, **run.params},
        config=dump_config(config),
        data_fingerprint=fingerprint(frame),
        package_versions=package_versions(),
        parent_version=parent,
    )
    promoted = False
    if parent is None:
        version = registry.promote(
            config.name, version.version, DEFAULT_ALIAS, reason="first version of the model"
        )
        promoted = True
    report(f"registered {version.reference}" + (" as champion" if promoted else ""))
    return TrainRun(
        version,
        "recommendation",
        f"ndcg@{settings.k}",
        run.family,
        leaderboard,
        metrics,
        parity,
        run.rows,
        run.notes,
        promoted,
        time.perf_counter() - started,
    )
