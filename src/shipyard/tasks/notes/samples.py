"""A small set of real notes and questions: two of shipyard's own documents, for quick checks."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

__all__ = ["SMALL_QUESTIONS", "write_small_notes"]

SMALL_FILES = ("security.md", "tasks.md")
SMALL_QUESTIONS = (
    ("Who can change which model is served?", "security.md"),
    ("What is verified when a bundle is loaded?", "security.md"),
    ("How does a client get throttled when it sends too many requests?", "security.md"),
    ("Where are the API key hashes stored?", "security.md"),
    ("How do I register a task from another package?", "tasks.md"),
    ("Which checks run on every registered task?", "tasks.md"),
    ("In which order does the driver call the training hooks?", "tasks.md"),
    ("Which task hook builds the served predictor from a bundle?", "tasks.md"),
)


def write_small_notes(folder: Path) -> tuple[Path, Path]:
    """Copy two bundled documents to ``folder/notes``; write ``folder/questions.csv``.

    Returns the notes folder and the question set's path.
    """
    from shipyard.datasets.shipyard_docs import docs_folder

    notes = folder / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    for name in SMALL_FILES:
        shutil.copyfile(docs_folder() / name, notes / name)
    questions = folder / "questions.csv"
    with questions.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "source"])
        writer.writerows(SMALL_QUESTIONS)
    return notes, questions
