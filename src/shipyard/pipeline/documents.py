"""The documents of a registered version: its model card and its evaluation report.

The card is built from the bundle, the registry record and the audit log, with the sections
the version's task contributes (:meth:`~shipyard.tasks.base.Task.document_sections`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from shipyard.evaluation.card import build_card
from shipyard.evaluation.report import Document
from shipyard.registry.store import Registry
from shipyard.runtime.bundle_files import bundle_file
from shipyard.tasks.base import task_for_manifest

__all__ = ["card_for_version", "report_for_version", "write_card"]


def card_for_version(registry: Registry, reference: str) -> Document:
    """Build the full card of a registered version: bundle, registry record and audit log.

    Raises
    ------
    ModelNotFoundError
        When the reference matches no version.
    BundleIntegrityError
        When the bundle does not match its recorded hashes.
    """
    version = registry.resolve(reference)
    manifest = registry.verify(version.reference)
    contract = None
    if manifest.get("contract"):  # recommenders have none
        contract_path = bundle_file(Path(version.bundle_path), manifest["contract"])
        contract = yaml.safe_load(contract_path.read_text(encoding="utf-8"))
    events = [
        event
        for event in registry.events(version.name)
        if event["version"] in (None, version.version)
    ]
    sections = task_for_manifest(manifest).document_sections()
    return build_card(manifest, contract, version.as_dict(), events, sections)


def write_card(registry: Registry, reference: str, directory: str | Path) -> tuple[Path, Path]:
    """Write ``NAME-vVERSION.md`` and ``.html`` cards into ``directory``; return both paths."""
    version = registry.resolve(reference)
    card = card_for_version(registry, version.reference)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{version.name}-v{version.version}-model-card"
    markdown, page = folder / f"{stem}.md", folder / f"{stem}.html"
    markdown.write_text(card.to_markdown(), encoding="utf-8")
    page.write_text(card.to_html(), encoding="utf-8")
    return markdown, page


def report_for_version(registry: Registry, reference: str) -> tuple[str, Path]:
    """Verify a version's bundle and return its reference and the path of its HTML report.

    Raises
    ------
    RegistryError
        When the bundle holds no report (trained with ``evaluation.report: false`` or without
        the ``report`` extra).
    """
    from shipyard.errors import RegistryError

    version = registry.resolve(reference)
    manifest = registry.verify(version.reference)
    if "report.html" not in manifest.get("files", {}):
        raise RegistryError(
            f"{version.reference} has no evaluation report: it was trained with "
            "evaluation.report false or without the report extra. Install "
            "'shipyard[report]' and retrain to get one."
        )
    return version.reference, bundle_file(Path(version.bundle_path), "report.html")
