"""The task contract: what every kind of model tells the pipeline, serving and monitoring.

A task (tabular prediction, text classification, recommendation, ...) is one package under
:mod:`shipyard.tasks` holding a :class:`Task` subclass. The pipeline driver
(:mod:`shipyard.pipeline`) owns the order of the steps and asks the task at each one:

``read -> contract -> split -> fit (search, select, export) -> check_parity -> evaluate``

and then registers the bundle and applies the gates itself. Serving asks the task how to load a
bundle (:meth:`Task.load`) and which routes it adds; monitoring asks how logged rows become
values (:meth:`Task.monitoring`); the retraining loop asks how labelled rows join the data and
how two versions are compared (:meth:`Task.retrain_steps`); the config check asks which keys
the task honours (:attr:`Capabilities.unsupported_keys`). Nothing outside ``tasks/`` compares a
task's name: it asks the task.

Tasks never import the pipeline driver, the registry or the front doors. Built-in tasks are
listed in :data:`BUILTIN_TASKS`; other packages add tasks through the ``shipyard.tasks``
entry-point group, loaded on first use (see docs/tasks.md).

Examples
--------
>>> task = task_for_config_name("regression")
>>> task.name
'tabular'
>>> task_for_manifest({"task": "text_classification"}).name
'text_classification'
"""

from __future__ import annotations

import difflib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from shipyard.errors import ConfigError, DataError
from shipyard.manifest import Manifest

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig
    from shipyard.data.contract import Contract
    from shipyard.evaluation.metrics import MetricValue
    from shipyard.evaluation.report import DocumentSections
    from shipyard.monitoring.adapters import TaskMonitoring
    from shipyard.monitoring.gate import GateResult
    from shipyard.tasks.try_it import TryItAnswer, TryItForm
    from shipyard.training.trainer import CandidateResult

__all__ = [
    "BUILTIN_TASKS",
    "ENTRY_POINT_GROUP",
    "TABLE_ONLY_KEYS",
    "Capabilities",
    "EvaluatedModel",
    "FittedModel",
    "PreparedData",
    "Reporter",
    "RetrainSteps",
    "RunContext",
    "SplitData",
    "Task",
    "available_tasks",
    "task_by_name",
    "task_for_config",
    "task_for_config_name",
    "task_for_manifest",
]

Reporter = Callable[[str], None]
ENTRY_POINT_GROUP = "shipyard.tasks"
# The keys only a task that learns from rows of one table honours: a separate test table,
# grouped or time-ordered splits, sensitive columns and the fitted cleaning.
TABLE_ONLY_KEYS = (
    "data.test_source",
    "split.group_column",
    "split.time_column",
    "sensitive",
    "cleaning",
    "data.unknown_categories",
)
# Built-in tasks: name -> "module:Class", imported only when the task is used.
BUILTIN_TASKS: dict[str, str] = {
    "tabular": "shipyard.tasks.tabular.task:TabularTask",
    "text_classification": "shipyard.tasks.text.task:TextClassificationTask",
    "recommendation": "shipyard.tasks.recommendation.task:RecommendationTask",
    "clustering": "shipyard.tasks.clustering.task:ClusteringTask",
    "anomaly_detection": "shipyard.tasks.anomaly.task:AnomalyDetectionTask",
    "forecasting": "shipyard.tasks.forecasting.task:ForecastingTask",
    "image_classification": "shipyard.tasks.image.task:ImageClassificationTask",
    "retrieval_qa": "shipyard.tasks.notes.task:RetrievalQATask",
}


@dataclass(frozen=True)
class Capabilities:
    """What a task supports, declared once; the config check, serving and monitoring read it.

    Parameters
    ----------
    config_tasks
        Values of the config's ``task`` key this task trains (``auto`` belongs to tabular).
    manifest_tasks
        Values of a bundle manifest's ``task`` this task loads.
    unsupported_keys
        Dotted config keys the task does not honour: a config that sets one is refused with
        an error naming the task and the key, instead of being silently ignored.
    fairness
        Fairness metrics and the fairness gate over ``sensitive`` columns.
    explanations
        Per-prediction explanations (``/explain``, ``shipyard explain``).
    live_metrics
        Realised metrics from labelled feedback, used by canary and rollback decisions.
    traffic_split
        Canary, shadow and hot swap of served versions.
    feedback_unit
        What one unit of the retraining gate's sample is (``labels``, ``users``).
    protocols
        The serving protocols the task's predictor speaks: ``predict`` (the own JSON API,
        the Open Inference Protocol and ``/invocations``), ``recommend`` (``/recommend`` and
        ``/similar``), ``forecast`` (``/forecast`` and ``/actuals``); serving builds the routes
        of each.
    target
        Whether ``data.target`` is ``required`` (the column to predict), ``optional`` (known
        labels an unsupervised task evaluates with) or refused (``none``).
    """

    config_tasks: tuple[str, ...]
    manifest_tasks: tuple[str, ...]
    unsupported_keys: tuple[str, ...] = ()
    fairness: bool = False
    explanations: bool = False
    live_metrics: bool = True
    traffic_split: bool = True
    feedback_unit: str = "labels"
    protocols: tuple[str, ...] = ("predict",)
    target: Literal["required", "optional", "none"] = "required"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, the shape ``shipyard tasks --json`` prints."""
        return {
            "config_tasks": list(self.config_tasks),
            "manifest_tasks": list(self.manifest_tasks),
            "unsupported_keys": list(self.unsupported_keys),
            "fairness": self.fairness,
            "explanations": self.explanations,
            "live_metrics": self.live_metrics,
            "traffic_split": self.traffic_split,
            "feedback_unit": self.feedback_unit,
            "protocols": list(self.protocols),
            "target": self.target,
        }


@dataclass
class PreparedData:
    """What :meth:`Task.read` and :meth:`Task.contract` produced.

    ``frame`` holds every usable training row (it is fingerprinted for the lineage), ``test``
    a separate test table when the config names one; ``payload`` is the task's own state.
    """

    frame: Any
    test: Any = None
    contract: Contract | None = None
    notes: list[str] = field(default_factory=list)
    data_section: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class SplitData:
    """The rows :meth:`Task.split` set aside: train, validation (may be empty) and test.

    ``kind`` is what the label is (``binary``, ``multiclass``, ``regression`` or the task's
    own), ``classes`` the class labels in output order.
    """

    prepared: PreparedData
    train: Any
    validation: Any
    test: Any
    kind: str
    metric: str
    classes: list[Any] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """What the driver lends every training hook: the reporter and where work runs."""

    report: Reporter
    engine: Any = None
    optuna_storage: str | None = None


@dataclass
class FittedModel:
    """The chosen, exported model: the served predictor and what the search found."""

    predictor: Any
    best: str
    leaderboard: list[CandidateResult]
    params: dict[str, Any]
    verdict: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    threshold: dict[str, Any] | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluatedModel:
    """The test metrics, and the manifest entries and files the task's bundle holds.

    ``manifest`` holds the task's own manifest entries (``task``, ``model``, its references
    and sections); the driver adds the common ones (metrics, leaderboard, parity, rows, notes,
    lineage). ``files`` are the bundle's files by relative path.
    """

    test_metrics: dict[str, MetricValue]
    manifest: dict[str, Any]
    files: dict[str, bytes]
    test_outputs: Any = None
    plots: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrainSteps:
    """The task-specific parts of a turn of the retraining loop.

    ``extend(config, learn, path)`` writes the champion's data plus the labelled rows
    ``learn`` to ``path`` (Parquet) and returns ``(rows, new rows)``; ``gate(champion,
    challenger, challenger_manifest, hold_out, min_rows, min_improvement)`` compares two
    loaded predictors on the held-out labelled rows.
    """

    extend: Callable[[PipelineConfig, list[dict[str, Any]], Path], tuple[int, int]]
    gate: Callable[[Any, Any, Manifest, list[dict[str, Any]], int, float], GateResult]


class Task(ABC):
    """One kind of model, from data to a served, monitored, retrained bundle.

    Subclasses set :attr:`name`, :attr:`summary` and :attr:`capabilities`, and implement the
    hooks. The driver calls the training hooks in order: :meth:`read`, :meth:`contract`,
    :meth:`split`, :meth:`fit`, :meth:`check_parity`, :meth:`evaluate`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    # The target name used when the command line gives none: sources whose labels are not a
    # named column (an image task's class folders) set it; ``None`` requires ``--target``.
    default_target: ClassVar[str | None] = None

    # Training -------------------------------------------------------------------------------

    @abstractmethod
    def read(self, config: PipelineConfig, context: RunContext) -> PreparedData:
        """Read the training data (and a separate test table) the config names."""

    @abstractmethod
    def contract(
        self, data: PreparedData, config: PipelineConfig, context: RunContext
    ) -> PreparedData:
        """Infer and enforce the data contract; clean the rows the model will learn from."""

    @abstractmethod
    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Set aside validation and test rows; decide the label's kind, metric and classes."""

    @abstractmethod
    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Search the candidates, choose one and export it to the runtime format."""

    @abstractmethod
    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Compare the exported predictor with the trained model; raise ExportError if apart."""

    @abstractmethod
    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
    ) -> EvaluatedModel:
        """Score the test rows through the exported path; build the bundle's task entries."""

    def mitigate(
        self,
        fitted: FittedModel,
        evaluated: EvaluatedModel,
        data: SplitData,
        config: PipelineConfig,
        context: RunContext,
    ) -> tuple[FittedModel, EvaluatedModel]:
        """Return the fairness-mitigated model ``fairness.apply`` asks for, evaluated.

        The driver registers it as a child of the base version. Tasks without fairness
        refuse (the default).

        Raises
        ------
        ConfigError
            When the task cannot apply the mitigation.
        """
        raise ConfigError(
            f"The {self.name} task cannot apply fairness mitigation (fairness.apply is "
            f"{config.fairness.apply!r}); set fairness.apply: none."
        )

    # Serving and monitoring ------------------------------------------------------------------

    @abstractmethod
    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Build the served predictor from a verified bundle."""

    def load_with_store(
        self, directory: Path, manifest: Manifest, unknown_fields: str, store_url: str
    ) -> Any:
        """Build the predictor of a registered version, given the registry's database URL.

        The same as :meth:`load` unless the task keeps something in that database (the notes
        task's PostgreSQL index).
        """
        return self.load(directory, manifest, unknown_fields)

    @abstractmethod
    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Describe how the version in ``directory`` is monitored."""

    @abstractmethod
    def retrain_steps(self) -> RetrainSteps:
        """Return how labelled rows join the data and how two versions are compared."""

    def route_builders(self) -> Sequence[Callable[[Any], Sequence[Any]]]:
        """Routes the task adds to the server (``context -> routes``); none by default."""
        return ()

    def label_kind(self, manifest: Manifest) -> str | None:
        """Return what a served answer's label is (``binary``, ``multiclass``, ``regression``).

        ``None`` (the default) for tasks whose answers are not scored against labels one by
        one: live metrics then count requests and errors only.
        """
        return None

    def encode_labels(self, labels: Sequence[Any], manifest: Manifest) -> Any:
        """Encode feedback labels as the metrics expect (class indices, or numbers)."""
        raise DataError(f"The {self.name} task does not score labelled rows.")

    def try_it(self, manifest: Manifest, contract: Contract | None, predictor: Any) -> TryItForm:
        """Return the form a person fills in to try one request (the UI, the Gradio app).

        ``contract`` is the bundle's data contract (``None`` when it has none) and
        ``predictor`` the loaded model, for forms that list what it knows (a recommender's
        users). The default draws one field per contract column for tasks that speak ``predict``
        (:func:`~shipyard.tasks.try_it.form_from_contract`); any other task gets no form and
        a message, until it returns its own.
        """
        from shipyard.tasks.try_it import TryItForm, form_from_contract

        if "predict" not in self.capabilities.protocols:
            return TryItForm.unavailable(
                f"The {self.name} task offers no try-it form yet; call the model's API."
            )
        return form_from_contract(contract)

    def try_it_answer(
        self, predictor: Any, manifest: Manifest, record: dict[str, Any]
    ) -> TryItAnswer:
        """Answer one record of the try-it form (built by :meth:`try_it`) with ``predictor``.

        The default asks a ``predict``-protocol predictor; its answer's probabilities and any
        explanation it carries are shown.

        Raises
        ------
        DataError
            When the task has no try-it answer, or the record breaks the contract.
        """
        from shipyard.tasks.try_it import predict_answer

        if "predict" not in self.capabilities.protocols:
            raise DataError(
                f"The {self.name} task offers no try-it form yet; call the model's API."
            )
        return predict_answer(predictor.predict_records([record])[0])

    def document_sections(self) -> DocumentSections:
        """Return the task's own blocks of the model card and the report (tabular by default)."""
        from shipyard.evaluation.report import TABULAR_SECTIONS

        return TABULAR_SECTIONS

    # Configuration ---------------------------------------------------------------------------

    @abstractmethod
    def small_config(self, folder: Path) -> dict[str, Any]:
        """Write a small sample of real data under ``folder``; return a fast config for it.

        The common checks (``tests/tasks/test_common.py``) train every registered task from
        this config, as scikit-learn's estimator checks build each estimator from its test
        parameters. The registry is set by the caller.
        """

    def check_config(self, config: PipelineConfig) -> None:
        """Refuse a config that sets a key this task does not honour.

        Raises
        ------
        ConfigError
            Naming the task and the key.
        """
        from shipyard.config import PipelineConfig

        self._check_target(config)
        defaults = _defaults_of(PipelineConfig, config)
        for key in self.capabilities.unsupported_keys:
            if _lookup(config, key) != _lookup(defaults, key):
                raise ConfigError(
                    f"The {self.name} task does not honour '{key}' (set to "
                    f"{_lookup(config, key)!r}); remove it from the config."
                )

    def _check_target(self, config: PipelineConfig) -> None:
        """Refuse a missing target where the task needs one, or one it cannot use."""
        needs = self.capabilities.target
        if needs == "required" and config.data.target is None:
            raise ConfigError(
                f"The {self.name} task needs data.target, the column to predict; set it in "
                "the config (or pass --target)."
            )
        if needs == "none" and config.data.target is not None:
            raise ConfigError(
                f"The {self.name} task learns without labels, but data.target is set to "
                f"{config.data.target!r}; remove it (list the column in data.drop to keep it "
                "out of the features)."
            )

    def describe(self) -> dict[str, Any]:
        """Name, summary and capabilities, JSON-ready."""
        return {
            "name": self.name,
            "summary": self.summary,
            "capabilities": self.capabilities.as_dict(),
        }


def _defaults_of(model: Any, config: PipelineConfig) -> Any:
    """Return a config with every optional key at its default (the required ones copied)."""
    return model.model_validate(
        {"name": config.name, "data": {"source": config.data.source, "target": config.data.target}}
    )


def _lookup(config: Any, dotted: str) -> Any:
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


# The registry of tasks ----------------------------------------------------------------------

_loaded: dict[str, Task] = {}


def _entry_points() -> dict[str, str]:
    """Tasks other packages registered: name -> "module:Class"."""
    found: dict[str, str] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = entry.value
    return found


def _task_paths() -> dict[str, str]:
    """Built-in tasks first; an entry point cannot replace a built-in task."""
    return {
        **BUILTIN_TASKS,
        **{name: path for name, path in _entry_points().items() if name not in BUILTIN_TASKS},
    }


def _instantiate(name: str, path: str) -> Task:
    module_name, _, attribute = path.partition(":")
    try:
        task_class = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(
            f"Task '{name}' is registered as '{path}', which cannot be imported ({error}); "
            "reinstall the package that provides it."
        ) from error
    task = task_class()
    if not isinstance(task, Task):
        raise ConfigError(f"Task '{name}' ('{path}') is not a shipyard.tasks.base.Task.")
    return task


def task_by_name(name: str) -> Task:
    """Return the task registered as ``name``.

    Raises
    ------
    ConfigError
        When no task has that name (the known ones are listed).
    """
    if name not in _loaded:
        paths = _task_paths()
        if name not in paths:
            raise ConfigError(
                f"No task is called '{name}'; the known tasks are {', '.join(sorted(paths))}."
            )
        _loaded[name] = _instantiate(name, paths[name])
    return _loaded[name]


def available_tasks() -> list[Task]:
    """Every registered task, built-in ones first."""
    return list(_tasks_in_order())


def _tasks_in_order() -> Iterator[Task]:
    """Yield the tasks one at a time, built-in ones first, importing each only when reached.

    A lookup that a built-in task answers never imports a plugin, so a broken plugin cannot
    stop a built-in model from loading.
    """
    for name in _task_paths():
        yield task_by_name(name)


def task_for_config_name(config_task: str) -> Task:
    """Return the task that trains the config value ``task: config_task``.

    Raises
    ------
    ConfigError
        When no registered task trains it.
    """
    for task in _tasks_in_order():
        if config_task in task.capabilities.config_tasks:
            return task
    known = sorted({name for task in available_tasks() for name in task.capabilities.config_tasks})
    close = difflib.get_close_matches(config_task, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"No task trains 'task: {config_task}'; use one of {', '.join(known)}.{hint}"
    )


def task_for_config(config: PipelineConfig) -> Task:
    """Return the task a config describes, after checking it honours every key set."""
    task = task_for_config_name(config.task)
    task.check_config(config)
    return task


def task_for_manifest(manifest: Manifest | Mapping[str, Any]) -> Task:
    """Return the task that loads a bundle with this manifest (typed, or its JSON document).

    Raises
    ------
    DataError
        When no registered task loads it (a bundle from a task whose package is missing).
    """
    kind = manifest.task if isinstance(manifest, Manifest) else str(manifest.get("task"))
    for task in _tasks_in_order():
        if kind in task.capabilities.manifest_tasks:
            return task
    raise DataError(
        f"No installed task loads bundles of task '{kind}'; install the package that "
        "provides it (see 'shipyard tasks')."
    )
