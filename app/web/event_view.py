"""The view of one stored event for the error page: a stored Sentry payload made into plain dataclasses.

:func:`build` reads the payload as errgate stores it (the JSON the SDK sent, see
app/ingest/payload.py) and never raises: the payload is hostile input, so a field of the wrong
type reads as empty and long values are cut (app/web/payload_values.py). Every text in the view
is plain text for the template to escape, except the source lines, which are escaped and
highlighted already (app/web/highlight.py). The exception chain and frames are in
app/web/stack_view.py (Python events oldest call first, other platforms newest first); the
request and its masking in app/web/request_view.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.web.payload_values import MAX_ROWS, clip, key, mapping, pairs, text, timestamp, values_list
from app.web.request_view import RequestView, request
from app.web.stack_view import ExceptionView, Frame, exceptions, frames_order, thread_stack

MAX_BREADCRUMBS = 200  # the newest are kept (sentry-python sends at most 100)
MAX_CONTEXTS = 50
MESSAGE_LIMIT = 10_000
# The contexts people look for first, with their titles; others follow in the order sent.
_KNOWN_CONTEXTS = {
    "runtime": "Runtime", "os": "Operating system", "browser": "Browser", "device": "Device", "app": "App", "trace": "Trace"
}

Rows = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Breadcrumb:
    timestamp: str
    category: str  # its category, else its type
    level: str
    message: str
    data: Rows


@dataclass(frozen=True)
class ContextView:
    name: str
    title: str
    summary: str  # "name version" of a runtime, OS, browser…
    rows: Rows


@dataclass(frozen=True)
class EventView:
    event_id: str
    timestamp: str
    platform: str
    level: str
    environment: str
    release: str
    transaction: str
    server_name: str
    logger: str
    message: str
    exceptions: tuple[ExceptionView, ...]  # in the order raised; the last is the primary
    stacktrace: tuple[Frame, ...]  # a message event's thread stack, when it has no exception
    frames_order: str  # "oldest call first" (Python) or "newest call first"
    breadcrumbs: tuple[Breadcrumb, ...]  # oldest first, as sent
    breadcrumbs_note: str
    request: RequestView | None
    user: Rows
    tags: Rows
    contexts: tuple[ContextView, ...]
    extra: Rows
    sdk: str  # "name version"


def build(payload: Any) -> EventView:
    """The view of a stored event payload; any value is accepted and read as far as it makes sense."""
    event = mapping(payload)
    platform = text(event.get("platform"), 50)
    chain = exceptions(event, platform)
    crumbs = [crumb for crumb in values_list(event.get("breadcrumbs")) if isinstance(crumb, dict)]
    return EventView(
        event_id=text(event.get("event_id"), 64),
        timestamp=timestamp(event.get("timestamp")),
        platform=platform,
        level=text(event.get("level"), 20) or "error",
        environment=text(event.get("environment"), 200),
        release=text(event.get("release"), 200),
        transaction=text(event.get("transaction"), 500),
        server_name=text(event.get("server_name"), 200),
        logger=text(event.get("logger"), 200),
        message=_message(event),
        exceptions=chain,
        stacktrace=() if chain else thread_stack(event, platform),
        frames_order=frames_order(platform),
        breadcrumbs=tuple(_breadcrumb(crumb) for crumb in crumbs[-MAX_BREADCRUMBS:]),
        breadcrumbs_note=f"{len(crumbs) - MAX_BREADCRUMBS} older breadcrumbs not shown" if len(crumbs) > MAX_BREADCRUMBS else "",
        request=request(event.get("request")),
        user=tuple(pairs(event.get("user"))),
        tags=tuple(pairs(event.get("tags"))),
        contexts=_contexts(event.get("contexts")),
        extra=tuple(pairs(event.get("extra"))),
        sdk=_name_version(mapping(event.get("sdk"))),
    )


def _message(event: dict) -> str:
    """The message of a message event: ``logentry`` or ``message``, formatted when the SDK formatted it.

    The template is not formatted with its params here: a hostile ``%999999999s`` would make a
    gigabyte of text.
    """
    for entry in (event.get("logentry"), event.get("message")):
        if isinstance(entry, dict):
            entry = entry.get("formatted") or entry.get("message")
        if isinstance(entry, str) and entry:
            return clip(entry, MESSAGE_LIMIT)
    return ""


def _breadcrumb(crumb: dict) -> Breadcrumb:
    return Breadcrumb(
        timestamp=timestamp(crumb.get("timestamp")),
        category=text(crumb.get("category"), 200) or text(crumb.get("type"), 200),
        level=text(crumb.get("level"), 20),
        message=text(crumb.get("message")),
        data=tuple(pairs(crumb.get("data"), 50)),
    )


def _contexts(value: Any) -> tuple[ContextView, ...]:
    contexts = [(name, context) for name, context in mapping(value).items() if isinstance(context, dict)]
    contexts.sort(key=lambda item: list(_KNOWN_CONTEXTS).index(item[0]) if item[0] in _KNOWN_CONTEXTS else len(_KNOWN_CONTEXTS))
    return tuple(
        ContextView(
            name=key(name),
            title=_KNOWN_CONTEXTS.get(name) or key(name),
            summary=_name_version(context),
            rows=tuple(pairs(context, MAX_ROWS)),
        )
        for name, context in contexts[:MAX_CONTEXTS]
    )


def _name_version(value: dict) -> str:
    return " ".join(part for part in (text(value.get("name"), 200), text(value.get("version"), 100)) if part)
