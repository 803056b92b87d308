"""Fixtures of the notes tests: a PostgreSQL schema of its own per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose tables land in a schema of their own, dropped afterwards."""
    url = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
    if url is None:
        pytest.skip("set SHIPYARD_TEST_POSTGRES_URL to run PostgreSQL tests")
    schema = f"notes_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # The run's own schema may already be in the URL's options: this one replaces it.
    yield (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
