"""The closed loop, once: retrain on the reference data plus new labels, gate, promote.

:func:`retrain` is what ``shipyard retrain NAME`` runs. It takes the champion's saved config,
adds the labelled predictions from the log to the training data (all but the most recent ones),
trains and registers a challenger, and scores challenger and champion on the most recent
labelled rows, which neither trained on. The challenger becomes champion only when the paired
bootstrap interval of the metric difference lies entirely above zero with enough rows, and the
registry's fairness gate agrees. Every decision is written to the audit log with its numbers.

The turn is the same for every task; only two steps depend on it, and the task supplies them
(:meth:`~shipyard.tasks.base.Task.retrain_steps`): how labelled rows join the training data,
and how the gate scores the two versions. Tabular models and text classifiers add rows of
inputs plus label and compare the champion's metric (:mod:`shipyard.tasks.labelled_rows`);
recommenders add the clicked or bought items as interactions and compare NDCG@k paired over
users (:mod:`shipyard.tasks.recommendation.loop`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.config import PipelineConfig, apply_overrides, load_config_dict
from shipyard.errors import DataError, RegistryError
from shipyard.manifest import Manifest
from shipyard.monitoring.gate import GateResult
from shipyard.monitoring.log import MonitoringStore
from shipyard.pipeline.driver import TrainRun, train
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry
from shipyard.tasks.base import task_for_config, task_for_manifest

__all__ = ["RetrainRun", "gate_version", "retrain"]

Reporter = Callable[[str], None]


@dataclass
class RetrainRun:
    """What one turn of the loop did."""

    champion: ModelVersion
    challenger: TrainRun
    gate: GateResult
    promoted: bool
    new_rows: int
    gate_rows: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard retrain --json`` prints."""
        return {
            "champion": self.champion.reference,
            "challenger": self.challenger.version.reference,
            "promoted": self.promoted,
            "new_training_rows": self.new_rows,
            "gate_rows": self.gate_rows,
            "gate": self.gate.as_dict(),
            "message": self.message,
        }


def retrain(
    registry: Registry,
    name: str,
    *,
    gate_share: float = 0.3,
    min_gate_rows: int = 200,
    min_improvement: float = 0.0,
    report: Reporter | None = None,
    promote_to: str = DEFAULT_ALIAS,
) -> RetrainRun:
    """Retrain ``name`` on its reference data plus newly labelled rows, gate, maybe promote.

    Parameters
    ----------
    gate_share
        Share of the labelled rows (the most recent ones) kept out of training for the gate.
    min_gate_rows
        The gate refuses to promote on fewer held-out labelled rows.
    min_improvement
        The lower end of the gate's interval must exceed this.
    promote_to
        The alias a challenger that passes gets: ``champion``, or ``canary`` to serve it to a
        share of traffic first (``shipyard watch`` then promotes it or rolls it back).

    Raises
    ------
    DataError
        When there are no labelled predictions to learn from.
    RegistryError
        When the champion has no saved config.
    """
    report = report or (lambda message: None)
    champion = registry.resolve(f"{name}@{DEFAULT_ALIAS}")
    if not champion.config:
        raise RegistryError(f"{champion.reference} has no saved config to retrain from.")
    config = load_config_dict(_yaml(champion.config), source=f"{champion.reference} config")
    store = MonitoringStore(registry.url)
    try:
        labelled = store.labelled(name)
    finally:
        store.close()
    if not labelled:
        raise DataError(
            f"No labelled predictions of '{name}' in the log: serve the model and send labels "
            f"to POST /v1/models/{name}/feedback before retraining."
        )
    split = len(labelled) - max(int(len(labelled) * gate_share), 1)
    learn, hold_out = labelled[:split], labelled[split:]
    report(
        f"{len(labelled)} labelled predictions: {len(learn)} join the training data, "
        f"{len(hold_out)} are kept for the gate"
    )

    steps = task_for_config(config).retrain_steps()
    folder = registry.artifacts.parent / "retraining"
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{name}-{int(time.time())}.parquet"
    total, new_rows = steps.extend(config, learn, source)
    challenger_config = _with_source(config, str(source))
    report(f"training a challenger on {total} rows ({new_rows} new)")
    challenger = train(challenger_config, report=report, registry=registry)

    gate = _gate(registry, champion, challenger.version, hold_out, min_gate_rows, min_improvement)
    report(f"gate: {gate.reason}")
    promoted, message = False, f"{challenger.version.reference} stays a challenger: {gate.reason}"
    if gate.passed:
        try:
            if promote_to != DEFAULT_ALIAS:
                # A canary must be able to become champion: the fairness gate decides now.
                registry.check_fairness(challenger.version.reference)
            registry.promote(
                name,
                challenger.version.version,
                promote_to,
                reason=f"retrain gate passed: {gate.reason}",
            )
            promoted = True
            role = "new champion" if promote_to == DEFAULT_ALIAS else f"new {promote_to}"
            message = f"{challenger.version.reference} is the {role}: {gate.reason}"
        except RegistryError as error:  # the fairness gate said no
            message = f"{challenger.version.reference} passed the metric gate but not: {error}"
    registry.log_event(
        name,
        challenger.version.version,
        "gate",
        {"passed": gate.passed, "promoted": promoted, "alias": promote_to, **gate.as_dict()},
    )
    report(message)
    return RetrainRun(champion, challenger, gate, promoted, new_rows, len(hold_out), message)


def gate_version(
    registry: Registry,
    reference: str,
    *,
    gate_share: float = 0.3,
    min_gate_rows: int = 200,
    min_improvement: float = 0.0,
) -> GateResult:
    """Gate an already registered version against its model's champion; log the verdict.

    It is scored with the champion on the most recent ``gate_share`` of the labelled
    predictions, as :func:`retrain` gates its challenger. Nothing is promoted.

    Raises
    ------
    DataError
        When there are no labelled predictions.
    """
    challenger = registry.resolve(reference)
    champion = registry.resolve(f"{challenger.name}@{DEFAULT_ALIAS}")
    store = MonitoringStore(registry.url)
    try:
        labelled = store.labelled(challenger.name)
    finally:
        store.close()
    if not labelled:
        raise DataError(f"No labelled predictions of '{challenger.name}' to gate with.")
    hold_out = labelled[len(labelled) - max(int(len(labelled) * gate_share), 1) :]
    gate = _gate(registry, champion, challenger, hold_out, min_gate_rows, min_improvement)
    registry.log_event(
        challenger.name,
        challenger.version,
        "gate",
        {"passed": gate.passed, "promoted": False, "against": champion.version, **gate.as_dict()},
    )
    return gate


def _gate(
    registry: Registry,
    champion: ModelVersion,
    challenger: ModelVersion,
    rows: list[dict[str, Any]],
    min_rows: int,
    min_improvement: float,
) -> GateResult:
    """Load both versions and let the challenger's task compare them on the held-out rows."""
    manifest = Manifest.from_document(registry.manifest(challenger.reference))
    steps = task_for_manifest(manifest).retrain_steps()
    return steps.gate(
        registry.load_predictor(champion.reference),
        registry.load_predictor(challenger.reference),
        manifest,
        rows,
        min_rows,
        min_improvement,
    )


def _yaml(text: str) -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _with_source(config: PipelineConfig, source: str) -> PipelineConfig:
    raw = apply_overrides(config.model_dump(mode="json"), {"data.source": source})
    return load_config_dict(raw)
