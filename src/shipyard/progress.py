"""Progress events: messages a reporter can print, carrying fields a display can read.

Every reporter in shipyard is a plain ``Callable[[str], None]``. An :class:`Event` *is* the
line to print (a ``str``), so a reporter that only prints keeps working; a live display (the
CLI's) or a test reads ``event.kind`` and ``event.fields`` instead of parsing the text.

Kinds sent by training (fields in brackets):

- ``budget``: the time plan once the data is split [``budget_s``, ``development_s``,
  ``evaluation_s`` (the share kept for evaluation), ``deadline`` (``time.time()`` at which
  the run should be registered)];
- ``setting``: a setting of a family was scored [``family``, ``label``, ``score``,
  ``best``, ``best_family``, ``scored``, ``search_left_s``, ``note``];
- ``sized``: a family's first setting was shrunk to fit the time left [``family``,
  ``note``];
- ``search_done``: the search ended [``search_s``, ``scored``];
- ``stage``: a step of the run began [``stage``: ``development``, ``evaluation``,
  ``registering``];
- ``evaluation_scaled``: evaluation does less to fit the time left [``note``];
- ``registered``: the version is registered [``reference``, ``total_s``].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Event", "Reporter", "event", "silent"]

Reporter = Callable[[str], None]


class Event(str):
    """A progress line that also carries its kind and fields."""

    kind: str
    fields: dict[str, Any]

    def __new__(cls, kind: str, message: str, **fields: Any) -> Event:  # noqa: D102
        line = super().__new__(cls, message)
        line.kind = kind
        line.fields = fields
        return line


def event(kind: str, message: str, **fields: Any) -> Event:
    """Return an :class:`Event` (the message is what plain reporters print)."""
    return Event(kind, message, **fields)


def silent(message: str) -> None:
    """Print nothing (the default reporter)."""
