"""Tests for app.ingest.summary: the per-event columns, text safety and timestamp parsing."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ingest.grouping import fingerprint_for
from app.ingest.summary import EventSummary, parse_timestamp, summarize_event
from tests.grouping.test_grouping import (
    GARBAGE_SETTINGS,
    JSON_VALUES,
    garbled_events,
    message_event,
    python_event,
    python_frame,
    without_stacktrace,
)

UTC = timezone.utc
RECEIVED_AT = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
LEVELS = {"fatal", "error", "warning", "info", "debug"}


def summarize(event: dict[str, Any]) -> EventSummary:
    return summarize_event(event, fingerprint=fingerprint_for(event), received_at=RECEIVED_AT)


# --- a realistic event ---------------------------------------------------------------------


def test_summary_of_a_python_sdk_error_event() -> None:
    event = python_event()
    assert summarize(event) == EventSummary(
        fingerprint=fingerprint_for(event),
        name="KeyError",
        description="'order_id'",
        actor="/api/orders/{order_id}",
        platform="python",
        level="error",
        environment="production",
        release="shop@1.4.2",
        occurred_at=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
    )


def test_summary_is_frozen() -> None:
    summary = summarize(python_event())
    with pytest.raises(AttributeError):
        summary.name = "other"  # type: ignore[misc]


def test_summary_of_an_empty_event_uses_defaults() -> None:
    assert summarize({}) == EventSummary(
        fingerprint=fingerprint_for({}),
        name="<unlabeled event>",
        description="",
        actor="",
        platform="other",
        level="error",
        environment=None,
        release=None,
        occurred_at=RECEIVED_AT,
    )


# --- name and description ------------------------------------------------------------------


def test_name_and_description_come_from_the_primary_exception() -> None:
    event = python_event()
    cause = {"type": "ConnectionError", "value": "refused"}
    event["exception"]["values"].insert(0, cause)
    event["exception"]["values"].append(None)
    summary = summarize(event)
    assert (summary.name, summary.description) == ("KeyError", "'order_id'")


def test_bare_list_exception_is_summarised() -> None:
    event = python_event()
    event["exception"] = event["exception"]["values"]
    assert summarize(event).name == "KeyError"


def test_message_event_name_is_the_first_line_and_description_the_whole_message() -> None:
    summary = summarize(message_event("\nDisk almost full\non /var (91%)"))
    assert summary.name == "Disk almost full"
    assert summary.description == "\nDisk almost full\non /var (91%)"


def test_message_object_prefers_formatted_for_the_description() -> None:
    event = message_event({"message": "User %s failed", "params": ["alice"], "formatted": "User alice failed!"})
    assert summarize(event).description == "User alice failed!"


@pytest.mark.parametrize(
    ("logentry", "expected"),
    [
        ({"message": "User %s failed after %d tries", "params": ["alice", 3]}, "User alice failed after 3 tries"),
        ({"message": "Only %s and %s", "params": ["one"]}, "Only one and %s"),
        ({"message": "At 100%% for %s", "params": ["disk"]}, "At 100% for disk"),
        ({"message": "Named %(user)s", "params": {"user": "alice"}}, "Named %(user)s"),
        ({"message": "No params %s"}, "No params %s"),
        ({"message": "Nested %s", "params": [{"a": [1, None]}]}, "Nested {'a': [1, None]}"),
    ],
)
def test_description_substitutes_list_params_into_the_template(logentry: dict[str, Any], expected: str) -> None:
    assert summarize({"logentry": logentry}).description == expected


def test_exception_without_value_falls_back_to_the_message() -> None:
    event = python_event()
    del event["exception"]["values"][0]["value"]
    event["message"] = "while placing the order"
    assert (summarize(event).name, summarize(event).description) == ("KeyError", "while placing the order")


def test_exception_without_type_is_named_after_the_message_then_the_value() -> None:
    with_message = {"exception": [{"value": "boom\nmore"}], "message": "Checkout failed"}
    without_message = {"exception": [{"value": "boom\nmore"}]}
    assert summarize(with_message).name == "Checkout failed"
    assert summarize(without_message).name == "boom"
    assert summarize(without_message).description == "boom\nmore"


# --- actor ---------------------------------------------------------------------------------


def test_actor_is_the_transaction_when_present() -> None:
    assert summarize(python_event()).actor == "/api/orders/{order_id}"


@pytest.mark.parametrize("transaction", ["", "   ", None, 42, ["x"]])
def test_actor_falls_back_to_the_culprit_of_the_last_in_app_frame(transaction: object) -> None:
    event = python_event()
    event["transaction"] = transaction
    assert summarize(event).actor == "reserve_stock(shop.services.orders)"


def test_culprit_uses_the_last_frame_when_none_is_in_app() -> None:
    frames = [
        python_frame("aiohttp.web_protocol", "_handle_request", in_app=False),
        python_frame("aiohttp.web_app", "_handle", in_app=False),
    ]
    event = python_event(frames=frames)
    del event["transaction"]
    assert summarize(event).actor == "_handle(aiohttp.web_app)"


def test_culprit_uses_the_filename_when_there_is_no_module() -> None:
    frame = {"filename": "src/checkout.js", "abs_path": "https://x/src/checkout.js", "function": "submit", "in_app": True}
    event = {"exception": [{"type": "TypeError", "stacktrace": {"frames": [frame]}}]}
    assert summarize(event).actor == "submit(src/checkout.js)"


def test_culprit_comes_from_the_event_stacktrace_of_a_message_event() -> None:
    event = message_event("slow", stacktrace={"frames": [python_frame("shop.jobs", "nightly")]})
    assert summarize(event).actor == "nightly(shop.jobs)"


def test_actor_is_empty_without_transaction_or_frames() -> None:
    event = without_stacktrace(python_event())
    del event["transaction"]
    assert summarize(event).actor == ""


# --- platform, level, environment, release ------------------------------------------------


@pytest.mark.parametrize(("platform", "expected"), [("javascript", "javascript"), ("", "other"), (None, "other"), (3, "other")])
def test_platform_defaults_to_other(platform: object, expected: str) -> None:
    assert summarize({"platform": platform}).platform == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("fatal", "fatal"),
        ("error", "error"),
        ("warning", "warning"),
        ("info", "info"),
        ("debug", "debug"),
        ("warn", "warning"),
        ("critical", "fatal"),
        ("WARNING", "warning"),
        (" Info ", "info"),
        (30, "warning"),
        ("nonsense", "error"),
        (None, "error"),
        (True, "error"),
        ({}, "error"),
    ],
)
def test_level_is_normalised(level: object, expected: str) -> None:
    event = message_event("x")
    event["level"] = level
    assert summarize(event).level == expected


def test_level_defaults_to_error() -> None:
    assert summarize({"message": "x"}).level == "error"


@pytest.mark.parametrize("field", ["environment", "release"])
@pytest.mark.parametrize("value", [None, "", "  ", 5, {"name": "prod"}, ["prod"]])
def test_environment_and_release_are_none_when_absent_or_invalid(field: str, value: object) -> None:
    event = python_event()
    event[field] = value
    assert getattr(summarize(event), field) is None
    del event[field]
    assert getattr(summarize(event), field) is None


def test_environment_and_release_are_stripped() -> None:
    event = python_event()
    event["environment"], event["release"] = " staging ", "shop@1.0\n"
    summary = summarize(event)
    assert (summary.environment, summary.release) == ("staging", "shop@1.0")


# --- text safety ---------------------------------------------------------------------------

LIMITS = {"name": 255, "description": 1024, "actor": 255, "platform": 64, "environment": 255, "release": 255}


def event_with_text_everywhere(text: str) -> dict[str, Any]:
    return {
        "exception": [{"type": text, "value": text}],
        "transaction": text,
        "platform": text,
        "environment": text,
        "release": text,
    }


@pytest.mark.parametrize(("field", "limit"), LIMITS.items())
def test_text_fields_are_truncated_to_their_column(field: str, limit: int) -> None:
    summary = summarize(event_with_text_everywhere("é" * 5000))
    assert getattr(summary, field) == "é" * limit


def test_truncation_never_splits_a_surrogate_pair() -> None:
    summary = summarize(event_with_text_everywhere("a" * 254 + "\ud83d\ude00" + "b" * 10))
    assert summary.name == "a" * 254
    assert summary.name.encode("utf-8")


def test_truncation_keeps_whole_astral_characters() -> None:
    assert summarize(event_with_text_everywhere("a" * 254 + "😀" * 3)).name == "a" * 254 + "😀"


def test_surrogate_pairs_are_joined_and_lone_surrogates_replaced() -> None:
    summary = summarize(event_with_text_everywhere("x\ud83d\ude00y\ud800z"))
    assert summary.name == "x😀y\ufffdz"


def test_nul_characters_are_stripped_from_every_text_field() -> None:
    summary = summarize(event_with_text_everywhere("Val\x00ue\x00Error"))
    for field in LIMITS:
        assert getattr(summary, field) == "ValueError"


def test_nul_stripping_happens_before_truncation() -> None:
    summary = summarize(event_with_text_everywhere("\x00" * 300 + "a" * 300))
    assert summary.name == "a" * 255


def test_message_made_of_nul_only_falls_back_to_unlabeled() -> None:
    assert summarize({"message": "\x00\x00"}).name == "<unlabeled event>"


# --- timestamps ----------------------------------------------------------------------------

OCCURRED = datetime(2024, 5, 1, 11, 59, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1714564740, OCCURRED),
        (1714564740.5, OCCURRED + timedelta(milliseconds=500)),
        ("1714564740", OCCURRED),
        ("1714564740.50", OCCURRED + timedelta(milliseconds=500)),
        (" 1714564740.5 ", OCCURRED + timedelta(milliseconds=500)),
        ("2024-05-01T11:59:00Z", OCCURRED),
        ("2024-05-01T11:59:00z", OCCURRED),
        ("2024-05-01T11:59:00+00:00", OCCURRED),
        ("2024-05-01T13:59:00+02:00", OCCURRED),
        ("2024-05-01T08:29:00-03:30", OCCURRED),
        ("2024-05-01T13:59:00+0200", OCCURRED),
        ("2024-05-01T11:59:00", OCCURRED),
        ("2024-05-01 11:59:00", OCCURRED),
        ("2024-05-01T11:59:00.5Z", OCCURRED + timedelta(milliseconds=500)),
        ("2024-05-01T11:59:00.123456Z", OCCURRED + timedelta(microseconds=123456)),
        ("2024-05-01T11:59:00.123456789Z", OCCURRED + timedelta(microseconds=123456)),
        ("2024-05-01T13:59:00.123456789123+02:00", OCCURRED + timedelta(microseconds=123456)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_formats(value: object, expected: datetime) -> None:
    parsed = parse_timestamp(value, received_at=RECEIVED_AT)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "yesterday",
        "2024-13-45T99:00:00Z",
        "1714564740.5.5",
        "-1714564740",
        math.nan,
        math.inf,
        -math.inf,
        -1,
        -1714564740.0,
        "nan",
        "inf",
        True,
        {"seconds": 1714564740},
        [1714564740],
        10**400,
        1e300,
        "9" * 100,
        "2024-05-01T11:59:00Z" + " " * 100 + "x",
    ],
)
def test_unparsable_timestamps_yield_received_at(value: object) -> None:
    assert parse_timestamp(value, received_at=RECEIVED_AT) == RECEIVED_AT


@pytest.mark.parametrize("value", [0, 946684799, "1999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_timestamps_before_2000_yield_received_at(value: object) -> None:
    assert parse_timestamp(value, received_at=RECEIVED_AT) == RECEIVED_AT


def test_timestamp_of_year_2000_is_kept() -> None:
    assert parse_timestamp(946684800, received_at=RECEIVED_AT) == datetime(2000, 1, 1, tzinfo=UTC)


def test_future_timestamps_within_a_minute_are_kept() -> None:
    slightly_ahead = RECEIVED_AT + timedelta(seconds=59)
    assert parse_timestamp(slightly_ahead.isoformat(), received_at=RECEIVED_AT) == slightly_ahead


@pytest.mark.parametrize(
    "value",
    [
        (RECEIVED_AT + timedelta(seconds=61)).isoformat(),
        (RECEIVED_AT + timedelta(days=400)).timestamp(),
        "9999-12-31T23:59:59Z",
    ],
)
def test_future_timestamps_are_clamped_to_received_at(value: object) -> None:
    assert parse_timestamp(value, received_at=RECEIVED_AT) == RECEIVED_AT


def test_naive_received_at_is_taken_as_utc() -> None:
    naive = RECEIVED_AT.replace(tzinfo=None)
    assert parse_timestamp(None, received_at=naive) == RECEIVED_AT
    assert parse_timestamp(None, received_at=naive).tzinfo is UTC


def test_received_at_in_another_zone_is_converted_to_utc() -> None:
    berlin_summer = timezone(timedelta(hours=2))
    local = RECEIVED_AT.astimezone(berlin_summer)
    result = parse_timestamp("garbage", received_at=local)
    assert result == RECEIVED_AT and result.tzinfo is UTC


def test_summary_uses_the_event_timestamp() -> None:
    event = message_event("x", timestamp=1714564740.25)
    assert summarize(event).occurred_at == OCCURRED + timedelta(milliseconds=250)


# --- garbage ------------------------------------------------------------------------------


def assert_storable(summary: EventSummary) -> None:
    """Every invariant the database insert relies on."""
    for field, limit in LIMITS.items():
        value = getattr(summary, field)
        if value is None:
            assert field in {"environment", "release"}
            continue
        assert isinstance(value, str) and len(value) <= limit
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogates
    assert summary.name and summary.platform
    assert summary.level in LEVELS
    assert len(summary.fingerprint) == 32
    assert summary.occurred_at.tzinfo is UTC
    assert summary.occurred_at <= RECEIVED_AT + timedelta(minutes=1)


@GARBAGE_SETTINGS
@given(garbled_events())
def test_garbled_events_summarise_to_storable_values(event: dict[str, Any]) -> None:
    assert_storable(summarize(event))


@GARBAGE_SETTINGS
@given(st.dictionaries(st.sampled_from(["exception", "message", "logentry", "transaction", "platform", "level", "environment", "release", "timestamp", "threads", "stacktrace"]), JSON_VALUES, max_size=6))
def test_arbitrary_field_values_summarise_to_storable_values(event: dict[str, Any]) -> None:
    assert_storable(summarize(event))


@GARBAGE_SETTINGS
@given(JSON_VALUES)
def test_parse_timestamp_accepts_anything(value: object) -> None:
    parsed = parse_timestamp(value, received_at=RECEIVED_AT)
    assert parsed.tzinfo is UTC and parsed <= RECEIVED_AT + timedelta(minutes=1)


def test_non_object_event_summarises_as_empty() -> None:
    assert summarize(["not", "an", "event"]) == summarize({})  # type: ignore[arg-type]
