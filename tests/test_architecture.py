"""The architecture's rules that a linter cannot see: outside ``tasks/``, nothing compares a
task's name; it asks the task (``shipyard.tasks.base``). The layers themselves are checked by
import-linter (``[tool.importlinter]`` in pyproject.toml, run by ``make lint``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from shipyard.tasks.base import BUILTIN_TASKS, task_by_name

SOURCE = Path(__file__).resolve().parents[1] / "src" / "shipyard"
# What a label is (several tasks share these kinds, and metrics differ by kind): not a task.
LABEL_KINDS = {"auto", "binary", "multiclass", "regression"}


def _task_names() -> set[str]:
    names: set[str] = set()
    for name in BUILTIN_TASKS:
        capabilities = task_by_name(name).capabilities
        names |= {name, *capabilities.config_tasks, *capabilities.manifest_tasks}
    return names - LABEL_KINDS


def _compared_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant that is an operand of a comparison (``==``, ``!=``, ``in``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for operand in [node.left, *node.comparators]:
            candidates = (
                operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
            )
            for candidate in candidates:
                if isinstance(candidate, ast.Constant) and isinstance(candidate.value, str):
                    found.append((node.lineno, candidate.value))
    return found


def test_no_module_outside_tasks_compares_a_task_name():
    names = _task_names()
    assert {"tabular", "text_classification", "recommendation"} <= names
    offences = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if relative.parts[0] == "tasks":
            continue
        for line, value in _compared_strings(ast.parse(path.read_text(encoding="utf-8"))):
            if value in names:
                offences.append(f"{relative}:{line} compares '{value}'")
    assert not offences, "ask the task instead:\n" + "\n".join(offences)


def test_the_check_finds_a_comparison_when_there_is_one():
    tree = ast.parse(
        'if manifest["task"] == "recommendation" or kind in ("text_classification",):\n    pass'
    )
    assert [value for _, value in _compared_strings(tree)] == [
        "recommendation",
        "text_classification",
    ]


def test_no_function_of_the_pipeline_driver_is_longer_than_80_lines():
    path = SOURCE / "pipeline" / "driver.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lengths = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.end_lineno is not None
    }
    assert "train" in lengths
    assert max(lengths.values()) <= 80, lengths
