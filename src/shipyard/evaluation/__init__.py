"""Evaluation: metrics with confidence intervals."""

from shipyard.evaluation.metrics import MetricValue, bootstrap_metrics, default_metric, score

__all__ = ["MetricValue", "bootstrap_metrics", "default_metric", "score"]
