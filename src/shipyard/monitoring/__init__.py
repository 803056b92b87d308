"""Monitoring: distribution sketches and drift statistics (the closed loop builds on these)."""

from shipyard.monitoring.drift import (
    ColumnDrift,
    DriftThresholds,
    chi_square,
    column_drift,
    drift_report,
    js_distance,
    ks_binned,
    psi,
)
from shipyard.monitoring.gate import GateResult, compare_models
from shipyard.monitoring.reference import build_reference
from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch, sketch_from_json

__all__ = [
    "CategoricalSketch",
    "ColumnDrift",
    "DriftThresholds",
    "GateResult",
    "NumericSketch",
    "build_reference",
    "chi_square",
    "column_drift",
    "compare_models",
    "drift_report",
    "js_distance",
    "ks_binned",
    "psi",
    "sketch_from_json",
]
