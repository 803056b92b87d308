"""Try one request against a registered version: its task's form, then its task's answer.

Shared by the web UI and the Gradio app. The version's bundle is verified and loaded once
(the few latest are kept), its task draws the form from the data contract
(:meth:`~shipyard.tasks.base.Task.try_it`) and answers the record
(:meth:`~shipyard.tasks.base.Task.try_it_answer`), through the same predictor the server uses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.data.contract import Contract
from shipyard.errors import DataError
from shipyard.manifest import Manifest
from shipyard.registry.bundle import load_predictor, read_manifest
from shipyard.registry.store import Registry
from shipyard.runtime.bundle_files import bundle_file
from shipyard.tasks.base import Task, task_for_manifest
from shipyard.tasks.try_it import TryItAnswer, TryItForm

__all__ = ["LoadedVersion", "TryItService"]

KEPT_VERSIONS = 4


@dataclass(frozen=True)
class LoadedVersion:
    """A verified, loaded version with its task and try-it form."""

    reference: str
    task: Task
    manifest: Manifest
    predictor: Any
    form: TryItForm


def _contract(directory: Path, manifest: Manifest) -> Contract | None:
    if not manifest.contract:  # recommenders have none
        return None
    path = bundle_file(directory, manifest.contract)
    return Contract.from_yaml(path.read_text(encoding="utf-8"), source=str(path))


class TryItService:
    """Load versions on demand and answer try-it requests.

    Parameters
    ----------
    registry
        Where the versions are registered.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._loaded: OrderedDict[str, LoadedVersion] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, name: str, number: int) -> LoadedVersion:
        """Verify and load ``name:number`` (kept for the next request).

        Raises
        ------
        ModelNotFoundError
            When the version does not exist.
        BundleIntegrityError
            When its bundle does not match its recorded hashes.
        """
        version = self.registry.get(name, number)
        key = f"{version.reference}@{version.manifest_sha256}"
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        predictor = load_predictor(version.bundle_path, version.manifest_sha256)
        manifest = Manifest.from_document(read_manifest(version.bundle_path))
        task = task_for_manifest(manifest)
        form = task.try_it(manifest, _contract(version.bundle_path, manifest), predictor)
        loaded = LoadedVersion(version.reference, task, manifest, predictor, form)
        with self._lock:
            self._loaded[key] = loaded
            while len(self._loaded) > KEPT_VERSIONS:
                self._loaded.popitem(last=False)
        return loaded

    def form(self, name: str, number: int) -> TryItForm:
        """Return the version's try-it form."""
        return self.load(name, number).form

    def answer(self, name: str, number: int, values: dict[str, str]) -> TryItAnswer:
        """Turn submitted text into a record and answer it.

        Raises
        ------
        DataError
            When a field is malformed, the record breaks the contract, or the task offers
            no form.
        """
        loaded = self.load(name, number)
        if not loaded.form.available:
            raise DataError(loaded.form.message)
        record = loaded.form.record(values)
        return loaded.task.try_it_answer(loaded.predictor, loaded.manifest, record)
