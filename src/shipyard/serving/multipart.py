"""Multipart uploads (``multipart/form-data``) as records, for models whose inputs are files.

Each file part becomes one record ``{part name: base64 of the file's bytes}``: the same record
a JSON client sends, so validation, scoring, logging and feedback are those of ``/predict``.
The body is read within the server's size limit first (413 beyond it).
"""

from __future__ import annotations

import base64
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from shipyard.serving.context import RequestError

__all__ = ["is_multipart", "records_from_multipart"]


def is_multipart(content_type: str | None) -> bool:
    """Whether a request's Content-Type is ``multipart/form-data``."""
    return (content_type or "").split(";")[0].strip().lower() == "multipart/form-data"


def records_from_multipart(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """Return one record per uploaded file part.

    Raises
    ------
    RequestError
        400 when the body is not a well-formed multipart form or holds no file.
    """
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise RequestError(400, "bad_request", "The body is not a multipart/form-data form.")
    records = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(content, bytes):
            continue
        if part.get_filename() is None:
            continue  # a plain form field, not a file
        records.append({name: base64.b64encode(content).decode("ascii")})
    if not records:
        raise RequestError(
            400,
            "bad_request",
            "The form holds no file; send each image as a file part named after the model's "
            "image field (curl -F 'image=@xray.png').",
        )
    return records
