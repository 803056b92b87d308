"""Lineage: which code, on which machine, with which packages trained a model.

:func:`lineage` is the ``lineage`` section of a bundle's manifest. When shipyard runs from a git
checkout it names the commit and whether the working tree had uncommitted changes; otherwise
(an installed distribution, or no ``git``) it records the distribution's version and says so.
Finding the commit never fails training: ``git`` runs with a short timeout, no prompt and no
network, and any problem falls back to the version.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from shipyard._version import __version__

__all__ = ["GIT_TIMEOUT_SECONDS", "PACKAGES", "code_version", "lineage", "package_versions"]

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

GIT_TIMEOUT_SECONDS = 5.0


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


def lineage() -> dict[str, Any]:
    """Return the manifest's ``lineage`` section for a model trained now.

    Returns
    -------
    dict
        ``code_version``, ``commit`` (40 hex digits, or None outside a git checkout),
        ``dirty`` (uncommitted changes to tracked files, or None), ``source`` (how the code
        was identified), ``python``, ``cpu_count`` and ``packages``
        (:func:`package_versions`).
    """
    # This module is shipyard/pipeline/lineage.py: the package is the folder above.
    package_folder = Path(__file__).resolve().parent.parent
    state = _git_state(package_folder)
    if state is None:
        commit, dirty = None, None
        source = (
            f"installed distribution shipyard {_distribution_version()}: not run from a git "
            "checkout (or git is not available), so no commit is recorded"
        )
    else:
        commit, dirty = state
        source = f"git checkout at {_repository_root(package_folder) or package_folder}"
    return {
        "code_version": code_version(),
        "commit": commit,
        "dirty": dirty,
        "source": source,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count() or 1,
        "packages": package_versions(),
    }


def _distribution_version() -> str:
    """Return the installed distribution's version (the package's own without one)."""
    try:
        return metadata.version("shipyard")
    except metadata.PackageNotFoundError:
        return __version__


def _git(folder: Path, *arguments: str) -> str | None:
    """Run one read-only git command in ``folder``; its output, or None on any failure."""
    environment = {
        **os.environ,
        # Never ask for credentials, never take locks: a lineage probe must not block or write.
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
    }
    try:
        completed = subprocess.run(
            ["git", "-C", str(folder), *arguments],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=environment,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def _repository_root(folder: Path) -> str | None:
    return _git(folder, "rev-parse", "--show-toplevel")


def _git_state(package_folder: Path) -> tuple[str, bool] | None:
    """Return the commit and dirty flag of the checkout holding the package, or None.

    The package's ``__init__.py`` must be tracked by that repository: an installed copy
    inside some other repository (a virtual environment in a project folder) is not it.
    """
    if _git(package_folder, "ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    commit = _git(package_folder, "rev-parse", "HEAD")
    status = _git(package_folder, "status", "--porcelain", "--untracked-files=no")
    if commit is None or status is None:
        return None
    return commit, bool(status)
