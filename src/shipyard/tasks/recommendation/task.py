"""The recommendation task: interactions in, a ranked list of items per user out.

The time-ordered split of positive interactions (a validation period to choose the family, a
test period to measure the gain over popularity, paired over users) is part of the
recommender's fit (:func:`~shipyard.tasks.recommendation.training.train_recommender`), because
it splits events, not rows of a table. The bundle holds the factors as ``.npy`` arrays and the
popularity-drift references; served routes are ``/recommend`` and ``/similar``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError
from shipyard.tasks.base import (
    TABLE_ONLY_KEYS,
    Capabilities,
    EvaluatedModel,
    FittedModel,
    PreparedData,
    RetrainSteps,
    RunContext,
    SplitData,
    Task,
)

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig, RecommendationConfig
    from shipyard.data.contract import Contract
    from shipyard.evaluation.report import DocumentSections
    from shipyard.manifest import Manifest
    from shipyard.monitoring.adapters import TaskMonitoring
    from shipyard.tasks.try_it import TryItAnswer, TryItForm

__all__ = ["RecommendationTask"]


# The users the try-it form offers as one types (any id may still be entered).
TRY_IT_USERS = 500


def _settings(config: PipelineConfig) -> RecommendationConfig:
    if config.recommendation is None:
        raise ConfigError(
            "task is 'recommendation' but the 'recommendation' section is missing; add it "
            "with at least 'user' and 'item' (see docs/recommendation.md)"
        )
    return config.recommendation


class RecommendationTask(Task):
    """Top-k recommendations from implicit or explicit feedback."""

    name = "recommendation"
    summary = "top-k items per user from interactions (popularity, ALS, BPR)"
    capabilities = Capabilities(
        config_tasks=("recommendation",),
        manifest_tasks=("recommendation",),
        unsupported_keys=(*TABLE_ONLY_KEYS, "serving.canary", "serving.shadow"),
        live_metrics=False,
        traffic_split=False,
        feedback_unit="users",
        protocols=("recommend",),
    )

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Use the X-Wines ratings of the 60 most active users, and ALS with 8 factors."""
        from shipyard import datasets

        ratings = datasets.load("xwines").train
        active = ratings["UserID"].value_counts().index[:60]
        ratings[ratings["UserID"].isin(active)].reset_index(drop=True).to_parquet(
            folder / "ratings.parquet"
        )
        return {
            "name": "wines",
            "task": "recommendation",
            "data": {"source": str(folder / "ratings.parquet"), "target": "Rating"},
            "recommendation": {
                "user": "UserID",
                "item": "WineID",
                "rating": "Rating",
                "time": "Date",
                "feedback": "explicit",
                "models": ["als"],
                "factors": 8,
                "iterations": 5,
            },
            "evaluation": {"bootstrap_samples": 100, "report": False},
        }

    def check_config(self, config: PipelineConfig) -> None:
        """Refuse unsupported keys, and a config without its ``recommendation`` section."""
        super().check_config(config)
        _settings(config)

    def read(self, config: PipelineConfig, context: RunContext) -> PreparedData:
        """Read the interactions table."""
        from shipyard.data.sources import ReadOptions, fingerprint, read_table

        context.report(f"reading {config.data.source}")
        options = ReadOptions(config.data.encoding, config.data.header)
        frame = read_table(config.data.source, options)
        return PreparedData(frame, fingerprint=fingerprint(frame))

    def contract(
        self, data: PreparedData, config: PipelineConfig, context: RunContext
    ) -> PreparedData:
        """Interactions have no record contract; their columns are checked by the fit."""
        return data

    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Hand every interaction to the fit, which splits them by time."""
        settings = _settings(config)
        return SplitData(
            data,
            data.frame,
            data.frame.iloc[:0],
            data.frame.iloc[:0],
            "ranking",
            f"ndcg@{settings.k}",
        )

    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Choose a family on the validation period, measure it on the test period, export."""
        from shipyard.tasks.recommendation.bundle import item_details, recommender_leaderboard
        from shipyard.tasks.recommendation.export import export_recommender
        from shipyard.tasks.recommendation.training import train_recommender

        settings = _settings(config)
        run = train_recommender(
            data.train,
            settings,
            seed=config.seed,
            bootstrap_samples=config.evaluation.bootstrap_samples,
            confidence=config.evaluation.confidence,
            report=context.report,
        )
        files, model_entry = export_recommender(run, item_details(settings))
        data.rows = run.rows
        data.prepared.notes.extend(run.notes)
        return FittedModel(
            None,
            run.family,
            recommender_leaderboard(run),
            {"family": run.family, **run.params},
            payload={"run": run, "files": files, "model": model_entry},
        )

    def _manifest(self, fitted: FittedModel, config: PipelineConfig) -> dict[str, Any]:
        settings = _settings(config)
        run = fitted.payload["run"]
        return {
            "task": "recommendation",
            "target": settings.item,
            "classes": [],
            "model": fitted.payload["model"],
            "recommendation": {
                **settings.model_dump(mode="json"),
                "coverage": round(run.test.coverage, 4),
                "popularity_coverage": round(run.baseline.coverage, 4),
                "evaluated_users": run.test.users,
                "cold_start": run.cold_start,
            },
            "sensitive": [],
            "personal_data": _personal_data(config, settings.user),
            "drift_reference": "drift_reference.json",
            "evaluation": {
                "intended_use": config.evaluation.intended_use,
                "out_of_scope_use": config.evaluation.out_of_scope_use,
                "data": {"source": config.data.source, "test_source": config.data.test_source},
            },
        }

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Compare the served scorer's scores with the trained model's, over users."""
        from shipyard.tasks.recommendation.bundle import PARITY_USERS, check_recommender_parity

        run = fitted.payload["run"]
        manifest = {"task": "recommendation", "model": fitted.payload["model"]}
        gap = check_recommender_parity(run, fitted.payload["files"], manifest)
        users = float(min(PARITY_USERS, run.interactions.n_users))
        return {"rows": users, "single": gap, "batched": gap}

    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
    ) -> EvaluatedModel:
        """NDCG, precision, recall and MAP at k against popularity; popularity-drift references."""
        from shipyard.monitoring.reference import reference_to_json
        from shipyard.tasks.recommendation.bundle import recommender_metrics
        from shipyard.tasks.recommendation.monitoring import recommendation_reference

        settings, run = _settings(config), fitted.payload["run"]
        metrics = recommender_metrics(run)
        manifest = self._manifest(fitted, config)
        manifest["metrics"] = {
            "test": {name: value.as_dict() for name, value in metrics.items()},
            "validation": {row["name"]: row for row in run.leaderboard},
        }
        # Popularity-drift references: what the served model lists, what users take.
        reference = recommendation_reference(run, settings.k, seed=config.seed)
        files = {
            **fitted.payload["files"],
            "drift_reference.json": json.dumps(
                reference_to_json(reference), allow_nan=False
            ).encode(),
        }
        return EvaluatedModel(metrics, manifest, files)

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Build a :class:`~shipyard.runtime.recommend.RecommenderScorer` from the arrays."""
        from shipyard.runtime.recommend import RecommenderScorer

        return RecommenderScorer(directory, manifest.to_document())

    def try_it(self, manifest: Manifest, contract: Contract | None, predictor: Any) -> TryItForm:
        """Offer a user picker (known users suggested as one types) and how many items to list."""
        from shipyard.tasks.try_it import TryItField, TryItForm

        users = tuple(str(user) for user in predictor.users[:TRY_IT_USERS])
        return TryItForm(
            (
                TryItField(
                    "user",
                    "User",
                    "text",
                    help=f"a user id; {len(predictor.users)} users are known, an unknown "
                    "one gets the most popular items",
                    suggestions=users,
                    default=users[0] if users else "",
                ),
                TryItField(
                    "k", "Items", "integer", minimum=1, maximum=100, help="1 to 100", default="10"
                ),
            ),
            submit_label="Recommend",
        )

    def try_it_answer(
        self, predictor: Any, manifest: Manifest, record: dict[str, Any]
    ) -> TryItAnswer:
        """List the user's top items with their scores (the answer of ``/recommend``)."""
        from shipyard.tasks.try_it import TryItAnswer

        answer = predictor.recommend(record["user"], int(record.get("k") or 10))
        notes = (
            ["Unknown user: the most popular items are listed (cold start)."]
            if answer["cold_start"]
            else [
                f"The user already has {len(predictor.seen(record['user']))} items; "
                "they are left out."
            ]
        )
        return TryItAnswer(
            prediction=f"{len(answer['items'])} items for user {answer['user']}",
            items=answer["items"],
            notes=notes,
        )

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Sketch the popularity of listed and taken items; coverage and hit rates per window."""
        from shipyard.monitoring.adapters import read_reference
        from shipyard.tasks.recommendation.monitoring import recommendation_monitoring

        return recommendation_monitoring(
            directory,
            manifest.to_document(),
            read_reference(directory, manifest.drift_reference, reference),
        )

    def retrain_steps(self) -> RetrainSteps:
        """Feedback joins as interactions; the gate compares NDCG@k paired over users."""
        from shipyard.tasks.recommendation.loop import RECOMMENDATION_STEPS

        return RECOMMENDATION_STEPS

    def document_sections(self) -> DocumentSections:
        """Ranking quality, coverage, cold start and the leaderboard."""
        from shipyard.tasks.recommendation.documents import RECOMMENDATION_SECTIONS

        return RECOMMENDATION_SECTIONS


def _personal_data(config: PipelineConfig, user_column: str) -> dict[str, Any]:
    """Return the log's personal fields: a served list logs its user as ``user``."""
    columns = ["user" if name == user_column else name for name in config.data.personal]
    return {"columns": columns, "log_policy": config.monitoring.personal_data}
