"""Anomaly detection: IsolationForest and LOF, served as a score and a threshold decision.

See docs/unsupervised.md.
"""

from shipyard.tasks.anomaly.task import AnomalyDetectionTask

__all__ = ["AnomalyDetectionTask"]
