"""The registry: immutable model versions, their bundles, movable aliases and an audit log."""

from shipyard.registry.bundle import load_predictor, verify_bundle
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry, parse_reference

__all__ = [
    "DEFAULT_ALIAS",
    "ModelVersion",
    "Registry",
    "load_predictor",
    "parse_reference",
    "verify_bundle",
]
