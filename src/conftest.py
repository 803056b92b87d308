"""Doctest collection of the package: skip modules whose optional extra is not installed.

``--doctest-modules`` imports every module under ``src/shipyard``. Modules of an extra (the
server needs ``shipyard[serve]``) import it at the top, so without the extra the import fails;
such a module is skipped here instead of failing collection. Any other import error still fails,
as it should. This file lives outside the package, so it is not shipped.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent / "shipyard"
# Alembic runs this file inside a migration; imported on its own it has nothing to run against.
MIGRATION_ENVIRONMENT = PACKAGE / "migrations" / "env.py"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _missing_optional_dependency(module: str) -> bool:
    from shipyard.errors import MissingDependencyError

    try:
        importlib.import_module(module)
    except MissingDependencyError:
        return True
    except ModuleNotFoundError as error:
        # A missing third-party module is an absent extra; a missing shipyard module is a bug.
        return error.name is not None and error.name.split(".")[0] != "shipyard"
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip a package module whose optional dependency is not installed (and Alembic's env)."""
    if collection_path.suffix != ".py" or PACKAGE not in collection_path.parents:
        return None
    if collection_path == MIGRATION_ENVIRONMENT:
        return True
    if _missing_optional_dependency(_module_name(collection_path)):
        return True
    return None
