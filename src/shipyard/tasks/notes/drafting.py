r"""Drafting a question set from the notes, for a person to review and rewrite.

Each section heading becomes one draft question naming its file. Drafts reuse the heading's
words, which flatters keyword search; rewrite them as people would ask before using them to
evaluate or gate anything.

Examples
--------
>>> from pathlib import Path
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "leave.md").write_text("# Leave\n\n## Parental leave\n\nSixteen weeks.\n")
>>> [(draft["question"], draft["source"]) for draft in draft_questions(folder)]
[('What do the notes say about parental leave?', 'leave.md')]
"""

from __future__ import annotations

from pathlib import Path

from shipyard.tasks.notes.ingest import chunk_document, notes_files, read_document

__all__ = ["draft_questions"]


def draft_questions(folder: Path, max_chars: int = 800) -> list[dict[str, str]]:
    """Return one draft question per section heading with text, with its file and heading."""
    drafts, seen = [], set()
    for path in notes_files(folder):
        relative = path.relative_to(folder).as_posix()
        for chunk in chunk_document(read_document(path, relative), max_chars):
            title = chunk.heading.split(" > ")[-1].strip().strip("`")
            if not title or (relative, chunk.heading) in seen or " > " not in chunk.heading:
                continue
            seen.add((relative, chunk.heading))
            drafts.append(
                {
                    "question": f"What do the notes say about {title[0].lower() + title[1:]}?",
                    "source": relative,
                    "heading": chunk.heading,
                }
            )
    return drafts
