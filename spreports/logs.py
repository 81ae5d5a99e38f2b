"""One log format for every process: a text line or a JSON object per record, with the work's ids.

Every process (worker, beat, relay, Flower, the commands) formats its records with :func:`formatter`
(``SPREPORTS_LOG_FORMAT``: ``text`` or ``json``) and passes them through :class:`ContextFilter`, which
adds the ids of the work in hand: those bound with :func:`log_context` (the worker binds a task's id,
name and id arguments for the task's run) and those given as ``extra=`` to one call. The redacting
filter (:mod:`spreports.redaction`) stays on every handler, and the JSON formatter redacts too.

Text: ``2026-01-01 12:00:00,000 INFO spreports.relay [MainProcess/MainThread] relayed ... seller_id=A1 task_id=...``
JSON: ``{"time": "...", "level": "INFO", "logger": "...", "message": "...", "seller_id": "A1", ...}``
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

from spreports import redaction

LogFormat = Literal["text", "json"]
#: The ids a record may carry, in the order they are shown.
CONTEXT_FIELDS = (
    "task_id",
    "task_name",
    "seller_id",
    "report_type",
    "report_id",
    "report_document_id",
    "notification_id",
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(processName)s/%(threadName)s] %(message)s"

_context: ContextVar[Mapping[str, str] | None] = ContextVar("spreports_log_context", default=None)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` (those of :data:`CONTEXT_FIELDS`; None is left out) to every record logged in the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def bind(**fields: object) -> object:
    """Add ``fields`` to the records of this thread (or task) until :func:`unbind` with the returned token."""
    known = {name: str(value) for name, value in fields.items() if name in CONTEXT_FIELDS and value is not None}
    return _context.set({**(_context.get() or {}), **known})


def unbind(token: object) -> None:
    """Undo the :func:`bind` that returned ``token``."""
    try:
        _context.reset(token)  # type: ignore[arg-type]
    except ValueError:
        # Bound in another context (a task replaced under the same id runs its prerun elsewhere): the ids
        # of this one are cleared instead, so no later record of this thread carries them.
        _context.set(None)


def record_context(record: logging.LogRecord) -> dict[str, str]:
    """The ids of ``record``: those bound in its thread, then those passed as ``extra=``."""
    fields = dict(_context.get() or {})
    for name in CONTEXT_FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            fields[name] = str(value)
    return {name: fields[name] for name in CONTEXT_FIELDS if name in fields}


class ContextFilter(logging.Filter):
    """Stores the record's ids on it (``record.spreports_context``) when it is handled in its own thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.spreports_context = record_context(record)
        return True


class ExpectedFailureFilter(logging.Filter):
    """Drops Celery's own record of a task's expected failure (one of the task's ``throws``).

    Such a task tells its failure itself, in one line; Celery's ``raised expected: ...`` would repeat it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        data = record.__dict__.get("data")
        return not (
            record.name == "celery.app.trace"
            and isinstance(data, dict)
            and data.get("description") == "raised expected"
        )


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    found = record.__dict__.get("spreports_context")
    return found if isinstance(found, dict) else record_context(record)


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`, then the record's ids as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _context_of(record)
        if not fields:
            return line
        head, newline, rest = line.partition("\n")
        return head + " " + " ".join(f"{name}={value}" for name, value in fields.items()) + newline + rest


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time, level, logger, process, message, ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "thread": record.threadName,
            "message": redaction.redact(record.getMessage()),
            **_context_of(record),
        }
        if record.exc_info:
            entry["exception"] = redaction.redact(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format``."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def install(logger: logging.Logger | None, log_format: LogFormat) -> None:
    """Give every handler of ``logger`` (default: the root logger) the format, the ids and the redaction."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        handler.setFormatter(formatter(log_format))
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if not any(isinstance(f, ExpectedFailureFilter) for f in handler.filters):
            handler.addFilter(ExpectedFailureFilter())
    redaction.install(target)


def configure(level: str, log_format: LogFormat) -> None:
    """Set up the root logger of a process that is not a Celery one: stderr, the level, :func:`install`."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    root.setLevel(level)
    install(root, log_format)
