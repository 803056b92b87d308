"""Monitoring a notes model from logged answers and feedback; feedback joins the question set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tests.tasks.notes.notes_files import write_notes

from shipyard.config import load_config_dict
from shipyard.errors import DataError
from shipyard.monitoring.reference import reference_to_json
from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch
from shipyard.tasks.notes.drafting import draft_questions
from shipyard.tasks.notes.loop import extend_questions
from shipyard.tasks.notes.monitoring import check_feedback, notes_monitoring


def _row(score: float, answered: bool, files: list[str], label: dict | None = None) -> dict:
    output = {
        "answered": answered,
        "retrieval_score": score,
        "question_similarity": 0.5,
        "chunks": [{"file": name} for name in files],
    }
    return {"output": output, "label": label or {}, "inputs": {"question": "q"}}


def test_windows_sketch_scores_refusals_and_feedback_hit_rates():
    answered = CategoricalSketch(categories=["false", "true"], counts=[0, 0, 0])
    answered.update(["true"] * 9 + ["false"])
    reference = reference_to_json(
        {
            "retrieval_score": NumericSketch.from_values([0.3, 0.4, 0.5, 0.6], bins=4),
            "question_similarity": NumericSketch.from_values([0.4, 0.5, 0.6], bins=3),
            "answered": answered,
        }
    )
    watched = notes_monitoring({}, reference)
    rows = [_row(0.1, False, ["a.md"]), _row(0.5, True, ["b.md"])]
    values = watched.values(rows)
    assert values["retrieval_score"] == [0.1, 0.5]
    assert values["answered"] == ["false", "true"]
    labelled = [
        _row(0.5, True, ["a.md", "b.md"], {"helpful": position % 2 == 0, "source": "a.md"})
        for position in range(12)
    ]
    performance = watched.performance(labelled)
    assert performance["helpful_rate"] == pytest.approx(0.5)
    assert performance["source_hit_rate"] == 1.0
    assert watched.performance(labelled[:3]) is None  # too few labels for a rate
    signals = watched.signals(rows, labelled)
    assert signals["refused_share"] == 0.5


@pytest.mark.parametrize("label", ["yes", {}, {"helpful": "yes"}, {"source": ""}])
def test_malformed_feedback_is_refused_with_the_expected_shape(label):
    with pytest.raises(DataError, match=r"helpful|source"):
        check_feedback(label)


def test_feedback_naming_a_source_joins_the_question_set(tmp_path: Path):
    notes, questions = write_notes(tmp_path)
    config = load_config_dict(
        {
            "name": "handbook",
            "task": "retrieval_qa",
            "data": {"source": str(questions), "target": "source"},
            "notes": {"folder": str(notes)},
        }
    )
    learn = [
        {
            "request_id": "1",
            "inputs": {"question": "Is there a dress code?"},
            "label": {"source": "office.txt"},
        },
        {"request_id": "2", "inputs": {"question": "Thanks"}, "label": {"helpful": True}},
    ]
    rows, new = extend_questions(config, learn, tmp_path / "extended.parquet")
    frame = pd.read_parquet(tmp_path / "extended.parquet")
    assert (rows, new) == (len(frame), 1)
    assert frame.iloc[-1].tolist() == ["Is there a dress code?", "office.txt"]
    with pytest.raises(DataError, match="request 3"):
        extend_questions(config, [{"request_id": "3", "inputs": {}, "label": 1}], tmp_path / "x")


def test_drafted_questions_name_the_file_of_their_heading(tmp_path: Path):
    notes, _ = write_notes(tmp_path)
    drafts = draft_questions(notes)
    meals = next(draft for draft in drafts if draft["heading"] == "Travel expenses > Meals")
    assert meals == {
        "question": "What do the notes say about meals?",
        "source": "expenses.html",
        "heading": "Travel expenses > Meals",
    }
    assert {draft["source"] for draft in drafts} >= {"security.md", "expenses.html"}
