"""Shared fixtures of the deployment tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from shipyard.registry.store import Registry


@pytest.fixture(scope="module")
def registry_copy(adult_model, tmp_path_factory) -> Iterator[Registry]:
    """A private copy of the session's Adult registry (these tests register versions)."""
    home = tmp_path_factory.mktemp("deploy-registry") / "home"
    shutil.copytree(adult_model.home, home)
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    yield registry
    registry.close()
