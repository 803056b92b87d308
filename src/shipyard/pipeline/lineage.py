"""Lineage: which code and which packages trained a model."""

from __future__ import annotations

import platform
from importlib import metadata

from shipyard._version import __version__

__all__ = ["PACKAGES", "code_version", "package_versions"]

PACKAGES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "lightgbm",
    "scipy",
    "pyarrow",
    "sqlalchemy",
    "pydantic",
    "optuna",
    "xgboost",
    "catboost",
)


def code_version() -> str:
    """Return the version of shipyard that trains."""
    return __version__


def package_versions() -> dict[str, str]:
    """Versions of shipyard, Python and the packages a bundle depends on."""
    versions = {"shipyard": __version__, "python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
