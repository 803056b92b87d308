"""The retrieval_qa task end to end: cited answers, refusals, planted instructions, the
generator path against a local OpenAI-compatible server, the registry round trip and /ask."""

from __future__ import annotations

import dataclasses
import gc
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.tasks.notes.notes_files import PLANTED, QUESTIONS, write_notes
from tests.tasks.notes.openai_server import openai_server

from shipyard.config import ServingConfig, load_config_dict
from shipyard.errors import BundleIntegrityError
from shipyard.pipeline import TrainRun, train
from shipyard.registry.bundle import load_predictor, read_manifest
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.tasks.notes.build import EmbeddingCache, build_index
from shipyard.tasks.notes.evaluation import question_scores
from shipyard.tasks.notes.index import NotesIndex
from shipyard.tasks.notes.ingest import read_document
from shipyard.tasks.notes.predictor import NotesPredictor

UNSUPPORTED = "What is the boiling point of mercury on Venus?"


@dataclasses.dataclass
class Notes:
    folder: Path
    notes: Path
    registry: Registry
    run: TrainRun
    predictor: NotesPredictor
    planted: NotesPredictor


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notes]:
    folder = tmp_path_factory.mktemp("notes")
    notes, questions = write_notes(folder)
    config = load_config_dict(
        {
            "name": "handbook",
            "task": "retrieval_qa",
            "data": {"source": str(questions), "target": "source"},
            "notes": {"folder": str(notes), "cache": str(folder / "cache.sqlite")},
            "evaluation": {"bootstrap_samples": 200, "report": False},
            "registry": {"home": str(folder / "home")},
        }
    )
    run = train(config)
    registry = Registry.from_config(config.registry)
    version = registry.resolve("handbook")
    predictor = load_predictor(version.bundle_path, version.manifest_sha256, "reject")
    # The same notes plus one with planted instructions, indexed with the same settings.
    planted_notes = folder / "planted"
    shutil.copytree(notes, planted_notes)
    (planted_notes / "announcements.md").write_text(PLANTED, encoding="utf-8")
    built = build_index(
        planted_notes,
        folder / "planted.sqlite",
        predictor.encoder,
        cache=EmbeddingCache(folder / "cache.sqlite"),
    )
    assert built.embedded_files == ["announcements.md"]  # the others came from the cache
    planted = NotesPredictor(NotesIndex(built.path), predictor.settings)
    yield Notes(folder, notes, registry, run, predictor, planted)
    predictor.index.close()
    planted.index.close()


def _text_at(notes: Path, citation: dict[str, Any]) -> str:
    document = read_document(notes / citation["file"], citation["file"])
    return document.text[citation["start"] : citation["end"]]


@pytest.mark.parametrize(("question", "source"), QUESTIONS)
def test_pdf_html_markdown_and_text_answers_cite_the_right_passage(
    trained: Notes, question: str, source: str
):
    answer = trained.predictor.ask(question)
    assert answer["answered"], answer
    assert answer["mode"] == "extractive"
    assert answer["citations"][0]["file"] == source
    for number, citation in enumerate(answer["citations"], start=1):
        quoted = _text_at(trained.notes, citation)
        assert f"{quoted} [{number}]" in answer["answer"]  # the span is the quoted sentence
    assert answer["chunks"][0]["file"] == source


def test_a_question_the_notes_do_not_support_is_refused(trained: Notes):
    answer = trained.predictor.ask(UNSUPPORTED)
    assert not answer["answered"]
    assert answer["answer"].startswith("I don't know")
    assert answer["citations"] == []
    assert answer["retrieval_score"] < trained.predictor.threshold


def test_a_planted_instruction_changes_no_answer(trained: Notes):
    for question, _ in QUESTIONS:
        clean, planted = trained.predictor.ask(question), trained.planted.ask(question)
        assert planted["answer"] == clean["answer"], question
        assert [c["file"] for c in planted["citations"]] == [c["file"] for c in clean["citations"]]
    party = trained.planted.ask("When is the summer party?")
    assert party["answered"]
    assert "last Friday of June" in party["answer"]
    assert party["citations"][0]["file"] == "announcements.md"
    refused = trained.planted.ask(UNSUPPORTED)
    assert not refused["answered"]


def test_the_generator_answers_from_retrieved_chunks_with_checked_citations(trained: Notes):
    with openai_server() as (url, prompts):
        generating = NotesPredictor(
            trained.predictor.index,
            {**trained.predictor.settings, "generator": {"url": url, "model": "local"}},
            trained.predictor.encoder,
        )
        answer = generating.ask("How many weeks of paid parental leave do parents get?")
        assert answer["mode"] == "generated"
        assert answer["answered"], answer
        assert "sixteen weeks" in answer["answer"]
        assert answer["citations"][0]["file"] == "leave.pdf"
        assert prompts, "the generator was not called"
        # Below the threshold the generator is not asked at all.
        asked = len(prompts)
        assert not generating.ask(UNSUPPORTED)["answered"]
        assert len(prompts) == asked


@pytest.mark.parametrize("model", ["cites-unknown", "cites-nothing"])
def test_a_generated_answer_with_unretrieved_or_no_citations_is_refused(
    trained: Notes, model: str
):
    with openai_server() as (url, _):
        generating = NotesPredictor(
            trained.predictor.index,
            {**trained.predictor.settings, "generator": {"url": url, "model": model}},
            trained.predictor.encoder,
        )
        answer = generating.ask("When does the office open?")
    assert not answer["answered"]
    assert "cites" in answer["reason"]
    assert answer["citations"] == []


def test_a_planted_instruction_reaches_the_generator_only_as_quoted_data(trained: Notes):
    with openai_server() as (url, prompts):
        generating = NotesPredictor(
            trained.planted.index,
            {**trained.planted.settings, "generator": {"url": url}},
            trained.planted.encoder,
        )
        answer = generating.ask("When is the summer party in June?")
        planted_prompt = prompts[-1][-1]["content"]
    assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in planted_prompt  # it was retrieved and sent
    assert answer["answered"], answer
    assert "PWNED" not in answer["answer"]
    assert "last Friday of June" in answer["answer"]
    assert answer["citations"][0]["file"] == "announcements.md"


def test_the_index_round_trips_through_the_registry_with_its_hash_checked(trained: Notes):
    version = trained.registry.resolve("handbook")
    manifest = trained.registry.verify("handbook")
    assert manifest["task"] == "retrieval_qa"
    assert manifest["model"]["path"] == "index.sqlite"
    assert "index.sqlite" in manifest["files"]
    metrics = read_manifest(Path(version.bundle_path))["metrics"]["test"]
    assert metrics["recall@5"]["value"] >= 0.75
    copy = trained.folder / "tampered"
    shutil.copytree(version.bundle_path, copy)
    index = copy / "index.sqlite"
    data = bytearray(index.read_bytes())
    data[-10] ^= 0xFF
    index.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError):
        load_predictor(str(copy), version.manifest_sha256, "reject")


def test_ask_is_served_over_a_real_socket_with_feedback(trained: Notes):
    app = build_app(trained.registry, "handbook", ServingConfig(auth=False, log_predictions=True))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        one = client.post("/v1/models/handbook/ask", json={"question": QUESTIONS[0][0]})
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["answered"]
        assert body["citations"][0]["file"] == "expenses.html"
        batch = client.post(
            "/v1/models/handbook/ask", json={"questions": [QUESTIONS[2][0], UNSUPPORTED], "k": 3}
        )
        assert batch.status_code == 200, batch.text
        answers = batch.json()["answers"]
        assert [a["answered"] for a in answers] == [True, False]
        assert len(answers[0]["chunks"]) == 3
        bad = client.post("/v1/models/handbook/ask", json={"question": "x", "k": 0})
        assert bad.status_code == 422
        assert "'k'" in bad.json()["message"]
        unknown = client.post("/v1/models/handbook/ask", json={"query": "x"})
        assert unknown.status_code == 422
        assert "'query'" in unknown.json()["message"]
        feedback = client.post(
            "/v1/models/handbook/feedback",
            json={
                "request_id": body["request_id"],
                "label": {"helpful": True, "source": "expenses.html"},
            },
        )
        assert feedback.status_code == 200, feedback.text
        assert feedback.json()["stored"] == 1
        wrong = client.post(
            "/v1/models/handbook/feedback",
            json={"request_id": body["request_id"], "label": "yes"},
        )
        assert wrong.status_code == 422


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_postgresql_index_is_tuned_registered_and_served_from_postgresql(
    trained: Notes, postgres_url: str
):
    from shipyard.tasks.notes.postgres_index import PostgresNotesIndex

    config = load_config_dict(
        {
            "name": "handbook",
            "task": "retrieval_qa",
            "data": {"source": str(trained.folder / "questions.csv"), "target": "source"},
            "notes": {
                "folder": str(trained.notes),
                "cache": str(trained.folder / "cache.sqlite"),
                "index_backend": "postgresql",
            },
            "evaluation": {"bootstrap_samples": 200, "report": False},
            "registry": {"home": str(trained.folder / "postgres-home"), "url": postgres_url},
        }
    )
    train(config)
    registry = Registry.from_config(config.registry)
    try:
        predictor = registry.load_predictor("handbook")
        assert isinstance(predictor.index, PostgresNotesIndex)
        assert predictor.index.reused  # copied once, when training tuned the weight on it
        assert predictor.settings["index_backend"] == "postgresql"
        for question, source in QUESTIONS:
            assert predictor.ask(question)["citations"][0]["file"] == source
        predictor.index.close()
        app = build_app(registry, "handbook", ServingConfig(auth=False, log_predictions=False))
        with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            answer = client.post("/v1/models/handbook/ask", json={"question": QUESTIONS[0][0]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["citations"][0]["file"] == QUESTIONS[0][1]
        # The bundle folder opened by itself reads the SQLite file.
        version = registry.resolve("handbook")
        offline = load_predictor(version.bundle_path, version.manifest_sha256)
        assert isinstance(offline.index, NotesIndex)
        assert offline.ask(QUESTIONS[0][0])["citations"][0]["file"] == QUESTIONS[0][1]
        offline.index.close()
    finally:
        registry.close()
        # Collect what this test opened now, inside its own warning filter: a psycopg
        # connection collected open (not yet traced to its owner) must not fail a later test.
        gc.collect()


def test_retrieval_metrics_count_ranks_of_the_expected_file():
    ranked = [["a.md", "b.md", "c.md"], ["b.md", "b.md", "a.md"], ["c.md", "c.md", "c.md"]]
    expected = [{"a.md"}, {"a.md"}, {"a.md"}]
    scores = question_scores(ranked, expected, {"a.md": 1, "b.md": 2, "c.md": 3}, k=2)
    assert scores.values["recall@2"].tolist() == [1.0, 0.0, 0.0]
    assert np.allclose(scores.values["mrr"], [1.0, 1 / 3, 0.0])
    assert np.allclose(scores.values["ndcg@2"], [1.0, 0.0, 0.0])


def test_a_file_of_questions_is_answered_in_batch_from_the_cli(trained: Notes, tmp_path: Path):
    import json

    from typer.testing import CliRunner

    from shipyard.cli import app

    answers = tmp_path / "answers.jsonl"
    home = str(trained.folder / "home")
    result = CliRunner().invoke(
        app,
        [
            "ask",
            "handbook",
            "--file",
            str(trained.folder / "questions.csv"),
            "-o",
            str(answers),
            "--home",
            home,
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [row["question"] for row in rows] == [question for question, _ in QUESTIONS]
    assert [row["citations"][0]["file"] for row in rows] == [source for _, source in QUESTIONS]
    refused = CliRunner().invoke(app, ["ask", "handbook", UNSUPPORTED, "--home", home, "--json"])
    assert refused.exit_code == 0, refused.output
    assert json.loads(refused.stdout)["answered"] is False


def test_the_reindex_gate_compares_recall_on_sourced_feedback(trained: Notes):
    from shipyard.manifest import Manifest
    from shipyard.tasks.notes.loop import recall_gate

    version = trained.registry.resolve("handbook")
    manifest = Manifest.from_document(read_manifest(Path(version.bundle_path)))
    rows = [
        {"inputs": {"question": question}, "label": {"source": source}}
        for question, source in QUESTIONS
    ]
    same = recall_gate(trained.predictor, trained.planted, manifest, rows, 5, 0.0)
    assert same.metric == "recall@5"
    assert same.samples == len(QUESTIONS)
    assert same.challenger == same.champion == 1.0
    assert not same.passed  # no improvement: the champion stays
    too_few = recall_gate(trained.predictor, trained.planted, manifest, rows, 50, 0.0)
    assert not too_few.passed
