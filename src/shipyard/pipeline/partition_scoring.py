"""Batch scoring of a directory of Parquet files on any engine, through the served path.

:class:`ScorePartition` is the pure ``DataFrame -> DataFrame`` function: it loads the model's
bundle (verified against its manifest hash, once per process) and runs
:func:`shipyard.pipeline.scoring.score_chunk`, the compiled preprocessing and model runtime that
``shipyard predict`` and the server use. The engine decides where the partitions run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.engines.base import Engine, Progress
from shipyard.engines.directory import DirectoryResult, transform_directory

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.registry.store import ModelVersion

__all__ = ["ScorePartition", "score_directory"]


@functools.lru_cache(maxsize=4)
def _load(bundle: str, manifest_sha256: str | None) -> Any:
    # Bundles never change once written (the hash is part of the key), so caching the loaded
    # predictor per worker process is safe and saves a reload per partition.
    from shipyard.registry.bundle import load_predictor

    return load_predictor(Path(bundle), manifest_sha256)


@dataclass(frozen=True)
class ScorePartition:
    """Score one partition with a registered model's bundle.

    Parameters
    ----------
    bundle
        The bundle directory (visible to every worker).
    manifest_sha256
        The manifest hash the registry recorded; the bundle is refused if it differs.
    """

    bundle: str
    manifest_sha256: str | None = None

    @classmethod
    def for_version(cls, version: ModelVersion) -> ScorePartition:
        """Return the function for a registered version."""
        return cls(str(version.bundle_path), version.manifest_sha256)

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the partition with ``prediction`` (and ``probability_<class>``) columns."""
        from shipyard.pipeline.scoring import score_chunk

        # A shallow copy: the new columns must not change the engine's input partition.
        return score_chunk(
            _load(self.bundle, self.manifest_sha256), frame.copy(deep=False), "The partition"
        )


def score_directory(
    version: ModelVersion,
    source: str | Path,
    output: str | Path,
    engine: Engine,
    *,
    progress: Progress | None = None,
) -> DirectoryResult:
    """Score every Parquet file of ``source`` into a file of the same name in ``output``.

    The output directory appears only when every file was scored (see
    :func:`shipyard.engines.directory.transform_directory`).

    Raises
    ------
    PartitionError
        When a file cannot be read or breaks the contract; the message names the file.
    """
    return transform_directory(
        engine,
        ScorePartition.for_version(version),
        source,
        output,
        progress=progress,
        record={"model": version.reference, "manifest_sha256": version.manifest_sha256},
    )
