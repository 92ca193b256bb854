"""Event fields: tolerant accessors for the parts of an event that grouping and the summary both read.

Both agree on what "the primary exception", "the crashing stack" and "the log message" are
because both read them here. A field that is missing, null or of the wrong type is absent;
nothing here raises on garbage.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "LogEntry",
    "crash_frames",
    "exception_values",
    "fallback_frames",
    "in_app_or_all",
    "log_entry",
    "primary_exception",
    "stacktrace_frames",
    "text_or_none",
]


class LogEntry(NamedTuple):
    """A ``logentry``/``message`` read tolerantly: template before params, formatted after."""

    template: str | None
    formatted: str | None
    params: object


def text_or_none(value: object) -> str | None:
    """A non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None


def _dict_or_none(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _values_list(container: object) -> list[Any]:
    """The entries of a ``{"values": [...]}`` container or of a bare list."""
    if isinstance(container, dict):
        container = container.get("values")
    return container if isinstance(container, list) else []


def exception_values(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The event's exceptions, oldest first, with nulls and non-objects dropped."""
    return [value for value in _values_list(event.get("exception")) if isinstance(value, dict)]


def primary_exception(event: dict[str, Any]) -> dict[str, Any] | None:
    """The primary exception: the last (most recent) one of the chain, if any."""
    values = exception_values(event)
    return values[-1] if values else None


def stacktrace_frames(stacktrace: object) -> list[dict[str, Any]]:
    """The frames of a stacktrace object, oldest first, non-objects dropped."""
    stacktrace = _dict_or_none(stacktrace)
    frames = stacktrace.get("frames") if stacktrace else None
    if not isinstance(frames, list):
        return []
    return [frame for frame in frames if isinstance(frame, dict)]


def _crashed_thread_frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    threads = [thread for thread in _values_list(event.get("threads")) if isinstance(thread, dict)]
    for flag in ("crashed", "current"):
        for thread in threads:
            if thread.get(flag) is True:
                return stacktrace_frames(thread.get("stacktrace"))
    return []


def fallback_frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Frames of the event-level ``stacktrace``, else of the crashed (or current) thread."""
    return stacktrace_frames(event.get("stacktrace")) or _crashed_thread_frames(event)


def crash_frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The frames of the crashing stack: the primary exception's, else the fallbacks."""
    exception = primary_exception(event)
    frames = stacktrace_frames(exception.get("stacktrace")) if exception else []
    return frames or fallback_frames(event)


def in_app_or_all(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the frames marked ``in_app: true`` when there is any, else all of them."""
    in_app = [frame for frame in frames if frame.get("in_app") is True]
    return in_app or frames


def _log_entry_from(value: object) -> LogEntry | None:
    if isinstance(value, str):
        return LogEntry(value, value, None) if value else None
    if not isinstance(value, dict):
        return None
    entry = LogEntry(text_or_none(value.get("message")), text_or_none(value.get("formatted")), value.get("params"))
    return entry if entry.template or entry.formatted else None


def log_entry(event: dict[str, Any]) -> LogEntry | None:
    """The event's log message: ``logentry`` first, then ``message``; a string or an object."""
    return _log_entry_from(event.get("logentry")) or _log_entry_from(event.get("message"))
