"""Event fields: tolerant accessors for the parts of an event that grouping and the summary both read.

Both agree on what "the primary exception", "the crashing stack" and "the log message" are
because both read them here; the ingest path reads them once per event (:func:`read_fields`)
and hands the result to both. A field that is missing, null or of the wrong type is absent;
nothing here raises on garbage. Long lists and texts are read only as far as Relay or Sentry
keep them (the caps below), so that the work per event stays bounded whatever its size; the
stored payload is not trimmed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "MAX_EXCEPTIONS",
    "MAX_FRAMES",
    "MAX_MESSAGE_CHARS",
    "EventFields",
    "LogEntry",
    "crash_frames",
    "exception_value",
    "exception_values",
    "fallback_frames",
    "in_app_or_all",
    "log_entry",
    "primary_exception",
    "read_fields",
    "stacktrace_frames",
    "text_or_none",
    "text_prefix",
]

#: Frames read per stack trace: the last (most recent) 250, as Relay's TrimmingProcessor keeps
#: them (``enforce_frame_hard_limit(frames, meta, 250)`` drops the oldest ones).
MAX_FRAMES = 250
#: Exceptions read per chain: the last (most recent, the primary one last) 25; Sentry's server
#: kept that many (``SENTRY_MAX_EXCEPTIONS = 25``).
MAX_EXCEPTIONS = 25
#: Characters read of an exception value and of a log message template or formatted message: the
#: most Relay keeps of them (8192 characters plus an allowance of 200 before it truncates).
MAX_MESSAGE_CHARS = 8192 + 200


class LogEntry(NamedTuple):
    """A ``logentry``/``message`` read tolerantly: template before params, formatted after."""

    template: str | None
    formatted: str | None
    params: object


class EventFields(NamedTuple):
    """What grouping and the summary both read of one event, read once (see :func:`read_fields`)."""

    exception: dict[str, Any] | None  # primary_exception()
    exception_value: str | None  # exception_value() of that exception
    crash_frames: list[dict[str, Any]]  # crash_frames()
    app_frames: list[dict[str, Any]]  # in_app_or_all() of those frames
    log_entry: LogEntry | None  # log_entry()


def text_or_none(value: object) -> str | None:
    """A non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None


def text_prefix(value: object, max_chars: int) -> str | None:
    """A non-empty string cut to its first ``max_chars`` characters, else ``None``."""
    text = text_or_none(value)
    return text[:max_chars] if text else None


def _dict_or_none(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _values_list(container: object) -> list[Any]:
    """The entries of a ``{"values": [...]}`` container or of a bare list."""
    if isinstance(container, dict):
        container = container.get("values")
    return container if isinstance(container, list) else []


def exception_values(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The last :data:`MAX_EXCEPTIONS` entries of the event's exception chain, oldest first,
    with nulls and non-objects dropped."""
    values = _values_list(event.get("exception"))[-MAX_EXCEPTIONS:]
    return [value for value in values if isinstance(value, dict)]


def primary_exception(event: dict[str, Any]) -> dict[str, Any] | None:
    """The primary exception: the last (most recent) one of the chain, if any."""
    values = exception_values(event)
    return values[-1] if values else None


def exception_value(exception: dict[str, Any]) -> str | None:
    """The exception's ``value``, cut to :data:`MAX_MESSAGE_CHARS`."""
    return text_prefix(exception.get("value"), MAX_MESSAGE_CHARS)


def stacktrace_frames(stacktrace: object) -> list[dict[str, Any]]:
    """The last :data:`MAX_FRAMES` entries of a stacktrace object's frames, oldest first,
    non-objects dropped."""
    stacktrace = _dict_or_none(stacktrace)
    frames = stacktrace.get("frames") if stacktrace else None
    if not isinstance(frames, list):
        return []
    return [frame for frame in frames[-MAX_FRAMES:] if isinstance(frame, dict)]


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
    return _crash_frames(event, primary_exception(event))


def _crash_frames(event: dict[str, Any], exception: dict[str, Any] | None) -> list[dict[str, Any]]:
    frames = stacktrace_frames(exception.get("stacktrace")) if exception else []
    return frames or fallback_frames(event)


def in_app_or_all(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the frames marked ``in_app: true`` when there is any, else all of them."""
    in_app = [frame for frame in frames if frame.get("in_app") is True]
    return in_app or frames


def _log_entry_from(value: object) -> LogEntry | None:
    if isinstance(value, str):
        text = text_prefix(value, MAX_MESSAGE_CHARS)
        return LogEntry(text, text, None) if text else None
    if not isinstance(value, dict):
        return None
    entry = LogEntry(
        text_prefix(value.get("message"), MAX_MESSAGE_CHARS),
        text_prefix(value.get("formatted"), MAX_MESSAGE_CHARS),
        value.get("params"),
    )
    return entry if entry.template or entry.formatted else None


def log_entry(event: dict[str, Any]) -> LogEntry | None:
    """The event's log message: ``logentry`` first, then ``message``; a string or an object.
    Template and formatted message are cut to :data:`MAX_MESSAGE_CHARS`."""
    return _log_entry_from(event.get("logentry")) or _log_entry_from(event.get("message"))


def read_fields(event: dict[str, Any]) -> EventFields:
    """The shared fields of ``event`` in one pass: each accessor above, applied once."""
    exception = primary_exception(event)
    frames = _crash_frames(event, exception)
    value = exception_value(exception) if exception else None
    return EventFields(exception, value, frames, in_app_or_all(frames), log_entry(event))
