"""The bundle manifest, typed and versioned: read in one place, upgraded when it is old.

``manifest.json`` describes a bundle: its task, target, classes, metric, model files, metrics,
leaderboard, lineage and the SHA-256 of every file. :class:`Manifest` is its schema: the
entries every task writes are typed fields; a task's own sections (a recommender's
``recommendation``, a text model's ``text_reference``) are kept as extra entries and read with
:meth:`Manifest.section`. Manifests written by earlier releases are upgraded on read by the
registered migrations (:data:`MIGRATIONS`), so old bundles keep loading; the file on disk is
never rewritten (its hash is part of the registry's record).

Examples
--------
>>> manifest = Manifest.from_document(
...     {"task": "binary", "target": "income", "metric": "roc_auc",
...      "model": {"format": "lightgbm-text", "path": "model.lgb.txt", "family": "lightgbm"}}
... )
>>> manifest.manifest_version, manifest.model.family
(2, 'lightgbm')
>>> Manifest.from_document(manifest.to_document()) == manifest
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.errors import BundleIntegrityError

__all__ = ["MANIFEST_VERSION", "MIGRATIONS", "Manifest", "ModelEntry", "PersonalDataEntry"]

MANIFEST_VERSION = 2


class ModelEntry(BaseModel):
    """Where the model is in the bundle and what reads it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format: str
    family: str = ""
    path: str | None = None
    files: dict[str, str] | None = None

    def paths(self) -> list[str]:
        """Every bundle file that holds the model."""
        return [self.path] if self.path else sorted((self.files or {}).values())


class PersonalDataEntry(BaseModel):
    """The columns tagged as personal data and what the prediction log keeps of them.

    Manifests written before this entry existed read as no tagged column, logged as they were
    (``keep``).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    columns: list[str] = Field(default_factory=list)
    log_policy: Literal["hash", "drop", "keep"] = "keep"


class Manifest(BaseModel):
    """A bundle's ``manifest.json``; task sections are extra entries (see :meth:`section`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    manifest_version: int = MANIFEST_VERSION
    bundle_format: int = 1
    task: str
    target: str | None = None
    metric: str
    model: ModelEntry
    classes: list[Any] = Field(default_factory=list)
    contract: str | None = None
    config: str | None = None
    drift_reference: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    leaderboard: list[dict[str, Any]] = Field(default_factory=list)
    verdict: dict[str, Any] = Field(default_factory=dict)
    parity: dict[str, float] = Field(default_factory=dict)
    rows: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    sensitive: list[str] = Field(default_factory=list)
    personal_data: PersonalDataEntry = Field(default_factory=PersonalDataEntry)
    code_version: str | None = None
    lineage: dict[str, Any] | None = None
    files: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_document(cls, document: Mapping[str, Any], source: str = "manifest") -> Manifest:
        """Upgrade a manifest document to the current version and validate it.

        Raises
        ------
        BundleIntegrityError
            When the document is not a manifest shipyard can read (naming the entry).
        """
        upgraded = upgrade(document)
        try:
            return cls.model_validate(upgraded)
        except ValidationError as error:
            problems = "; ".join(
                f"'{'.'.join(map(str, item['loc']))}': {item['msg']}" for item in error.errors()
            )
            raise BundleIntegrityError(
                f"{source} is not a valid shipyard manifest ({problems}); the bundle is "
                "damaged or was written by another tool. Re-register the model."
            ) from None

    def to_document(self) -> dict[str, Any]:
        """Return the JSON document, with the task sections where they were."""
        return self.model_dump(mode="json", exclude_unset=True)

    def section(self, name: str, default: Any = None) -> Any:
        """Return a task's own section (an extra entry), or ``default``."""
        return (self.model_extra or {}).get(name, default)


def _from_version_1(document: dict[str, Any]) -> dict[str, Any]:
    """Release 0.1 wrote no ``manifest_version``; its entries are the version 2 entries."""
    return {**document, "manifest_version": 2}


# version found -> the function that lifts a document to the next version.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_version_1}


def upgrade(document: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the registered migrations until the document is at :data:`MANIFEST_VERSION`.

    Raises
    ------
    BundleIntegrityError
        When the document comes from a newer release than this one.
    """
    upgraded = dict(document)
    version = int(upgraded.get("manifest_version", 1))
    if version > MANIFEST_VERSION:
        raise BundleIntegrityError(
            f"The manifest has version {version}, newer than this shipyard reads "
            f"({MANIFEST_VERSION}); upgrade shipyard to load the bundle."
        )
    while version < MANIFEST_VERSION:
        upgraded = MIGRATIONS[version](upgraded)
        version = int(upgraded["manifest_version"])
    return upgraded
