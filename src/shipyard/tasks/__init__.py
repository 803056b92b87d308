"""Task adapters: task detection, candidate models, and export to the serving format."""

from shipyard.tasks.detect import class_order, detect_task
from shipyard.tasks.tabular import CANDIDATES, FeatureSet, feature_set

__all__ = ["CANDIDATES", "FeatureSet", "class_order", "detect_task", "feature_set"]
