"""The text classification task: TF-IDF candidates, JSON export with parity, the loop."""

from shipyard.tasks.text.candidates import TEXT_CANDIDATES, text_pipeline
from shipyard.tasks.text.export import check_text_parity, export_text_pipeline

__all__ = ["TEXT_CANDIDATES", "check_text_parity", "export_text_pipeline", "text_pipeline"]
