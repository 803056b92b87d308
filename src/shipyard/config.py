"""The pipeline spec: ``shipyard.yaml``, validated once at load.

A config is frozen, typed data. Unknown keys are rejected with the nearest valid key, every CLI
flag maps to a key (see :data:`CLI_FLAGS`), and the resolved config is saved with each model so
that a run can be repeated from it.

Examples
--------
>>> config = PipelineConfig.model_validate(
...     {"name": "adult", "data": {"source": "dataset:adult", "target": "income"}}
... )
>>> config.training.cv_folds
5
>>> load_config_dict({"name": "adult", "data": {"source": "a.csv", "target": "y"},
...                   "trainig": {}})
Traceback (most recent call last):
...
shipyard.errors.ConfigError: Invalid configuration:
  - unknown key 'trainig'. Did you mean 'training'?
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.errors import ConfigError

__all__ = [
    "CLI_FLAGS",
    "CleaningConfig",
    "DataConfig",
    "EngineConfig",
    "EvaluationConfig",
    "FairnessConfig",
    "ForecastingConfig",
    "ImageConfig",
    "LeakageConfig",
    "MonitoringConfig",
    "NotesConfig",
    "NotesGeneratorConfig",
    "PipelineConfig",
    "RateLimitConfig",
    "RecommendationConfig",
    "RegistryConfig",
    "ServingConfig",
    "SplitConfig",
    "StreamConfig",
    "TextConfig",
    "TrainingConfig",
    "ValidationConfig",
    "apply_overrides",
    "dump_config",
    "load_config",
    "load_config_dict",
]

Metric = Literal["auto", "roc_auc", "accuracy", "f1", "log_loss", "rmse", "mae", "r2"]
ModelFamily = Literal[
    "linear", "lightgbm", "xgboost", "catboost", "random_forest", "extra_trees", "mlp"
]

CLASSIFICATION_METRICS = frozenset({"roc_auc", "accuracy", "f1", "log_loss"})
REGRESSION_METRICS = frozenset({"rmse", "mae", "r2"})


class _Strict(BaseModel):
    """Frozen, with unknown keys forbidden."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the training data comes from and what to predict."""

    source: str = Field(description="Path to a CSV or Parquet file, or 'dataset:NAME'.")
    test_source: str | None = Field(
        default=None,
        description="A separate labelled test set. When absent, a test split is held out.",
    )
    target: str | None = Field(
        default=None,
        description="The column to predict. Required by the supervised tasks; the anomaly "
        "detection task reads it as optional known labels; clustering has none.",
    )
    drop: tuple[str, ...] = Field(default=(), description="Columns never used as features.")
    encoding: str | None = Field(
        default=None,
        description="Encoding of the text files (cp1252, latin-1); unset: UTF-8, checked.",
    )
    header: bool | None = Field(
        default=None,
        description="Whether text files start with a header row; unset: detected.",
    )
    unknown_categories: Literal["error", "as_missing", "as_rare"] = Field(
        default="as_rare",
        description="What scoring does with a category training never saw: refuse the row, "
        "score it as missing, or as the rare bucket (as missing where the column has none). "
        "Saved with the model; its server applies it too.",
    )
    personal: tuple[str, ...] = Field(
        default=(),
        description="Columns holding personal data: the prediction log applies "
        "'monitoring.personal_data' to them, and the model card lists them.",
    )

    @property
    def target_column(self) -> str:
        """The target of a task that needs one.

        Raises
        ------
        ConfigError
            When ``target`` is unset (the task's config check says so first).
        """
        if self.target is None:
            raise ConfigError("data.target is not set; set it to the column to predict.")
        return self.target


class SplitConfig(_Strict):
    """How the source is split into train, validation and test parts."""

    test_size: float = Field(default=0.2, gt=0, lt=1)
    validation_size: float = Field(default=0.1, gt=0, lt=1)
    stratify: bool = Field(default=True, description="Stratify classification splits by class.")
    group_column: str | None = Field(
        default=None, description="Keep all rows of a group in one part (no group in two)."
    )
    time_column: str | None = Field(
        default=None, description="Split in time order: oldest rows train, newest rows test."
    )

    @model_validator(mode="after")
    def _sizes_leave_training_rows(self) -> SplitConfig:
        if self.test_size + self.validation_size >= 0.9:
            raise ValueError(
                "split.test_size + split.validation_size must be below 0.9 so that enough "
                f"rows remain for training; got {self.test_size} + {self.validation_size}"
            )
        return self


class CleaningConfig(_Strict):
    """Cleaning fitted on the training data and applied again to every request."""

    enabled: bool = True
    missing_tokens: tuple[str, ...] = Field(
        default=("", "?", "NA", "N/A", "n/a", "na", "null", "NULL", "None", "NaN", "nan"),
        description="Text values that mean 'missing'.",
    )
    rare_share: float = Field(
        default=0.001, ge=0, lt=0.5, description="Categories rarer than this become __rare__."
    )
    clip_quantile: float | None = Field(
        default=None, gt=0, lt=0.5, description="Clip numbers to this quantile (off when unset)."
    )
    missing_indicators: bool = Field(
        default=True, description="Add <column>__missing for numeric columns with gaps."
    )
    drop_duplicates: bool = True
    drop_constant: bool = True
    drop_identifiers: bool = True


LeakageCheck = Literal[
    "single_feature", "identifier", "target_derived", "train_test_duplicates", "future_time"
]


class LeakageConfig(_Strict):
    """Leakage checks run before training."""

    enabled: bool = True
    threshold: float = Field(
        default=0.99, gt=0.5, le=1, description="Single-feature score that counts as a leak."
    )
    errors: tuple[LeakageCheck, ...] = Field(
        default=("single_feature", "target_derived"),
        description="Checks whose findings stop training; the others warn.",
    )
    prediction_time_column: str | None = Field(
        default=None, description="Date column holding when each prediction is made."
    )


class ValidationConfig(_Strict):
    """What ``shipyard validate`` does with rows that break the contract."""

    policy: Literal["fail", "warn", "quarantine"] = "fail"
    quarantine_path: str | None = Field(
        default=None, description="Where quarantined rows go; default FILE.quarantine.csv."
    )


class TrainingConfig(_Strict):
    """Which candidates are trained and how they are compared."""

    time_budget: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Wall-clock seconds from the start of training to the registered model, "
            "evaluation included; model development gets what evaluation does not need, and "
            "the search stops at search_share of that."
        ),
    )
    cv_folds: int = Field(default=5, ge=2, le=20)
    cv_repeats: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Repeats of k-fold CV; default 3 below 2,000 training rows, else 1.",
    )
    models: tuple[ModelFamily, ...] = Field(
        default=(
            "linear",
            "lightgbm",
            "xgboost",
            "catboost",
            "random_forest",
            "extra_trees",
            "mlp",
        ),
        min_length=1,
    )
    n_trials: int | None = Field(
        default=None,
        ge=1,
        description="Settings scored in all, at most; with a seed this makes the run repeatable.",
    )
    search_share: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description=(
            "Share of model development's time for the search; refits and costs use the rest."
        ),
    )
    final_fit: Literal["all_rows", "early_stopping"] = Field(
        default="all_rows",
        description=(
            "all_rows: refit the chosen settings on training plus validation rows, boosters "
            "with the tree count cross-validation chose; early_stopping: refit on the "
            "training rows, early-stopping on the validation rows."
        ),
    )
    ensemble: bool = Field(default=True, description="Build a greedy ensemble of the families.")
    prefer_simpler: bool = Field(
        default=True,
        description="Ship the simplest model the best one does not significantly beat.",
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="Significance level.")
    max_latency_ms: float | None = Field(
        default=None, gt=0, description="Exclude models slower than this for one record."
    )
    calibration: Literal["none", "platt", "isotonic"] = "none"
    threshold_metric: Literal["f1", "accuracy", "balanced_accuracy"] | None = Field(
        default=None, description="Tune the binary decision threshold for this metric."
    )
    class_weight: Literal["none", "balanced"] = "none"
    backend: str = Field(default="loky", description="joblib backend that runs folds.")
    n_jobs: int = Field(default=1, ge=1, description="Folds run at once; 1 runs in process.")
    model_threads: int = Field(default=2, ge=1, description="Threads each model may use.")


class EvaluationConfig(_Strict):
    """How test metrics and their confidence intervals are computed."""

    bootstrap_samples: int = Field(default=1000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    report: bool = Field(
        default=True,
        description="Write the evaluation report, plots and model card into each bundle "
        "(needs the 'report' extra).",
    )
    intended_use: str = Field(
        default="Not stated in the config (set evaluation.intended_use).",
        description="What the model is for; printed in the model card.",
    )
    out_of_scope_use: str = Field(
        default="Not stated in the config (set evaluation.out_of_scope_use).",
        description="Uses the model is not meant for; printed in the model card.",
    )


FairnessMetric = Literal[
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
]


class FairnessConfig(_Strict):
    """The fairness gate over the ``sensitive`` columns, and the mitigation to try."""

    thresholds: dict[FairnessMetric, float] = Field(
        default_factory=dict,
        description="Gate: differences above, or ratios below, these values block promotion.",
    )
    mitigation: Literal["none", "threshold_optimizer", "exponentiated_gradient"] = Field(
        default="none", description="Fairlearn mitigation to measure against the trained model."
    )
    apply: Literal["none", "threshold"] = Field(
        default="none",
        description=(
            "Mitigation to ship: 'threshold' fits a decision threshold per sensitive group on "
            "the validation rows and registers the result as a child version, which serves."
        ),
    )
    apply_target: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description=(
            "Demographic parity difference the group thresholds allow on the validation rows; "
            "default half of thresholds.demographic_parity_difference."
        ),
    )
    bootstrap_samples: int = Field(default=200, ge=20, le=100_000)
    min_group_size: int = Field(
        default=30, ge=1, description="Groups with fewer test rows are reported, not gated."
    )

    def parity_target(self) -> float:
        """Return the demographic parity difference ``apply: threshold`` fits to (validation).

        Half the gate's bound by default: the gate is judged on the test rows, where sampling
        noise adds to what was fitted.
        """
        if self.apply_target is not None:
            return self.apply_target
        return self.thresholds["demographic_parity_difference"] / 2.0


class RateLimitConfig(_Strict):
    """A token bucket per API key (per client address when auth is off), in each worker."""

    requests_per_second: float = Field(
        default=0.0,
        ge=0,
        description="Sustained requests per second per key; 0 (the default) turns limits off.",
    )
    burst: int = Field(
        default=20, ge=1, description="Requests a key may send at once before the rate applies."
    )


class ServingConfig(_Strict):
    """Options of ``shipyard serve``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_records: int = Field(default=10_000, ge=1, description="Records per request, at most.")
    unknown_fields: Literal["reject", "ignore"] = Field(
        default="reject", description="What to do with request fields the contract lacks."
    )
    auth: bool = Field(
        default=True, description="Require an API key (Authorization: Bearer KEY or X-API-Key)."
    )
    keys_file: str | None = Field(
        default=None, description="Hashed API keys; defaults to 'registry.home'/api-keys.json."
    )
    workers: int = Field(default=1, ge=1, le=64, description="Processes; one per core at most.")
    server: Literal["uvicorn", "granian"] = Field(
        default="uvicorn",
        description="The HTTP server: uvicorn, or granian (extra [granian]; more requests per "
        "core, see docs/serving.md).",
    )
    request_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to read a body and answer, else 408/503."
    )
    shutdown_timeout: float = Field(
        default=10.0, ge=0, description="Seconds to drain in-flight requests on shutdown."
    )
    cors_origins: tuple[str, ...] = Field(
        default=(), description="Origins allowed by CORS; empty turns CORS off."
    )
    batching: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Micro-batch concurrent requests; 'auto' turns it off for models whose "
        "one-row path is cheaper than waiting (LightGBM, linear).",
    )
    max_batch_size: int = Field(default=64, ge=1, description="Records per micro-batch.")
    max_batch_wait_ms: float = Field(
        default=2.0, ge=0, description="How long a micro-batch waits for company."
    )
    poll_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How often to check whether the alias moved (hot swap); 0 turns it off.",
    )
    canary: str | None = Field(
        default=None, description="Reference of a version that gets 'canary_share' of traffic."
    )
    canary_share: float = Field(default=0.0, ge=0, le=1, description="Share sent to 'canary'.")
    shadow: str | None = Field(
        default=None, description="Reference of a version that gets a copy of every request."
    )
    access_log: bool = Field(default=False, description="Log one JSON line per request.")
    log_predictions: bool = Field(
        default=True,
        description="Log every served prediction (and accept feedback) in the registry's "
        "database, for monitoring.",
    )
    chunk_size: int = Field(default=100_000, ge=1, description="Rows per chunk in batch scoring.")
    rate_limit: RateLimitConfig = Field(
        default_factory=RateLimitConfig,
        description="Requests per second and burst per API key; off by default.",
    )
    ui: bool = Field(
        default=True,
        description="Mount the web UI under /ui (log in with an API key; needs serving.auth).",
    )
    ui_secure_cookie: bool = Field(
        default=True,
        description="Send the UI's session cookie over HTTPS only (browsers count "
        "http://127.0.0.1 and localhost as secure); turn off only behind a TLS proxy that "
        "forwards plain HTTP under another host name.",
    )


class StreamConfig(_Strict):
    """Options of ``shipyard stream``: where events come from, where answers go, the limits."""

    source: str | None = Field(
        default=None,
        description="Broker URL: nats://HOST:4222 (JetStream) or redis://HOST:6379/DB (Streams).",
    )
    subject: str | None = Field(
        default=None, description="Subject (NATS) or stream key (Redis) the events arrive on."
    )
    to: str | None = Field(
        default=None, description="Subject or stream key the answers are published to."
    )
    dead_letter: str | None = Field(
        default=None, description="Where invalid events go, with the reason; default 'TO.dead'."
    )
    group: str | None = Field(
        default=None,
        description="Durable consumer (NATS) or consumer group (Redis); default 'shipyard-NAME'.",
    )
    max_batch_size: int = Field(default=64, ge=1, description="Events scored together, at most.")
    max_batch_wait_ms: float = Field(
        default=2.0, ge=0, description="How long a micro-batch waits for more events."
    )
    max_in_flight: int = Field(
        default=256, ge=1, description="Events read but not yet acknowledged, at most."
    )
    ack_wait: float = Field(
        default=30.0,
        gt=0,
        description="Seconds before an unacknowledged event is delivered again (after a crash).",
    )
    dedup_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long an answer's id is remembered to drop a duplicate publish.",
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Port of /metrics (Prometheus); unset: none."
    )
    drain_timeout: float = Field(
        default=30.0, ge=0, description="Seconds to finish in-flight events on SIGTERM."
    )


class DriftConfig(_Strict):
    """When a column of a monitoring window counts as drifted."""

    alpha: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="Significance level of each column's test, Bonferroni-corrected over columns.",
    )
    psi_threshold: float = Field(
        default=0.1, gt=0, description="A drifted column also needs at least this PSI."
    )
    min_samples: int = Field(
        default=100, ge=10, description="Windows with fewer values get no drift verdict."
    )


class AlertRuleConfig(_Strict):
    """One alert rule: ``drift`` (PSI), ``metric_drop`` or ``error_rate`` above a threshold."""

    kind: Literal["drift", "metric_drop", "error_rate"]
    threshold: float = Field(
        gt=0,
        description="drift: PSI; metric_drop: fall of the realised metric from its registered "
        "value, in the metric's units; error_rate: share of failed requests.",
    )
    column: str | None = Field(
        default=None, description="drift only: the column watched (all columns when unset)."
    )

    @model_validator(mode="after")
    def _column_only_for_drift(self) -> AlertRuleConfig:
        if self.column is not None and self.kind != "drift":
            raise ValueError(
                f"'column' applies to drift rules only; remove it from the {self.kind} rule"
            )
        if self.kind == "error_rate" and self.threshold >= 1:
            raise ValueError(
                f"an error_rate threshold is a share between 0 and 1; got {self.threshold}"
            )
        return self


def _default_alert_rules() -> tuple[AlertRuleConfig, ...]:
    return (
        AlertRuleConfig(kind="drift", threshold=0.25),
        AlertRuleConfig(kind="error_rate", threshold=0.01),
    )


class AlertsConfig(_Strict):
    """Alert rules, where alerts go, and how often one that keeps firing is repeated."""

    rules: tuple[AlertRuleConfig, ...] = Field(
        default_factory=_default_alert_rules,
        description="Checked on every watch pass; fired alerts go to the log, the audit log "
        "and the webhook.",
    )
    webhook: str | None = Field(
        default=None,
        description="URL that receives each alert as a JSON POST (http:// or https://).",
    )
    repeat_minutes: float = Field(
        default=60.0,
        ge=0,
        description="An alert that keeps firing is sent again after this; an alert the "
        "webhook has not taken by then is given up (marked undelivered).",
    )
    delivery_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="POSTs per alert in one watch pass before it waits for the next pass.",
    )
    retry_backoff_seconds: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="Wait before an alert's second POST; each later wait doubles.",
    )

    @model_validator(mode="after")
    def _webhook_is_http(self) -> AlertsConfig:
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"webhook must be an http:// or https:// URL; got '{self.webhook}'")
        return self


class RetrainingConfig(_Strict):
    """When ``shipyard watch`` retrains, and how the challenger is gated."""

    enabled: bool = Field(default=True, description="Retrain when a trigger fires.")
    drifted_columns: int | None = Field(
        default=1, ge=1, description="Trigger: this many drifted columns in the latest window."
    )
    metric_drop: float | None = Field(
        default=0.02,
        gt=0,
        description="Trigger: the realised metric is worse than at registration by more than "
        "this (metric units), with its whole confidence interval on the worse side.",
    )
    new_labels: int | None = Field(
        default=None, ge=1, description="Trigger: this many labels arrived since training."
    )
    every_hours: float | None = Field(
        default=None, gt=0, description="Trigger: a schedule, hours since the champion trained."
    )
    cooldown_minutes: float = Field(
        default=60.0, ge=0, description="Time between two retrains at least."
    )
    gate_share: float = Field(
        default=0.3,
        ge=0.05,
        le=0.9,
        description="Share of the labelled rows (the most recent) kept out of training for the "
        "gate.",
    )
    min_gate_rows: int = Field(
        default=200, ge=1, description="The gate refuses to promote on fewer held-out labels."
    )
    min_improvement: float = Field(
        default=0.0, ge=0, description="The gate's interval must lie above this improvement."
    )


class CanaryConfig(_Strict):
    """The canary stage between a passed gate and promotion to champion."""

    share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of traffic the canary serves; 0 skips the stage (a challenger that "
        "passes the gate becomes champion at once).",
    )
    requests: int | None = Field(
        default=500, ge=1, description="Decide once the canary has answered this many requests."
    )
    seconds: float | None = Field(
        default=None, gt=0, description="Decide once the canary has served this long."
    )
    min_labels: int = Field(
        default=100,
        ge=10,
        description="Realised metrics are compared only when both versions have this many "
        "labels in the canary period.",
    )

    @model_validator(mode="after")
    def _has_a_decision_point(self) -> CanaryConfig:
        if self.share > 0 and self.requests is None and self.seconds is None:
            raise ValueError(
                "a canary stage needs 'requests' or 'seconds' (or both) to know when to decide; "
                "set one, or set share to 0 to promote without a canary"
            )
        return self


class RollbackConfig(_Strict):
    """When a canary, or a freshly promoted champion, is rolled back from live numbers."""

    enabled: bool = Field(default=True, description="Roll back automatically.")
    error_rate_tolerance: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Roll back when the new version's share of failed requests exceeds the "
        "old one's by more than this.",
    )
    metric_tolerance: float = Field(
        default=0.0,
        ge=0,
        description="Roll back when the new version's realised metric is confidently worse "
        "than the old one's by more than this (metric units): the whole 95% interval of "
        "the difference lies below minus this.",
    )
    min_labels: int = Field(
        default=100, ge=10, description="Fewer labels give no metric-based verdict."
    )
    observe_requests: int = Field(
        default=1000,
        ge=1,
        description="A promoted champion is watched until it has answered this many requests "
        "(and has min_labels labels); then the promotion is confirmed.",
    )


class MonitoringConfig(_Strict):
    """What ``shipyard watch`` monitors and decides, and the drift gauges of ``/metrics``."""

    window_size: int = Field(default=1000, ge=10, description="Predictions per drift window.")
    interval_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between two passes of 'shipyard watch'."
    )
    retention_days: float | None = Field(
        default=30.0,
        gt=0,
        description="Logged predictions and feedback older than this are deleted by watch; "
        "unset keeps everything.",
    )
    personal_data: Literal["hash", "drop", "keep"] = Field(
        default="hash",
        description="What the prediction log keeps of the 'data.personal' columns: a keyed "
        "hash (HMAC-SHA256), nothing, or the value in clear.",
    )
    drift_refresh_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How often the server advances the drift windows and refreshes the drift "
        "gauges of /metrics; 0 turns the gauges off.",
    )
    log_durability: Literal["durable", "async"] = Field(
        default="durable",
        description="'durable': a prediction is answered only after its log row is committed "
        "(concurrent requests share one commit), so an acknowledged prediction is never "
        "lost; 'async': rows are queued and written in the background, and a crash loses "
        "what was queued.",
    )
    log_commit_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a durable prediction waits for its log commit; past it the "
        "request gets 503 rather than hanging.",
    )
    sketch_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Length of the time buckets whose per-column sketches the server writes "
        "with each log batch (drift over any time range reads them); 0 turns them off.",
    )
    drift: DriftConfig = DriftConfig()
    alerts: AlertsConfig = AlertsConfig()
    retraining: RetrainingConfig = RetrainingConfig()
    canary: CanaryConfig = CanaryConfig()
    rollback: RollbackConfig = RollbackConfig()


class RegistryConfig(_Strict):
    """Where models and their bundles are stored."""

    home: str = Field(default=".shipyard", description="Folder for the default SQLite store.")
    url: str | None = Field(
        default=None, description="SQLAlchemy URL; defaults to SQLite under 'home'."
    )
    artifacts: str | None = Field(
        default=None, description="Folder for bundles; defaults to 'home'/artifacts."
    )

    def resolved_url(self) -> str:
        """Return the store URL, defaulting to SQLite under ``home``."""
        return self.url or f"sqlite:///{Path(self.home) / 'registry.db'}"

    def resolved_artifacts(self) -> Path:
        """Return the artifact folder, defaulting to ``home/artifacts``."""
        return Path(self.artifacts) if self.artifacts else Path(self.home) / "artifacts"


class RecommendationConfig(_Strict):
    """How interactions are read and recommenders trained (``task: recommendation``)."""

    user: str = Field(description="The column holding user ids.")
    item: str = Field(description="The column holding item ids.")
    rating: str | None = Field(default=None, description="The rating column (explicit feedback).")
    time: str | None = Field(
        default=None, description="The timestamp column; the split is time-ordered by it."
    )
    feedback: Literal["explicit", "implicit"] = Field(
        default="implicit",
        description="'explicit': ratings, kept as positives at or above positive_threshold; "
        "'implicit': every row is a positive event (click, purchase).",
    )
    positive_threshold: float = Field(
        default=4.0, description="Lowest rating that counts as a positive (explicit only)."
    )
    k: int = Field(default=10, ge=1, le=1000, description="List length evaluated (NDCG@k ...).")
    test_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    models: tuple[Literal["als", "bpr"], ...] = Field(default=("als", "bpr"), min_length=1)
    factors: int = Field(default=64, ge=1, le=1024)
    iterations: int = Field(default=15, ge=1, le=1000)
    regularization: float = Field(default=0.05, ge=0)
    alpha: float = Field(default=10.0, gt=0, description="ALS confidence scaling.")
    bpr_iterations: int = Field(default=100, ge=1, le=10_000, description="BPR epochs.")
    learning_rate: float = Field(default=0.05, gt=0, description="BPR step size.")
    items_source: str | None = Field(
        default=None, description="A table of item details, for example 'dataset:xwines:items'."
    )
    item_fields: tuple[str, ...] = Field(
        default=(), description="Columns of items_source served with each recommendation."
    )


class ClusteringConfig(_Strict):
    """Clustering settings (``task: clustering``): candidates and how one is chosen."""

    methods: tuple[Literal["kmeans", "hdbscan"], ...] = Field(
        default=("kmeans", "hdbscan"), min_length=1, description="Families tried."
    )
    k_values: tuple[int, ...] = Field(
        default=(2, 3, 4, 5, 6, 8),
        min_length=1,
        description="Numbers of clusters k-means tries; one is chosen by silhouette and "
        "stability across seeds.",
    )
    min_cluster_sizes: tuple[int, ...] = Field(
        default=(25, 50, 100),
        min_length=1,
        description="HDBSCAN's min_cluster_size values tried.",
    )
    pca_components: int | None = Field(
        default=None,
        ge=1,
        description="Cluster on this many principal components of the standardised columns "
        "(unset: on the standardised columns themselves).",
    )
    seeds: int = Field(
        default=3, ge=2, le=10, description="Seeds (and subsamples) per candidate for stability."
    )
    min_stability: float = Field(
        default=0.75,
        ge=0,
        le=1,
        description="Least mean adjusted Rand index between seeds for a candidate to be chosen "
        "by silhouette (when none reaches it, the most stable one is chosen).",
    )
    sample_rows: int = Field(
        default=2000,
        ge=100,
        description="Rows the silhouette and the stability are computed on (a seeded sample).",
    )
    exemplars: int = Field(
        default=2000,
        ge=10,
        description="Clustered training points HDBSCAN keeps to assign new points to.",
    )


class AnomalyConfig(_Strict):
    """Anomaly detection settings (``task: anomaly_detection``)."""

    methods: tuple[Literal["isolation_forest", "lof"], ...] = Field(
        default=("isolation_forest", "lof"), min_length=1, description="Families tried."
    )
    contamination: float | Literal["auto"] = Field(
        default="auto",
        description="Expected share of anomalies: sets the decision threshold (a number in "
        "(0, 0.5]), or 'auto' (IsolationForest's paper offset; LOF's score 1.5).",
    )
    pca_components: int | None = Field(
        default=None, ge=1, description="Score on this many principal components."
    )
    trees: int = Field(default=100, ge=1, le=2000, description="IsolationForest trees.")
    neighbors: int = Field(default=20, ge=1, le=500, description="LOF's number of neighbours.")
    reference_rows: int = Field(
        default=2000,
        ge=50,
        description="Training rows LOF keeps as its reference points (a seeded sample).",
    )
    k: int = Field(
        default=50,
        ge=1,
        description="Precision at k: the share of true anomalies among the k highest scores "
        "of the test rows (when data.target holds known labels).",
    )

    @model_validator(mode="after")
    def _contamination_in_range(self) -> AnomalyConfig:
        if self.contamination != "auto" and not 0 < self.contamination <= 0.5:
            raise ValueError(
                "anomaly.contamination must be 'auto' or a share in (0, 0.5], for example "
                f"0.05; got {self.contamination!r}"
            )
        return self


class ForecastingConfig(_Strict):
    """How a time series table is read, checked and forecast (``task: forecasting``)."""

    time: str = Field(description="The column holding each row's timestamp.")
    series: str | None = Field(
        default=None, description="The column naming the series of a row (many in one table)."
    )
    horizon: int = Field(
        default=14, ge=1, le=10_000, description="Steps ahead the model forecasts at most."
    )
    frequency: str | None = Field(
        default=None,
        description="The pandas frequency of the stamps ('D', 'h', 'MS', 'W-SUN'); unset: "
        "inferred, and every series checked against it.",
    )
    season_length: int | None = Field(
        default=None, ge=1, le=10_000, description="Steps per season; unset: from the frequency."
    )
    fill: Literal["error", "zero", "previous", "interpolate"] = Field(
        default="error",
        description="What a missing stamp gets: refused ('error'), 0, the previous value, or "
        "a linear interpolation.",
    )
    covariates: tuple[str, ...] = Field(
        default=(),
        description="Columns known in advance (calendar, holidays, prices): a forecast "
        "request gives their future values.",
    )
    windows: int = Field(default=5, ge=2, le=200, description="Rolling-origin backtest windows.")
    step: int | None = Field(
        default=None, ge=1, description="Steps between backtest origins; unset: the horizon."
    )
    models: tuple[Literal["seasonal_naive", "drift", "auto_ets", "lightgbm"], ...] = Field(
        default=("seasonal_naive", "drift", "auto_ets", "lightgbm"),
        min_length=1,
        description="Candidate families; auto_ets needs the 'forecast' extra (statsforecast).",
    )
    level: float = Field(
        default=0.9, gt=0, lt=1, description="Coverage of the conformal prediction intervals."
    )
    lightgbm_rounds: int = Field(default=200, ge=1, le=10_000, description="Boosting rounds.")


class TextConfig(_Strict):
    """Text classification settings (``task: text_classification``)."""

    columns: tuple[str, ...] = Field(
        default=(), description="Text columns; empty detects free-text columns."
    )
    candidates: tuple[Literal["tfidf_word", "tfidf_word_char", "minilm_embedding"], ...] = Field(
        default=("tfidf_word", "tfidf_word_char"),
        min_length=1,
        description="minilm_embedding needs the 'text' extra (torch).",
    )
    word_ngrams: tuple[int, int] = Field(default=(1, 2), description="Word n-gram range.")
    char_ngrams: tuple[int, int] = Field(default=(2, 5), description="Character n-gram range.")
    min_df: int = Field(default=2, ge=1, description="Drop terms in fewer documents.")
    max_features: int = Field(default=50_000, ge=10, description="Terms kept per vectorizer.")
    regularization: tuple[float, ...] = Field(
        # The robust C first: a run cut to one setting still gets a usable model (C=1 shrinks
        # a rare class's probabilities below 0.5, costing label metrics such as F1).
        default=(10.0, 100.0, 1.0),
        min_length=1,
        description="C values tried first, in order (the portfolio); Optuna then searches C.",
    )
    explain_tokens: int = Field(default=5, ge=0, le=50, description="Tokens per explanation.")


class ImageConfig(_Strict):
    """Image classification settings (``task: image_classification``)."""

    column: str = Field(
        default="image",
        description="The image field of requests and of a CSV/Parquet source (paths or bytes).",
    )
    candidates: tuple[Literal["efficientnet_lite0", "small_cnn", "linear_pixels"], ...] = Field(
        default=("efficientnet_lite0", "small_cnn", "linear_pixels"),
        min_length=1,
        description="efficientnet_lite0 is transfer learning from ImageNet weights.",
    )
    size: int = Field(default=28, ge=8, le=512, description="Side (pixels) of the small models.")
    transfer_size: int = Field(
        default=64, ge=32, le=512, description="Side (pixels) the pretrained backbone sees."
    )
    epochs: int = Field(default=12, ge=1, description="Epochs of the models trained from scratch.")
    head_epochs: int = Field(default=60, ge=1, description="Epochs of the frozen-feature head.")
    finetune_epochs: int = Field(
        default=4, ge=0, description="Epochs fine-tuning the backbone's last blocks (0: none)."
    )
    finetune_blocks: int = Field(default=2, ge=1, le=16, description="Last blocks fine-tuned.")
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0)
    augment: bool = Field(default=True, description="Random flips and shifts while training.")
    max_bytes: int = Field(
        default=2_000_000, ge=1_000, description="Largest encoded image accepted (else 413)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: CUDA when present, else the CPU."
    )


class NotesGeneratorConfig(_Strict):
    """An OpenAI-compatible chat-completions endpoint that writes the answers (optional)."""

    url: str = Field(
        description="The API base URL up to /v1, e.g. http://127.0.0.1:8080/v1 (llama.cpp)."
    )
    model: str = Field(default="local", description="The model name the server expects.")
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the API key (never stored)."
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds to wait for a reply.")
    max_tokens: int = Field(default=300, ge=16, le=8192, description="The longest reply.")


class NotesConfig(_Strict):
    """Answers from a folder of notes (``task: retrieval_qa``); data.source is the question set."""

    folder: str = Field(description="The folder of Markdown, text, HTML and PDF notes.")
    question_column: str = Field(
        default="question", description="The question set's question column."
    )
    max_chars: int = Field(default=800, ge=100, le=4000, description="Longest chunk, in chars.")
    k: int = Field(default=5, ge=1, le=50, description="Chunks retrieved per question.")
    weight: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Hybrid weight of the dense score (0 keyword only, 1 dense only); "
        "unset tunes it on the validation questions.",
    )
    threshold: float = Field(
        default=0.2,
        ge=-1,
        le=1,
        description="Refuse to answer when the best chunk's cosine is below this.",
    )
    validation_share: float = Field(
        default=0.4, gt=0, lt=1, description="Questions used to tune the weight, not to test."
    )
    cache: str | None = Field(
        default=None,
        description="Embedding cache for incremental re-indexing; default registry.home/"
        "notes-cache.sqlite.",
    )
    generator: NotesGeneratorConfig | None = Field(
        default=None, description="Write answers with this endpoint; unset answers extractively."
    )
    index_backend: Literal["sqlite", "postgresql"] = Field(
        default="sqlite",
        description="Where the served index answers keyword queries: the bundle's SQLite file "
        "(FTS5 BM25), or a copy in the registry's PostgreSQL database (full-text search; needs "
        "registry.url on PostgreSQL and shipyard[postgres]).",
    )


ENGINE_URL = re.compile(
    r"^(local|dask://(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\])(:(?P<port>\d{1,5}))?)$"
)
DASK_DEFAULT_PORT = 8786


class EngineConfig(_Strict):
    """Where tuning folds, batch scoring, profiling and distributed training run.

    ``local`` (the default) runs everything in this process and imports nothing of Dask;
    ``dask://HOST:PORT`` sends the work to the Dask scheduler there (see docs/scale.md).
    """

    url: str = Field(
        default="local",
        description="'local' (in process) or 'dask://HOST[:PORT]' (a Dask scheduler; port 8786).",
    )
    optuna_storage: str | None = Field(
        default=None,
        description="Where Optuna keeps the studies: unset for memory, 'journal:PATH' for a "
        "journal file, 'registry' for the registry's database, or an SQLAlchemy URL.",
    )
    connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the scheduler and its workers."
    )
    distributed_training: bool = Field(
        default=False,
        description="Train LightGBM with lightgbm.dask on data.source read as partitions on the "
        "workers, instead of the in-memory search (needs a Dask engine).",
    )
    trees: int = Field(
        default=300, ge=1, le=100_000, description="Boosting rounds of distributed training."
    )
    learning_rate: float = Field(
        default=0.05, gt=0, le=1, description="Learning rate of distributed training."
    )
    num_leaves: int = Field(
        default=31, ge=2, le=131_072, description="Leaves per tree of distributed training."
    )

    @model_validator(mode="after")
    def _url_is_known(self) -> EngineConfig:
        if not ENGINE_URL.match(self.url):
            raise ValueError(
                f"engine.url must be 'local' or 'dask://HOST:PORT' (a Dask scheduler, for "
                f"example dask://127.0.0.1:8786); got {self.url!r}"
            )
        if self.distributed_training and self.kind == "local":
            raise ValueError(
                "engine.distributed_training needs a cluster: set engine.url to "
                "dask://HOST:PORT (see docs/scale.md)"
            )
        return self

    @property
    def kind(self) -> str:
        """``local`` or ``dask``."""
        return "local" if self.url == "local" else "dask"

    @property
    def scheduler_address(self) -> str:
        """The Dask scheduler as Dask spells it, ``tcp://HOST:PORT``."""
        found = ENGINE_URL.match(self.url)
        if found is None or self.kind != "dask":
            raise ConfigError(f"engine.url {self.url!r} names no Dask scheduler.")
        return f"tcp://{found['host']}:{found['port'] or DASK_DEFAULT_PORT}"


class PipelineConfig(_Strict):
    """The whole pipeline spec, as read from ``shipyard.yaml``."""

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    # Any registered task's name (``shipyard tasks`` lists them); checked when training starts.
    task: str = Field(default="auto", min_length=1)
    metric: Metric = "auto"
    positive_class: str | int | None = None
    seed: int = 42
    sensitive: tuple[str, ...] = ()
    data: DataConfig
    split: SplitConfig = SplitConfig()
    cleaning: CleaningConfig = CleaningConfig()
    leakage: LeakageConfig = LeakageConfig()
    validation: ValidationConfig = ValidationConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    fairness: FairnessConfig = FairnessConfig()
    serving: ServingConfig = ServingConfig()
    stream: StreamConfig = StreamConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    registry: RegistryConfig = RegistryConfig()
    engine: EngineConfig = EngineConfig()
    recommendation: RecommendationConfig | None = None
    text: TextConfig | None = None
    clustering: ClusteringConfig | None = None
    anomaly: AnomalyConfig | None = None
    forecasting: ForecastingConfig | None = None
    image: ImageConfig | None = None
    notes: NotesConfig | None = None

    @model_validator(mode="after")
    def _metric_fits_task(self) -> PipelineConfig:
        if self.task == "regression" and self.metric in CLASSIFICATION_METRICS:
            raise ValueError(
                f"metric '{self.metric}' is for classification, but task is "
                "'regression'; use one of rmse, mae, r2"
            )
        if self.task in ("binary", "multiclass") and self.metric in REGRESSION_METRICS:
            raise ValueError(
                f"metric '{self.metric}' is for regression, but task is "
                f"'{self.task}'; use one of roc_auc, accuracy, f1, log_loss"
            )
        if self.data.target is not None and self.data.target in self.data.drop:
            raise ValueError(f"data.drop lists the target '{self.data.target}'; remove it there")
        return self

    @model_validator(mode="after")
    def _applied_mitigation_is_defined(self) -> PipelineConfig:
        fairness = self.fairness
        if fairness.apply == "none":
            return self
        if not self.sensitive:
            raise ValueError(
                f"fairness.apply: {fairness.apply} needs the sensitive columns whose groups get "
                "their own thresholds; set 'sensitive' (for example [sex])"
            )
        bound = fairness.thresholds.get("demographic_parity_difference")
        if fairness.apply_target is None and bound is None:
            raise ValueError(
                f"fairness.apply: {fairness.apply} needs a demographic parity bound to fit to: "
                "set fairness.thresholds.demographic_parity_difference (the gate) or "
                "fairness.apply_target"
            )
        if self.engine.distributed_training:
            raise ValueError(
                "fairness.apply is not available with engine.distributed_training; train in "
                "process, or set fairness.apply: none"
            )
        return self


# Each CLI flag and the config key it sets. The CLI reads this table, so the two cannot drift.
CLI_FLAGS: dict[str, str] = {
    "name": "name",
    "data": "data.source",
    "test_data": "data.test_source",
    "target": "data.target",
    "drop": "data.drop",
    "encoding": "data.encoding",
    "header": "data.header",
    "unknown_categories": "data.unknown_categories",
    "personal": "data.personal",
    "task": "task",
    "metric": "metric",
    "positive_class": "positive_class",
    "seed": "seed",
    "sensitive": "sensitive",
    "fairness_mitigation": "fairness.apply",
    "time_budget": "training.time_budget",
    "cv_folds": "training.cv_folds",
    "models": "training.models",
    "n_trials": "training.n_trials",
    "max_latency_ms": "training.max_latency_ms",
    "registry": "registry.url",
    "home": "registry.home",
    "host": "serving.host",
    "port": "serving.port",
    "policy": "validation.policy",
    "quarantine": "validation.quarantine_path",
    "workers": "serving.workers",
    "server": "serving.server",
    "no_auth": "serving.auth",
    "keys_file": "serving.keys_file",
    "request_timeout": "serving.request_timeout",
    "cors_origin": "serving.cors_origins",
    "batching": "serving.batching",
    "poll_seconds": "serving.poll_seconds",
    "canary": "serving.canary",
    "canary_share": "serving.canary_share",
    "shadow": "serving.shadow",
    "access_log": "serving.access_log",
    "rate_limit": "serving.rate_limit.requests_per_second",
    "rate_burst": "serving.rate_limit.burst",
    "ui": "serving.ui",
    "insecure_cookie": "serving.ui_secure_cookie",
    "chunk_size": "serving.chunk_size",
    "engine": "engine.url",
    "window_size": "monitoring.window_size",
    "interval": "monitoring.interval_seconds",
    "webhook": "monitoring.alerts.webhook",
    "gate_share": "monitoring.retraining.gate_share",
    "min_gate_rows": "monitoring.retraining.min_gate_rows",
    "source": "stream.source",
    "subject": "stream.subject",
    "to": "stream.to",
    "dead_letter": "stream.dead_letter",
    "group": "stream.group",
    "max_batch_size": "stream.max_batch_size",
    "max_batch_wait_ms": "stream.max_batch_wait_ms",
    "max_in_flight": "stream.max_in_flight",
    "ack_wait": "stream.ack_wait",
    "metrics_port": "stream.metrics_port",
}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read ``shipyard.yaml``, apply dotted-key overrides, and validate.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        ``{"training.time_budget": 60, ...}``; each key must exist in the schema.

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or does not validate.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"Config file '{path}' does not exist. Create it, or pass the "
            "settings as flags (see 'shipyard train --help')."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(
            f"Config file '{path}' must hold a mapping of keys, got {type(raw).__name__}."
        )
    return load_config_dict(apply_overrides(raw, overrides or {}), source=str(path))


def load_config_dict(raw: dict[str, Any], source: str = "config") -> PipelineConfig:
    """Validate a config mapping, turning pydantic errors into one readable :class:`ConfigError`.

    Examples
    --------
    >>> load_config_dict({"name": "x", "data": {"source": "a.csv", "target": "y"},
    ...                   "metric": "auc"})
    Traceback (most recent call last):
    ...
    shipyard.errors.ConfigError: Invalid configuration:
      - metric: 'auc' is not allowed; expected one of 'auto', 'roc_auc', 'accuracy', 'f1', \
'log_loss', 'rmse', 'mae', 'r2'. Did you mean 'roc_auc'?
    """
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as error:
        lines = [_describe(item) for item in error.errors()]
        where = "" if source == "config" else f" in {source}"
        raise ConfigError(
            f"Invalid configuration{where}:\n" + "\n".join(f"  - {line}" for line in lines)
        ) from None


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted keys set; unknown keys are caught at validation."""
    result = _deep_copy(raw)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = result
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"Cannot set '{dotted}': '{part}' is not a section.")
            node = child
        node[leaf] = value
    return result


def dump_config(config: PipelineConfig) -> str:
    """Serialise a config to YAML that :func:`load_config` reads back to an equal config."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _deep_copy(value) if isinstance(value, dict) else value for key, value in raw.items()
    }


def _describe(item: Any) -> str:
    location = [str(part) for part in item["loc"] if not isinstance(part, int)]
    # Items of a list keep their position: "monitoring.alerts.rules[1].kind".
    key = "".join(
        f"[{part}]" if isinstance(part, int) else f"{'.' if index else ''}{part}"
        for index, part in enumerate(item["loc"])
    )
    if item["type"] == "extra_forbidden":
        parent = _model_at(location[:-1])
        known = list(parent.model_fields) if parent else []
        hint = difflib.get_close_matches(location[-1], known, n=1)
        if hint:
            return f"unknown key '{key}'. Did you mean '{hint[0]}'?"
        return f"unknown key '{key}'. Valid keys here: {', '.join(known)}."
    if item["type"] == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        options = [option.strip(" '") for option in expected.replace(" or ", ", ").split(",")]
        hint = difflib.get_close_matches(str(item.get("input")), options, n=1)
        suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
        allowed = ", ".join(f"'{option}'" for option in options)
        return (
            f"{key}: {item.get('input')!r} is not allowed; expected one of {allowed}.{suggestion}"
        )
    if item["type"] == "missing":
        return f"{key}: this key is required."
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{key}: {message}" if key else message


def _model_at(location: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = PipelineConfig
    for part in location:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if typing.get_origin(annotation) is tuple:  # a tuple of sections, e.g. alert rules
            annotation = typing.get_args(annotation)[0]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
