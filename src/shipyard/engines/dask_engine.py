"""The Dask adapter (extra ``dask``): the engine contract on a ``distributed`` cluster.

- Fan-out runs on joblib's ``dask`` backend through the client this engine opens, so the
  search code is the same as in process.
- Files become a Dask DataFrame with one partition per file (``dask.dataframe.from_map``),
  and the partition function runs on the workers through ``map_partitions``; each partition
  writes its own output file (atomically) and returns its row count. Futures are collected as
  they finish, so progress and the first failing partition surface while the job runs.
- A worker lost mid-task is replaced by the scheduler and its tasks run again elsewhere
  (Dask's ``distributed.scheduler.allowed-failures`` times); past that the job fails with an
  :class:`~shipyard.errors.EngineError`.

Every path (input files, outputs, bundles) must be visible to the client and every worker
under the same name: a shared filesystem, or a single machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.engines.base import (
    Engine,
    PartitionFunction,
    Progress,
    Summary,
    apply_to_file,
    read_partition,
    summarise_file,
)
from shipyard.errors import EngineError, PartitionError, require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DaskEngine"]


def _shipyard_version() -> str:
    from shipyard._version import __version__

    return __version__


class DaskEngine(Engine):
    """Run shipyard's work on a Dask cluster through a connected ``distributed.Client``.

    Parameters
    ----------
    client
        A connected client; :meth:`connect` makes one from a scheduler address.
    owns_client
        Whether :meth:`close` closes the client.
    """

    name = "dask"

    def __init__(self, client: Any, owns_client: bool = False) -> None:
        self.client = client
        self.owns_client = owns_client

    @classmethod
    def connect(cls, address: str, timeout: float = 10.0) -> DaskEngine:
        """Connect to the scheduler at ``address`` and wait for a worker.

        Raises
        ------
        EngineError
            When the scheduler cannot be reached, has no worker within ``timeout`` seconds,
            or its workers run another version of shipyard.
        """
        require("distributed", "dask")
        from distributed import Client

        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as error:
            raise EngineError(
                f"Cannot reach the Dask scheduler at {address}: {error}. Start one with "
                "'dask scheduler' and workers with 'dask worker ADDRESS', or fix engine.url "
                "(see docs/scale.md)."
            ) from None
        engine = cls(client, owns_client=True)
        try:
            client.wait_for_workers(1, timeout=timeout)
            engine._check_versions()
        except (OSError, TimeoutError) as error:
            engine.close()
            raise EngineError(
                f"The Dask scheduler at {address} has no worker after {timeout:g} s ({error}); "
                "start workers with 'dask worker ADDRESS' or raise engine.connect_timeout."
            ) from None
        except BaseException:
            engine.close()
            raise
        return engine

    def _check_versions(self) -> None:
        versions = self.client.run(_shipyard_version)
        ours = _shipyard_version()
        other = {worker: version for worker, version in versions.items() if version != ours}
        if other:
            raise EngineError(
                f"Dask workers run another shipyard ({other}) than this client ({ours}); "
                "install the same version on every worker."
            )

    def describe(self) -> str:
        """Name the scheduler address and the workers' thread count."""
        threads = sum(self.client.nthreads().values())
        return f"dask at {self.client.scheduler.address} ({threads} worker threads)"

    def fan_out(self, backend: str, n_jobs: int) -> tuple[str, int]:
        """Fan out on joblib's ``dask`` backend, every item at once (the scheduler queues)."""
        return "dask", -1

    def _partitions(self, sources: Sequence[Path]) -> Any:
        """Return a Dask DataFrame with one partition per file, read on the workers."""
        import dask.dataframe as dd
        import pyarrow.parquet as pq

        meta = pq.read_schema(sources[0]).empty_table().to_pandas()
        return dd.from_map(
            read_partition, [str(source) for source in sources], meta=meta, enforce_metadata=False
        )

    def transform_files(
        self,
        function: PartitionFunction,
        sources: Sequence[Path],
        targets: Sequence[Path],
        progress: Progress | None = None,
    ) -> list[int]:
        """Run ``function`` on every file with ``map_partitions``; one output file each."""
        import dask
        import pandas as pd

        names = [str(source) for source in sources]
        outputs = [str(target) for target in targets]
        with dask.config.set({"dataframe.convert-string": False}):
            frame = self._partitions(sources)
            written = frame.map_partitions(
                _apply_partition,
                function,
                names,
                outputs,
                partition_info=True,
                meta=pd.DataFrame({"rows": pd.Series([], dtype="int64")}),
                enforce_metadata=False,
                align_dataframes=False,
            )
            futures = self.client.compute(written.to_delayed())
        rows = self._gather(futures, names, progress)
        return [int(result["rows"].iloc[0]) for result in rows]

    def summarise_files(
        self,
        summarise: Callable[[pd.DataFrame], Summary],
        merge: Callable[[Summary, Summary], Summary],
        sources: Sequence[Path],
    ) -> Summary:
        """Summarise each partition on the workers and merge the summaries as a tree."""
        import dask

        names = [str(source) for source in sources]
        with dask.config.set({"dataframe.convert-string": False}):
            parts = self._partitions(sources).to_delayed()
        summaries = [
            dask.delayed(summarise_file)(summarise, part, index, name)
            for index, (part, name) in enumerate(zip(parts, names, strict=True))
        ]
        while len(summaries) > 1:
            paired = [
                dask.delayed(merge)(summaries[index], summaries[index + 1])
                for index in range(0, len(summaries) - 1, 2)
            ]
            summaries = paired + ([summaries[-1]] if len(summaries) % 2 else [])
        (result,) = self._gather([self.client.compute(summaries[0])], ["the merged summary"])
        return result  # type: ignore[no-any-return]

    def _gather(
        self, futures: list[Any], names: list[str], progress: Progress | None = None
    ) -> list[Any]:
        """Collect futures as they finish; turn lost work into an :class:`EngineError`."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        index_of = {future.key: index for index, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for future in as_completed(futures):
                index = index_of[future.key]
                results[index] = future.result()
                if progress is not None and hasattr(results[index], "columns"):
                    progress(int(results[index]["rows"].iloc[0]))
        except PartitionError:
            raise
        except KilledWorker as error:
            raise EngineError(
                f"Dask workers kept dying while running {error.task!r} ({error}); the job "
                "was stopped and nothing was written. Check the workers' memory limit and logs."
            ) from None
        except (OSError, TimeoutError) as error:
            raise EngineError(
                f"Lost the Dask cluster during the job: {type(error).__name__}: {error}; "
                "nothing was written."
            ) from None
        finally:
            self.client.cancel([future for future in futures if not future.done()])
        return results

    def close(self) -> None:
        """Close the client when this engine opened it."""
        if self.owns_client:
            self.client.close()


def _apply_partition(
    frame: pd.DataFrame,
    function: PartitionFunction,
    sources: list[str],
    targets: list[str],
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Apply, write, and return the rows written (the ``map_partitions`` task)."""
    import pandas as pd

    if partition_info is None:  # Dask's meta inference calls it without one
        return pd.DataFrame({"rows": pd.Series([], dtype="int64")})
    index = int(partition_info["number"])
    rows = apply_to_file(function, frame, index, sources[index], targets[index])
    return pd.DataFrame({"rows": [rows]})
