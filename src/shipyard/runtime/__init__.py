"""The serving runtime: compiled preprocessing and model scorers that load no pickle."""

from shipyard.runtime.predictor import Predictor
from shipyard.runtime.preprocess import CompiledPreprocessor
from shipyard.runtime.validate import RecordValidationError, RecordValidator

__all__ = ["CompiledPreprocessor", "Predictor", "RecordValidationError", "RecordValidator"]
