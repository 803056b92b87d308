"""Structured logs: one JSON object per line, with the event's fields as keys."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "log_config", "log_event"]

# Attributes every LogRecord has; anything else was passed through ``extra`` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Format records as JSON lines: time, level, logger, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return one JSON line for ``record``."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def log_event(
    logger: logging.Logger, message: str, level: int = logging.INFO, **fields: Any
) -> None:
    """Log ``message`` with ``fields`` as separate JSON keys."""
    logger.log(level, message, extra=fields)


def log_config(level: str = "info") -> dict[str, Any]:
    """Return a :func:`logging.config.dictConfig` mapping that writes JSON lines to stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "loggers": {
            name: {"handlers": ["default"], "level": level.upper(), "propagate": False}
            for name in (
                "shipyard",
                "uvicorn",
                "uvicorn.error",
                "uvicorn.access",
                "_granian",
                "granian.access",
            )
        },
    }
