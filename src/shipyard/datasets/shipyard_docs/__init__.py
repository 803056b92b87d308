"""shipyard's own documentation as a folder of notes, with a hand-written question set.

A snapshot of the repository's ``docs/`` folder (MIT, like shipyard), shipped so that
``shipyard demo notes`` works from a clean install, and ``questions.csv``: questions written
by hand for these docs, each with the file that answers it (the ``retrieval_qa`` labels).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["docs_folder", "questions_path"]


def docs_folder() -> Path:
    """Return the folder of Markdown files."""
    return Path(str(resources.files(__name__).joinpath("docs")))


def questions_path() -> Path:
    """Return the question set (``question,source`` rows)."""
    return Path(str(resources.files(__name__).joinpath("questions.csv")))
