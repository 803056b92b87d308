"""shipyard: carry a model from raw data to a served, monitored, documented service.

The Python API is the product; the CLI and the server are thin shells over it. Submodules load
on first use, so ``import shipyard`` stays fast and pulls in no model library.

>>> import shipyard
>>> shipyard.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from shipyard._version import __version__

# OpenMP threads (LightGBM, XGBoost, scikit-learn) spin while they wait for each other by
# default. On a machine with more runnable threads than cores, a busy laptop, the spinning
# takes the CPU the work needs: 100 LightGBM trees on Adult took 46-50 s with 2 spinning
# threads and 2-3 s with passive ones, at load 14 on 2 cores (docs/training.md). Set before a
# model library loads OpenMP, which reads it once; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from shipyard import datasets
    from shipyard.config import PipelineConfig, load_config
    from shipyard.data.contract import Contract
    from shipyard.pipeline import evaluate, train
    from shipyard.registry.store import Registry

__all__ = [
    "Contract",
    "PipelineConfig",
    "Registry",
    "__version__",
    "datasets",
    "evaluate",
    "load_config",
    "train",
]

_LAZY = {
    "datasets": ("shipyard.datasets", None),
    "PipelineConfig": ("shipyard.config", "PipelineConfig"),
    "load_config": ("shipyard.config", "load_config"),
    "Contract": ("shipyard.data.contract", "Contract"),
    "train": ("shipyard.pipeline", "train"),
    "evaluate": ("shipyard.pipeline", "evaluate"),
    "Registry": ("shipyard.registry.store", "Registry"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'shipyard' has no attribute '{name}'") from None
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted(__all__)
