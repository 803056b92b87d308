"""The one seam through which trials and folds run: a joblib backend chosen by name.

The search never starts processes or threads itself; it hands a function and a list of work
items to :meth:`Executor.map`. With ``n_jobs=1`` (the default) the items run one after another
in this process. With more jobs they run on the named joblib backend (``loky`` processes,
``threading``, or any backend a cluster engine registers with joblib, such as ``dask`` or
``ray``), so a cluster can be plugged in without touching the search.

Data every item needs (the training rows) is passed once as ``shared`` arguments rather than
inside each item: joblib's ``dask`` backend then sends it to the cluster once per call instead
of once per item, and ``loky`` memory-maps large arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["Executor"]

Item = TypeVar("Item")


class Executor:
    """Run work items in process or on a joblib backend.

    Parameters
    ----------
    backend
        A joblib backend name: ``loky``, ``threading``, ``multiprocessing`` or a registered one
        (``dask`` once a Dask client is open).
    n_jobs
        How many items run at once; 1 runs them in this process, in order; -1 lets the
        backend run every item at once (a cluster schedules them on its workers).
    """

    def __init__(self, backend: str = "loky", n_jobs: int = 1) -> None:
        self.backend = backend
        self.n_jobs = n_jobs

    def batch_size(self, total: int) -> int:
        """How many of ``total`` items are handed over at once."""
        return total if self.n_jobs < 1 else min(self.n_jobs, max(total, 1))

    def map(self, function: Callable[..., Any], items: Sequence[Item], *shared: Any) -> list[Any]:
        """Return ``[function(item, *shared) for item in items]``, in item order."""
        if self.n_jobs == 1 or len(items) <= 1:
            return [function(item, *shared) for item in items]
        from joblib import Parallel, delayed, parallel_config

        # parallel_config (not Parallel's own argument) is what loads external backends such
        # as 'dask' on first use.
        with parallel_config(backend=self.backend, n_jobs=self.n_jobs):
            return list(Parallel()(delayed(function)(item, *shared) for item in items))
