"""Events as brokers deliver them, and what the consumer publishes back.

An event is one JSON record (the body a ``POST /v1/models/NAME/predict`` would carry for one
record) with an id; for a model whose record is one file (an image model), the event may also
be the file's raw bytes, taken as that field, as a multipart upload is. The id is the key of
everything that follows: the answer is published under it (the broker drops a second publish
of the same id), the prediction log stores it as the request id (feedback names it), and a
dead letter carries it. A broker gives each event a stable id, so an event delivered again
after a crash gets the same one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["MAX_ID_LENGTH", "DeadLetter", "Event", "Published", "decode_record"]

# The prediction log's request id column holds 64 characters.
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Event:
    """One delivered event: its id, its raw body, and the broker's handle to acknowledge it."""

    id: str
    data: bytes
    handle: Any = None


@dataclass(frozen=True)
class Published:
    """An answer to publish: the event it answers and the JSON body."""

    event: Event
    body: bytes


@dataclass(frozen=True)
class DeadLetter:
    """An event that could not be answered, and why (sent to the dead-letter subject)."""

    event: Event
    reason: str
    kind: str = "invalid"  # a bounded label for metrics: invalid_json, not_a_record, ...

    def body(self) -> bytes:
        """Return the dead letter's JSON: the id, the reason and the event's body as text."""
        return orjson.dumps(
            {
                "id": self.event.id,
                "reason": self.reason,
                "data": self.event.data.decode("utf-8", errors="replace"),
            }
        )


def decode_record(event: Event, file_field: str | None = None) -> dict[str, Any] | DeadLetter:
    """Return the event's record, or the dead letter that says why it cannot be one.

    ``file_field`` is the record field a model takes a file in (base64), when its record is
    one file: a body that is not a JSON object is then the file's raw bytes.

    Examples
    --------
    >>> decode_record(Event("1", b'{"age": 39}'))
    {'age': 39}
    >>> decode_record(Event("2", b"[1, 2]")).reason
    'the event must be one JSON object (a record), got a list'
    >>> decode_record(Event("3", b"GIF89a"), file_field="image")
    {'image': 'R0lGODlh'}
    """
    if len(event.id) > MAX_ID_LENGTH:
        return DeadLetter(
            event,
            f"the event id has {len(event.id)} characters; at most {MAX_ID_LENGTH} are kept "
            "(the prediction log's request id): send a shorter id",
            "id_too_long",
        )
    if file_field is not None and not event.data.lstrip().startswith(b"{"):
        return {file_field: base64.b64encode(event.data).decode("ascii")}
    try:
        record = orjson.loads(event.data)
    except orjson.JSONDecodeError as error:
        return DeadLetter(event, f"the event is not valid JSON: {error}", "invalid_json")
    if not isinstance(record, dict):
        return DeadLetter(
            event,
            f"the event must be one JSON object (a record), got a {type(record).__name__}",
            "not_a_record",
        )
    return record
