"""Event summary: the few columns errgate stores and lists for every event, read from a payload.

This module owns turning a (possibly malformed) Sentry event into an :class:`EventSummary`:
the title GitLab shows (``name``), the description, the actor (transaction or culprit),
platform, level, environment, release and the time the error occurred, next to the group
fingerprint it is given. It reads the event through :mod:`app.ingest.fields`. Text is made
safe for PostgreSQL (no NUL, no lone surrogates) and cut to its column's length; timestamps
in every format SDKs send are parsed and clamped against the receive time. Pure functions,
no I/O, never raises on garbage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from app.ingest.fields import MAX_MESSAGE_CHARS, EventFields, LogEntry, read_fields, text_or_none

__all__ = [
    "EventSummary",
    "clean_text",
    "format_log_entry",
    "normalise_level",
    "parse_timestamp",
    "summarize_event",
]

NAME_MAX_CHARS = 255
DESCRIPTION_MAX_CHARS = 1024
ACTOR_MAX_CHARS = 255
PLATFORM_MAX_CHARS = 64
LEVEL_MAX_CHARS = 32
ENVIRONMENT_MAX_CHARS = 255
RELEASE_MAX_CHARS = 255

DEFAULT_PLATFORM = "other"
DEFAULT_LEVEL = "error"
UNLABELED_NAME = "<unlabeled event>"

#: Timestamps further than this in the future of the receive time are clock skew.
MAX_CLOCK_SKEW = timedelta(minutes=1)
#: Timestamps before this are nonsense (unset clocks, seconds mistaken for milliseconds...).
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=timezone.utc)
_MAX_TIMESTAMP_CHARS = 64

_LEVELS = frozenset({"fatal", "error", "warning", "info", "debug"})
_LEVEL_ALIASES = {"warn": "warning", "critical": "fatal", "err": "error", "log": "info", "trace": "debug"}
# Python logging's numeric levels, as some old clients sent them.
_NUMERIC_LEVELS = {50: "fatal", 40: "error", 30: "warning", 20: "info", 10: "debug"}

_SURROGATE = re.compile("[\ud800-\udfff]")
_EPOCH_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_PRINTF_PLACEHOLDER = re.compile(r"%[sdirf%]")
# What str.splitlines() splits on (every one of them is also whitespace to str.strip()).
_LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class EventSummary:
    """The per-event columns: what the issue list shows and what the group is keyed on."""

    fingerprint: str
    name: str
    description: str
    actor: str
    platform: str
    level: str
    environment: str | None
    release: str | None
    occurred_at: datetime


# --- text safety --------------------------------------------------------------------------


def _replace_lone_surrogates(text: str) -> str:
    """Join surrogate pairs into their character and turn lone surrogates into U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _cut(text: str, max_chars: int) -> str:
    """The first ``max_chars`` characters, never ending between the halves of a surrogate pair."""
    if len(text) <= max_chars:
        return text
    end = max_chars
    if end > 0 and "\ud800" <= text[end - 1] <= "\udbff" and "\udc00" <= text[end] <= "\udfff":
        end -= 1
    return text[:end]


def clean_text(text: str, max_chars: int) -> str:
    """Text PostgreSQL can store, at most ``max_chars`` characters: no NUL, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    text = _cut(text, max_chars)
    if not text.isascii() and _SURROGATE.search(text):  # isascii() answers at once; the search reads it all
        text = _replace_lone_surrogates(text)
    return text


def _first_line(text: str) -> str:
    """The first line that is not blank, stripped; without splitting a long text into lines."""
    text = text.lstrip()
    line_break = _LINE_BREAK.search(text)
    return (text[: line_break.start()] if line_break else text).rstrip()


# --- message ------------------------------------------------------------------------------


def _param_text(param: object) -> str:
    if isinstance(param, str):
        return param
    try:
        return str(param)
    except (ValueError, RecursionError):  # ints beyond Python's digit limit, absurd nesting
        return "?"


def _substitute_params(template: str, params: list[Any]) -> str:
    """printf-style ``%s`` (and ``%d %i %r %f``) substitution in order; ``%%`` is a percent sign.
    Placeholders without a parameter are left as they are."""
    remaining = iter(params)

    def substitute(match: re.Match[str]) -> str:
        if match.group() == "%%":
            return "%"
        param = next(remaining, _MISSING)
        return match.group() if param is _MISSING else _param_text(param)

    return _PRINTF_PLACEHOLDER.sub(substitute, template)


def format_log_entry(entry: LogEntry) -> str:
    """``formatted`` when sent, else the template with list ``params`` substituted, cut to
    :data:`~app.ingest.fields.MAX_MESSAGE_CHARS` like a formatted message that was sent."""
    if entry.formatted:
        return entry.formatted
    template = entry.template or ""
    if isinstance(entry.params, list) and entry.params and "%" in template:
        return _substitute_params(template, entry.params)[:MAX_MESSAGE_CHARS]
    return template


# --- fields -------------------------------------------------------------------------------


def _title(exception_type: str | None, message: str, exception_value: str | None) -> str:
    """Exception type, else the message's first line, else the value's, else a placeholder."""
    if exception_type and exception_type.strip():
        return exception_type.strip()
    return _first_line(message) or _first_line(exception_value or "") or UNLABELED_NAME


def _frame_culprit(frame: dict[str, Any]) -> str | None:
    """``function(module)``, ``function(filename)`` without a module, or ``None``."""
    function = text_or_none(frame.get("function"))
    place = (
        text_or_none(frame.get("module"))
        or text_or_none(frame.get("filename"))
        or text_or_none(frame.get("abs_path"))
    )
    if place is None:
        return function
    return f"{function or '?'}({place})"


def _culprit(app_frames: list[dict[str, Any]]) -> str:
    """The culprit of the crashing frame: the last in-app frame, else the last frame."""
    for frame in reversed(app_frames):
        culprit = _frame_culprit(frame)
        if culprit:
            return culprit
    return ""


def _actor(event: dict[str, Any], fields: EventFields) -> str:
    transaction = text_or_none(event.get("transaction"))
    if transaction and transaction.replace("\x00", "").strip():
        return transaction
    return _culprit(fields.app_frames)


def normalise_level(value: object) -> str:
    """One of fatal/error/warning/info/debug; aliases mapped, anything else is ``error``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _NUMERIC_LEVELS.get(value, DEFAULT_LEVEL)
    if not isinstance(value, str):
        return DEFAULT_LEVEL
    level = value.strip().lower()
    if level in _LEVELS:
        return level
    return _LEVEL_ALIASES.get(level, DEFAULT_LEVEL)


def _platform(value: object) -> str:
    platform = clean_text(value.strip(), PLATFORM_MAX_CHARS) if isinstance(value, str) else ""
    return platform or DEFAULT_PLATFORM


def _optional_label(value: object, max_chars: int) -> str | None:
    """A stripped, cleaned, non-empty string, else ``None`` (the caller picks the default)."""
    if not isinstance(value, str):
        return None
    label = clean_text(value.strip(), max_chars).strip()
    return label or None


# --- timestamps ---------------------------------------------------------------------------


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is timezone.utc:  # the receive time, and what fromisoformat makes of a "Z"
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _from_epoch_seconds(seconds: float) -> datetime | None:
    if not math.isfinite(seconds) or seconds < 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _lenient_iso_8601(text: str) -> str:
    """Lower-case ``t``/``z``, a ``Z`` suffix and over-long fractions spelled the strict way."""
    text = _LONG_FRACTION.sub(r"\1", text.upper())
    return text[:-1] + "+00:00" if text.endswith("Z") else text


def _from_iso_8601(text: str) -> datetime | None:
    try:
        return _as_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        pass
    try:  # spelled leniently: made strict only now, as most SDKs send what fromisoformat reads
        return _as_utc(datetime.fromisoformat(_lenient_iso_8601(text)))
    except (ValueError, OverflowError):
        return None


def _timestamp_from_text(text: str) -> datetime | None:
    text = text.strip()
    if not text or len(text) > _MAX_TIMESTAMP_CHARS:
        return None
    if _EPOCH_SECONDS.fullmatch(text):
        return _from_epoch_seconds(float(text))
    return _from_iso_8601(text)


def _timestamp_from(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return _from_epoch_seconds(float(value))
        except OverflowError:
            return None
    if isinstance(value, str):
        return _timestamp_from_text(value)
    return None


def parse_timestamp(value: object, *, received_at: datetime) -> datetime:
    """When the event occurred, tz-aware UTC. Epoch seconds (number or numeric string) and
    RFC 3339 / ISO 8601 text are accepted; anything unparsable, negative, before 2000 or more
    than a minute after ``received_at`` yields ``received_at`` (as UTC)."""
    received_utc = _as_utc(received_at)
    occurred = _timestamp_from(value)
    if occurred is None or occurred < EARLIEST_TIMESTAMP or occurred > received_utc + MAX_CLOCK_SKEW:
        return received_utc
    return occurred


# --- summary ------------------------------------------------------------------------------


def summarize_event(
    event: dict[str, Any], *, fingerprint: str, received_at: datetime, fields: EventFields | None = None
) -> EventSummary:
    """The :class:`EventSummary` of ``event`` in the group ``fingerprint``; a non-dict event
    summarises as an empty one. ``fields``: :func:`~app.ingest.fields.read_fields` of ``event``,
    when the caller has them (grouping reads the same)."""
    if not isinstance(event, dict):
        event, fields = {}, None
    if fields is None:
        fields = read_fields(event)
    exception = fields.exception
    kind = text_or_none(exception.get("type")) if exception else None
    value = fields.exception_value
    entry = fields.log_entry
    message = format_log_entry(entry) if entry else ""
    return EventSummary(
        fingerprint=fingerprint,
        name=clean_text(_title(kind, message, value), NAME_MAX_CHARS) or UNLABELED_NAME,
        description=clean_text(value or message, DESCRIPTION_MAX_CHARS),
        actor=clean_text(_actor(event, fields), ACTOR_MAX_CHARS),
        platform=_platform(event.get("platform")),
        level=normalise_level(event.get("level")),
        environment=_optional_label(event.get("environment"), ENVIRONMENT_MAX_CHARS),
        release=_optional_label(event.get("release"), RELEASE_MAX_CHARS),
        occurred_at=parse_timestamp(event.get("timestamp"), received_at=received_at),
    )
