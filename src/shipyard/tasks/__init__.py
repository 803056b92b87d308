"""Tasks: one package per kind of model, behind one contract (:mod:`shipyard.tasks.base`)."""

from shipyard.tasks.base import (
    Capabilities,
    Task,
    available_tasks,
    task_by_name,
    task_for_config,
    task_for_manifest,
)

__all__ = [
    "Capabilities",
    "Task",
    "available_tasks",
    "task_by_name",
    "task_for_config",
    "task_for_manifest",
]
