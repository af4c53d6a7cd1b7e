"""Logs that can be read and shipped: one event per line, as text or as JSON.

``tuner serve --log-format json`` (and ``tuner run``) writes each event as one JSON object:
``time``, ``level``, ``logger``, ``message`` and, where known, ``experiment``, ``trial``,
``replica`` and ``request_id`` (plus ``exception`` with the traceback). The text format carries
the same fields as ``key=value`` after the message. Either way a traceback stays on its event's
line (its line breaks written as ``\\n``), so that a line is an event for every log shipper.

The fields come from context variables (:func:`log_context`): a controller's task sets its
experiment, a trial's task its trial, the request-id middleware the request's id; tasks and
threads started from there inherit them. ``extra={"experiment": ...}`` on one call wins.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

FIELDS = ("experiment", "trial", "replica", "request_id")
"""The context fields of every event, in the order they are written."""

_context: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"tuner_log_{name}", default=None) for name in FIELDS
}


def set_log_context(**fields: str | None) -> None:
    """Set context fields for the rest of the current task (and what it starts)."""
    for name, value in fields.items():
        _context[name].set(value)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Set context fields for the events logged inside the ``with`` block."""
    tokens = [(_context[name], _context[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current(name: str) -> str | None:
    """The context field ``name`` here (``None`` when unset)."""
    return _context[name].get()


class ContextFilter(logging.Filter):
    """Puts the context fields on each record (``replica`` is the process's own, fixed)."""

    def __init__(self, replica: str | None = None) -> None:
        super().__init__()
        self.replica = replica

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if getattr(record, name, None) is None:
                value = _context[name].get()
                if value is None and name == "replica":
                    value = self.replica
                setattr(record, name, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, str]:
    return {n: str(v) for n in FIELDS if (v := getattr(record, n, None)) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per event."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            event["exception"] = record.exc_text
        return json.dumps(event, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value...``, on one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        if fields:
            line = f"{line} [{fields}]"
        return line.replace("\r", "").replace("\n", "\\n")


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure_logging(fmt: LogFormat, level: str, replica: str | None = None) -> dict[str, Any]:
    """Send tuner's events to stderr in ``fmt``, one per line; returns the matching logging
    configuration for uvicorn (its ``log_config``), whose access and error logs then use the
    same format and fields."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter(replica))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("tuner").setLevel(level.upper())
    factory = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"event": {"()": factory}},
        "filters": {"context": {"()": ContextFilter, "replica": replica}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "event",
                "filters": ["context"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
