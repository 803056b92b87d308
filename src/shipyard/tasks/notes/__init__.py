"""The retrieval_qa task: ask a folder of notes, get answers with citations.

Ingestion (:mod:`.ingest`), the SQLite index with FTS5 and embeddings (:mod:`.index`,
:mod:`.build`), the question encoder (:mod:`.encoder`), extractive and generated answers
(:mod:`.answer`, :mod:`.generator`), evaluation on a question set (:mod:`.evaluation`), and the
served predictor (:mod:`.predictor`). Heavy pieces (torch, ONNX Runtime, pypdf) load on use.
"""

from shipyard.tasks.notes.evaluation import compare, question_scores, summarise
from shipyard.tasks.notes.index import NotesIndex
from shipyard.tasks.notes.ingest import Chunk, chunk_document, read_document

__all__ = [
    "Chunk",
    "NotesIndex",
    "chunk_document",
    "compare",
    "question_scores",
    "read_document",
    "summarise",
]
