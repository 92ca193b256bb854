"""The collector's one pass over an event gives what the separate steps give: fields, fingerprint, summary, payload."""

from __future__ import annotations

from typing import Any

from hypothesis import given

from app.ingest.fields import (
    EventFields,
    crash_frames,
    exception_value,
    in_app_or_all,
    log_entry,
    primary_exception,
    read_fields,
)
from app.ingest.grouping import fingerprint_for
from app.ingest.payload import dumps_event, load_event, pack_event
from app.ingest.routes import pending_event
from app.ingest.summary import summarize_event
from tests.grouping.test_grouping import GARBAGE_SETTINGS, garbled_events, python_event

MAX_BYTES = 1024 * 1024


@GARBAGE_SETTINGS
@given(garbled_events())
def test_read_fields_is_each_accessor_applied_once(event: dict[str, Any]) -> None:
    exception = primary_exception(event)
    frames = crash_frames(event)
    assert read_fields(event) == EventFields(
        exception=exception,
        exception_value=exception_value(exception) if exception else None,
        crash_frames=frames,
        app_frames=in_app_or_all(frames),
        log_entry=log_entry(event),
    )


def separate_steps(payload: bytes, event_id: str, received_at: Any) -> tuple[str, Any, str]:
    """The fingerprint, summary and stored payload as the public functions give them one by one."""
    event = load_event(payload, max_bytes=MAX_BYTES)
    fingerprint = fingerprint_for(event)
    summary = summarize_event(event, fingerprint=fingerprint, received_at=received_at)
    event["event_id"] = event_id
    return fingerprint, summary, pack_event(event)


@GARBAGE_SETTINGS
@given(garbled_events())
def test_pending_event_is_the_separate_steps(event: dict[str, Any]) -> None:
    payload = dumps_event(event)
    pending = pending_event(7, payload, None, MAX_BYTES)
    fingerprint, summary, stored = separate_steps(payload, pending.event_id, pending.received_at)
    assert (pending.summary.fingerprint, pending.summary, pending.payload) == (fingerprint, summary, stored)
    assert pending.project_id == 7


def test_pending_event_takes_the_envelope_id_first() -> None:
    event = python_event()
    event["event_id"] = "b" * 32
    payload = dumps_event(event)
    assert pending_event(1, payload, "a" * 32, MAX_BYTES).event_id == "a" * 32
    assert pending_event(1, payload, None, MAX_BYTES).event_id == "b" * 32
    del event["event_id"]
    assert len(pending_event(1, dumps_event(event), None, MAX_BYTES).event_id) == 32
