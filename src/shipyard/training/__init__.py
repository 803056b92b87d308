"""Training: candidates fitted, cross-validated and ranked."""

from shipyard.training.trainer import CandidateResult, TrainingResult, train_candidates

__all__ = ["CandidateResult", "TrainingResult", "train_candidates"]
