"""The notes demo: shipyard's own docs -> index -> registry -> server -> questions over HTTP.

Indexes the snapshot of shipyard's ``docs/`` folder shipped in
:mod:`shipyard.datasets.shipyard_docs`, registers the index, serves it, asks three real
questions over HTTP (answers with citations), then asks every question of the hand-written
question set (retrieval only: the answers' sentences are not needed to score it) and reports
recall@5 over all of them, besides the test-split metrics and the paired comparison with
keyword search that training recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.config import PipelineConfig, apply_overrides, load_config_dict
from shipyard.demos.adult import demo_key, post_json
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry

__all__ = [
    "DEMO_QUESTIONS",
    "NotesDemoResult",
    "notes_demo_config",
    "question_set_recall",
    "run_notes_demo",
]

DEMO_QUESTIONS = (
    "How do I roll back the champion to the previous version?",
    "What is checked when a bundle is loaded?",
    "How do I keep personal data out of the prediction log?",
)


@dataclass
class NotesDemoResult:
    """What the demo did: the training run, three answers, and recall over every question."""

    run: TrainRun
    url: str
    answers: list[dict[str, Any]]
    recall: dict[str, Any]
    comparison: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard demo notes --json`` prints."""
        return {
            **self.run.as_dict(),
            "server": self.url,
            "answers": self.answers,
            "question_set": self.recall,
            "hybrid_vs_keyword": self.comparison,
        }


def notes_demo_config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Return the demo's config: the bundled docs and question set, with overrides applied."""
    from shipyard.datasets.shipyard_docs import docs_folder, questions_path

    raw = {
        "name": "shipyard-docs",
        "task": "retrieval_qa",
        "data": {"source": str(questions_path()), "target": "source"},
        "notes": {"folder": str(docs_folder())},
        "evaluation": {"bootstrap_samples": 1000, "report": False},
    }
    return load_config_dict(apply_overrides(raw, overrides or {}))


def question_set_recall(
    predictor: Any, questions: list[str], sources: list[str], k: int = 5
) -> dict[str, Any]:
    """Recall@k of a served version's retrieval over every question, and the ones missed."""
    from shipyard.tasks.notes.evaluation import expected_files

    vectors = predictor.encoder.encode(questions)
    missed, hits = [], 0
    for question, vector, source in zip(questions, vectors, sources, strict=True):
        files = [
            predictor.index.chunks[hit.row].file for hit in predictor.retrieve(question, vector, k)
        ]
        if set(files) & expected_files(source):
            hits += 1
        else:
            missed.append({"question": question, "expected": source, "retrieved": files})
    return {"questions": len(questions), f"recall@{k}": hits / len(questions), "missed": missed}


def run_notes_demo(
    overrides: dict[str, Any] | None = None, report: Callable[[str], None] | None = None
) -> NotesDemoResult:
    """Run the whole notes demo and return what happened."""
    from shipyard.data.sources import read_table
    from shipyard.serving import build_app, running_server

    report = report or (lambda message: None)
    config = notes_demo_config(overrides)
    assert config.notes is not None
    registry = Registry.from_config(config.registry)
    run = train(config, report=report, registry=registry)
    questions = read_table(config.data.source)
    demo = demo_key(config)
    app = build_app(registry, run.version.reference, config.serving, demo.store)
    with running_server(app, host=config.serving.host, port=0) as url:
        endpoint = f"{url}/v1/models/{config.name}/ask"
        answers = []
        for question in DEMO_QUESTIONS:
            report(f"POST {endpoint} {question!r}")
            answers.append(post_json(endpoint, {"question": question}, demo.key))
    report("server stopped")
    demo.retire(report)
    report(f"retrieving for the {len(questions)} questions of the question set")
    recall = question_set_recall(
        registry.load_predictor(run.version.reference),
        questions[config.notes.question_column].tolist(),
        questions[config.data.target].tolist(),
    )
    manifest = registry.verify(run.version.reference)
    return NotesDemoResult(run, url, answers, recall, manifest["retrieval"]["hybrid_vs_keyword"])
