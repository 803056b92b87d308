"""Every model family the shared search can tune, tabular and text, looked up by name.

The search and the trainer ask :func:`candidate_class` rather than a fixed dict, so a task
adapter adds its families here and they get the same portfolio, Optuna search, leaderboard and
significance verdict as the tabular ones. Text families are imported on first use.
"""

from __future__ import annotations

from shipyard.tasks.tabular import CANDIDATES, Candidate

__all__ = ["candidate_class"]


def candidate_class(name: str) -> type[Candidate]:
    """Return the family called ``name``.

    Raises
    ------
    KeyError
        When no family has that name.
    """
    if name in CANDIDATES:
        return CANDIDATES[name]
    from shipyard.tasks.text.candidates import TEXT_FAMILIES

    if name in TEXT_FAMILIES:
        return TEXT_FAMILIES[name]
    raise KeyError(f"No model family is called '{name}'.")
