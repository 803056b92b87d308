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
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.errors import ConfigError

__all__ = [
    "CLI_FLAGS",
    "DataConfig",
    "EvaluationConfig",
    "PipelineConfig",
    "RegistryConfig",
    "ServingConfig",
    "SplitConfig",
    "TrainingConfig",
    "apply_overrides",
    "dump_config",
    "load_config",
    "load_config_dict",
]

Task = Literal["auto", "binary", "multiclass", "regression"]
Metric = Literal["auto", "roc_auc", "accuracy", "f1", "log_loss", "rmse", "mae", "r2"]
ModelFamily = Literal["linear", "lightgbm", "xgboost", "random_forest", "extra_trees", "mlp"]

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
    target: str = Field(description="The column to predict.")
    drop: tuple[str, ...] = Field(default=(), description="Columns never used as features.")


class SplitConfig(_Strict):
    """How the source is split into train, validation and test parts."""

    test_size: float = Field(default=0.2, gt=0, lt=1)
    validation_size: float = Field(default=0.1, gt=0, lt=1)
    stratify: bool = Field(default=True, description="Stratify classification splits by class.")

    @model_validator(mode="after")
    def _sizes_leave_training_rows(self) -> SplitConfig:
        if self.test_size + self.validation_size >= 0.9:
            raise ValueError(
                "split.test_size + split.validation_size must be below 0.9 so that enough "
                f"rows remain for training; got {self.test_size} + {self.validation_size}"
            )
        return self


class TrainingConfig(_Strict):
    """Which candidates are trained and how they are compared."""

    time_budget: float = Field(
        default=120.0,
        gt=0,
        description="Seconds for model development; the search stops at search_share of it.",
    )
    cv_folds: int = Field(default=5, ge=2, le=20)
    cv_repeats: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Repeats of k-fold CV; default 3 below 2,000 training rows, else 1.",
    )
    models: tuple[ModelFamily, ...] = Field(
        default=("linear", "lightgbm", "xgboost", "random_forest", "extra_trees", "mlp"),
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
        description="Share of time_budget for the search; refits and costs use the rest.",
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


class ServingConfig(_Strict):
    """Options of ``shipyard serve``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_records: int = Field(default=10_000, ge=1, description="Records per request, at most.")
    unknown_fields: Literal["reject", "ignore"] = Field(
        default="reject", description="What to do with request fields the contract lacks."
    )


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


class PipelineConfig(_Strict):
    """The whole pipeline spec, as read from ``shipyard.yaml``."""

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    task: Task = "auto"
    metric: Metric = "auto"
    positive_class: str | int | None = None
    seed: int = 42
    sensitive: tuple[str, ...] = ()
    data: DataConfig
    split: SplitConfig = SplitConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    serving: ServingConfig = ServingConfig()
    registry: RegistryConfig = RegistryConfig()

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
        if self.data.target in self.data.drop:
            raise ValueError(f"data.drop lists the target '{self.data.target}'; remove it there")
        return self


# Each CLI flag and the config key it sets. The CLI reads this table, so the two cannot drift.
CLI_FLAGS: dict[str, str] = {
    "name": "name",
    "data": "data.source",
    "test_data": "data.test_source",
    "target": "data.target",
    "drop": "data.drop",
    "task": "task",
    "metric": "metric",
    "positive_class": "positive_class",
    "seed": "seed",
    "sensitive": "sensitive",
    "time_budget": "training.time_budget",
    "cv_folds": "training.cv_folds",
    "models": "training.models",
    "n_trials": "training.n_trials",
    "max_latency_ms": "training.max_latency_ms",
    "registry": "registry.url",
    "home": "registry.home",
    "host": "serving.host",
    "port": "serving.port",
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
    key = ".".join(location)
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
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
