"""The tabular task: binary, multiclass and regression on a table of typed columns.

- :mod:`~shipyard.tasks.tabular.task`: :class:`TabularTask`, the hooks the driver calls;
- :mod:`~shipyard.tasks.tabular.candidates`: the model families and their search spaces;
- :mod:`~shipyard.tasks.tabular.distributed`: the fit strategy on a Dask cluster.
"""

from shipyard.tasks.tabular.candidates import (
    CANDIDATES,
    CatBoostCandidate,
    ExtraTreesCandidate,
    LightGBMCandidate,
    LinearCandidate,
    MLPCandidate,
    RandomForestCandidate,
    XGBoostCandidate,
)
from shipyard.training.candidates import Candidate, FeatureSet, feature_set

__all__ = [
    "CANDIDATES",
    "Candidate",
    "CatBoostCandidate",
    "ExtraTreesCandidate",
    "FeatureSet",
    "LightGBMCandidate",
    "LinearCandidate",
    "MLPCandidate",
    "RandomForestCandidate",
    "XGBoostCandidate",
    "feature_set",
]
