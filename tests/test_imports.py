from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import shipyard

HEAVY = ("lightgbm", "sklearn", "pandas", "starlette", "uvicorn", "scipy", "sqlalchemy")


def test_import_shipyard_loads_no_heavy_library() -> None:
    code = (
        "import json, sys, shipyard; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("name", shipyard.__all__)
def test_public_names_resolve(name: str) -> None:
    assert getattr(shipyard, name) is not None
    assert name in dir(shipyard)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        _ = shipyard.trian  # type: ignore[attr-defined]


def test_version_is_a_string() -> None:
    assert shipyard.__version__.count(".") == 2


# Help must come at once: nothing that reads configs or data, trains or serves is imported.
# (pydantic is not listed: typer itself builds some options' converters with it.)
HELP_MUST_NOT_IMPORT = (
    *HEAVY,
    "numpy",
    "yaml",
    "alembic",
    "pyarrow",
    "duckdb",
    "torch",
    "nats",
    "redis",
    "shipyard.config",
    "jinja2",
    "gradio",
)


@pytest.mark.parametrize(
    "arguments",
    [
        ["--help"],
        ["train", "--help"],
        ["serve", "--help"],
        ["models", "--help"],
        ["db", "--help"],
        ["ui", "--help"],
        ["gradio", "--help"],
        ["stream", "--help"],
    ],
)
def test_help_imports_nothing_heavy(arguments: list[str]) -> None:
    code = (
        "import json, sys\n"
        "from shipyard.cli import app\n"
        "try:\n"
        f"    app({arguments!r}, prog_name='shipyard')\n"
        "except SystemExit as stop:\n"
        "    assert stop.code in (0, None), stop.code\n"
        f"print(json.dumps([m for m in {list(HELP_MUST_NOT_IMPORT)!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "Usage" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_wait_passively_unless_the_user_says(
    preset: str | None, expected: str
) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if preset is not None:
        environment["OMP_WAIT_POLICY"] = preset
    code = "import os, shipyard; print(os.environ['OMP_WAIT_POLICY'])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment
    )
    assert result.stdout.strip() == expected
