"""Where work runs: in this process by default, on a cluster engine when one is configured.

The seam between shipyard and an engine is three engine-neutral contracts, so that an engine
adapter stays small and the pipeline code does not change with the engine:

1. an Optuna storage URL for tuning (:mod:`shipyard.training.studies`);
2. a joblib backend for fan-out work such as cross-validation folds
   (:meth:`Engine.fan_out`, used through :class:`shipyard.training.execution.Executor`);
3. a pure ``DataFrame -> DataFrame`` partition function, run over a list of files by
   :meth:`Engine.transform_files` (batch scoring), with a map-and-merge variant,
   :meth:`Engine.summarise_files`, for statistics (profiling, validation).

:class:`~shipyard.engines.base.LocalEngine` runs everything in process; the Dask adapter
(:mod:`shipyard.engines.dask_engine`, extra ``dask``) is imported only when ``engine.url``
names a Dask scheduler. A Ray or Spark adapter would implement the same :class:`Engine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.engines.base import Engine, LocalEngine

if TYPE_CHECKING:
    from shipyard.config import EngineConfig

__all__ = ["Engine", "LocalEngine", "open_engine"]


def open_engine(config: EngineConfig) -> Engine:
    """Return the engine ``config`` names, connected; use it as a context manager.

    Raises
    ------
    MissingDependencyError
        When a Dask engine is configured but the ``dask`` extra is not installed.
    EngineError
        When the scheduler cannot be reached or has no workers.
    """
    if config.kind == "local":
        return LocalEngine()
    from shipyard.engines.dask_engine import DaskEngine

    return DaskEngine.connect(config.scheduler_address, timeout=config.connect_timeout)
