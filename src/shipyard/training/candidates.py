"""The shared search's contract for a model family: :class:`Candidate`, and feature sets.

A task hands its families (subclasses of :class:`Candidate`) to the search through
:class:`~shipyard.training.search.SearchSettings`; the search tunes them all the same way
(portfolio first, then Optuna, on shared folds) and never knows which task they belong to.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from shipyard.data.contract import Contract

__all__ = ["Candidate", "FeatureSet", "feature_set", "quiet_fit"]


class FeatureSet(NamedTuple):
    """Feature columns by how they are encoded."""

    numeric: list[str]
    categorical: list[str]

    @property
    def all(self) -> list[str]:
        """Every feature column, numeric first (the order the pipelines read them)."""
        return [*self.numeric, *self.categorical]


def feature_set(contract: Contract) -> FeatureSet:
    """Split the contract's feature columns into numeric and categorical ones."""
    return FeatureSet(
        numeric=[column.name for column in contract.columns if not column.is_categorical],
        categorical=[column.name for column in contract.columns if column.is_categorical],
    )


@contextmanager
def quiet_fit() -> Iterator[None]:
    """Silence convergence warnings: a capped iteration count is a setting, not a fault."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


class Candidate:
    """Shared behaviour of the families; subclasses set the class variables and ``_model``.

    Parameters
    ----------
    features
        The feature columns.
    task
        ``binary``, ``multiclass`` or ``regression``.
    seed
        Random seed of the model.
    n_jobs
        Threads the model may use.
    **params
        Settings from :meth:`portfolio` or :meth:`suggest`; missing ones take the defaults.
    """

    name: ClassVar[str] = ""
    complexity: ClassVar[int] = 0
    """Rank used to prefer simpler models when the difference is not significant."""
    extra: ClassVar[str | None] = None
    """The pip extra that provides the library, when it is not a core dependency."""
    module: ClassVar[str | None] = None
    priority: ClassVar[int] = 9
    """Turn order in the search: families that usually win on tabular data go first."""
    uses_validation: ClassVar[bool] = False
    """Whether :meth:`fit` early-stops on the validation part."""
    defaults: ClassVar[dict[str, Any]] = {}
    size_param: ClassVar[str | None] = None
    """The setting that counts the model's parts (a forest's trees): lowered to fit the time."""

    def __init__(
        self, features: FeatureSet, task: str, seed: int, n_jobs: int = 2, **params: Any
    ) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.name} has no settings {sorted(unknown)}")
        self.features = features
        self.task = task
        self.seed = seed
        self.n_jobs = n_jobs
        self.settings: dict[str, Any] = {**self.defaults, **params}
        self.best_trees_: int | None = None
        self.stop_at: float | None = None
        """Wall-clock time (``time.time()``) at which boosters stop adding trees."""
        self.clock: Callable[[], float] = time.time
        """Where :meth:`out_of_time` reads the time (tests swap in a fake clock)."""

    def out_of_time(self) -> bool:
        """Whether :attr:`stop_at` has passed."""
        return self.stop_at is not None and self.clock() > self.stop_at

    @classmethod
    def available(cls) -> bool:
        """Whether the family's library is installed."""
        if cls.module is None:
            return True
        import importlib.util

        return importlib.util.find_spec(cls.module) is not None

    @classmethod
    def portfolio(cls, task: str) -> list[dict[str, Any]]:
        """Known-good settings, tried before the search proposes its own."""
        return [dict(cls.defaults)]

    @classmethod
    def suggest(cls, trial: Any, task: str) -> dict[str, Any]:
        """Draw settings from the family's search space."""
        raise NotImplementedError

    def _preprocess(self) -> Any:
        raise NotImplementedError

    def _model(self, n_estimators: int | None = None) -> Any:
        raise NotImplementedError

    def pipeline(self, n_estimators: int | None = None) -> Pipeline:
        """Return the unfitted pipeline."""
        from sklearn.pipeline import Pipeline

        return Pipeline([("preprocess", self._preprocess()), ("model", self._model(n_estimators))])

    def fit_params(self, sample_weight: Any = None) -> dict[str, Any]:
        """Extra keyword arguments for ``Pipeline.fit``."""
        return {} if sample_weight is None else {"model__sample_weight": sample_weight}

    def fit(
        self,
        train_x: pd.DataFrame,
        train_y: Any,
        validation_x: pd.DataFrame,
        validation_y: Any,
        sample_weight: Any = None,
    ) -> Pipeline:
        """Fit on the training part."""
        with quiet_fit():
            return self.pipeline().fit(train_x, train_y, **self.fit_params(sample_weight))

    def fit_all(
        self, x: pd.DataFrame, y: Any, trees: int | None = None, sample_weight: Any = None
    ) -> Pipeline:
        """Fit on every labelled row, without holding any out.

        Boosters get ``trees`` trees (the count cross-validation chose) instead of early
        stopping; the other families fit as :meth:`fit` does.
        """
        if not self.uses_validation:
            return self.fit(x, y, x.iloc[:0], y[:0], sample_weight=sample_weight)
        if trees is None:
            raise ValueError(f"{self.name} needs a tree count to fit without early stopping")
        self.best_trees_ = int(trees)
        with quiet_fit():
            return self.pipeline(self.best_trees_).fit(x, y, **self.fit_params(sample_weight))

    def cv_pipeline(self) -> Pipeline:
        """Return an unfitted copy with the settings fitting chose."""
        return self.pipeline(self.best_trees_)

    def params(self) -> dict[str, Any]:
        """Return the settings worth recording in the registry."""
        chosen = {"n_estimators": self.best_trees_} if self.best_trees_ else {}
        return {**self.settings, **chosen}
