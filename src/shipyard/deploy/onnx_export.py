"""``shipyard export onnx``: the graph, checked against the served answers before it is kept.

The graph (:mod:`shipyard.deploy.onnx_graph`) is run in ONNX Runtime on held-out records and
compared with the bundle's own predictor on the same records; only when every output is within
:data:`TOLERANCE` is the file written, or registered as a new version that serves through ONNX
Runtime (its parent is the exported version; its aliases do not move).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.deploy.onnx_graph import build_graph
from shipyard.errors import DataError, ExportError
from shipyard.registry.bundle import MANIFEST
from shipyard.registry.store import ModelVersion, Registry
from shipyard.runtime.onnx_graph import ONNX_GRAPH_FORMAT, OnnxGraph, OnnxPredictor
from shipyard.runtime.validate import RecordValidationError

__all__ = ["TOLERANCE", "OnnxExport", "export_onnx"]

TOLERANCE = 1e-5
ONNX_FILE = "model.onnx"
# Entries the registry writes itself when it registers a version.
_REGISTERED = ("name", "version", "parent_version", "files", "bundle_format", "package_versions")


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` checked and wrote."""

    source: str
    rows: int
    max_gap: float
    path: Path | None = None
    registered: ModelVersion | None = None


def _valid_records(predictor: Any, records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Keep the records the contract accepts (the held-out file may hold bad rows)."""
    kept = []
    for record in records:
        try:
            predictor.score_records([record])
        except RecordValidationError:
            continue
        kept.append(record)
    return kept


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def export_onnx(
    registry: Registry,
    reference: str,
    records: Sequence[Mapping[str, Any]],
    output: Path | None = None,
    *,
    register: bool = False,
) -> OnnxExport:
    """Build the ONNX graph of a version, check it on ``records``, then write or register it.

    Raises
    ------
    ExportError
        When the family does not convert, or a gap on the held-out records passes
        :data:`TOLERANCE` (nothing is written then).
    DataError
        When no record passes the model's contract.
    """
    version = registry.resolve(reference)
    manifest = registry.verify(version.reference)
    if manifest["model"].get("format") == ONNX_GRAPH_FORMAT:
        raise ExportError(f"{version.reference} already serves an ONNX graph.")
    model = build_graph(version.bundle_path, manifest, name=version.name)
    data = model.SerializeToString()
    predictor = registry.load_predictor(version.reference)
    held_out = _valid_records(predictor, records)
    if not held_out:
        raise DataError(
            f"None of the {len(records)} records passes {version.reference}'s contract; pass "
            "held-out rows of the data it was trained on (--data)."
        )
    graph = OnnxPredictor(OnnxGraph(data, predictor.preprocessor), predictor)
    expected = predictor.score_records(held_out)
    found = graph.score_records(held_out)
    gap = float(np.max(np.abs(found - expected)))
    if not gap <= TOLERANCE:  # NaN fails too
        raise ExportError(
            f"The ONNX graph of {version.reference} differs from the model by {gap:.3g} on "
            f"{len(held_out)} held-out records (allowed {TOLERANCE:g}); nothing was written."
        )
    path = None
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(output, data)
        path = output
    registered = _register(registry, version, manifest, data, gap) if register else None
    return OnnxExport(version.reference, len(held_out), gap, path, registered)


def _register(
    registry: Registry,
    version: ModelVersion,
    manifest: Mapping[str, Any],
    graph: bytes,
    gap: float,
) -> ModelVersion:
    """Register the bundle with the graph as its model, the native model kept to explain."""
    files = {
        relative: (version.bundle_path / relative).read_bytes()
        for relative in manifest["files"]
        if relative != MANIFEST
    }
    if ONNX_FILE in files:
        raise ExportError(f"{version.reference} already holds a file named {ONNX_FILE}.")
    files[ONNX_FILE] = graph
    native = dict(manifest["model"])
    document = {key: value for key, value in manifest.items() if key not in _REGISTERED}
    document["model"] = {
        "format": ONNX_GRAPH_FORMAT,
        "path": ONNX_FILE,
        "family": native.get("family", ""),
        "native": native,
    }
    document["parity"] = {**manifest.get("parity", {}), "onnx_max_gap": gap}
    document["notes"] = [
        *manifest.get("notes", []),
        f"Exported from {version.reference} to one ONNX graph, served by ONNX Runtime.",
    ]
    return registry.register(
        version.name,
        files,
        document,
        params=version.params,
        config=version.config,
        data_fingerprint=version.data_fingerprint,
        package_versions=version.package_versions,
        parent_version=version.version,
    )
