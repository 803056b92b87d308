from __future__ import annotations

import json
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
