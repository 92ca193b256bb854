"""Envelope parsing: the grammar's edge cases, header validation, item limits, and fuzzing."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.problems import HTTPProblem
from app.ingest.envelope import MAX_ITEMS, Envelope, Item, normalize_event_id, parse_envelope
from app.ingest.rejection import Rejection
from app.ingest.routes import as_problem
from tests.ingest.refusals import refused

EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"
LIMITS = {"event": 1024, "transaction": 1024, "client_report": 100, "check_in": 100, "log": 2048}


def invalid(body: bytes, **kwargs: object) -> HTTPProblem:
    with refused() as info:
        parse_envelope(body, **kwargs)  # type: ignore[arg-type]
    return info.value


def assert_invalid(body: bytes, cause: str) -> None:
    error = invalid(body)
    assert error.status == 400
    assert error.body == {"detail": "invalid envelope", "causes": [cause]}


# --- what must be accepted -----------------------------------------------------------------


def test_sentry_python_style() -> None:
    body = (
        b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2024-01-01T00:00:00Z"}\n'
        b'{"type":"event","length":13,"content_type":"application/json"}\n'
        b'{"message":1}\n'
        b'{"type":"client_report","length":2}\n{}\n'
    )
    envelope = parse_envelope(body)
    assert envelope.event_id == EVENT_ID
    assert envelope.headers["sent_at"] == "2024-01-01T00:00:00Z"
    assert envelope.items == (
        Item("event", {"type": "event", "length": 13, "content_type": "application/json"}, b'{"message":1}'),
        Item("client_report", {"type": "client_report", "length": 2}, b"{}"),
    )


def test_node_style_without_lengths_or_final_newline() -> None:
    envelope = parse_envelope(b'{}\n{"type":"event"}\n{"a":1}\n{"type":"span"}\n{"b":2}')
    assert envelope.event_id is None
    assert [(item.type, item.payload) for item in envelope.items] == [("event", b'{"a":1}'), ("span", b'{"b":2}')]


@pytest.mark.parametrize("body", [b"{}", b"{}\n", b'{"dsn":"http://k@h/1"}', b"{}\n\n\n"])
def test_header_only(body: bytes) -> None:
    envelope = parse_envelope(body)
    assert envelope.items == ()


def test_envelope_header_keeps_unknown_keys() -> None:
    assert parse_envelope(b'{"x-custom":[1,2],"sdk":{"name":"s"}}').headers == {"x-custom": [1, 2], "sdk": {"name": "s"}}


@pytest.mark.parametrize("final", [b"", b"\n"])
def test_zero_length_item(final: bytes) -> None:
    envelope = parse_envelope(b'{}\n{"type":"attachment","length":0}\n\n{"type":"event","length":2}\n{}' + final)
    assert [(item.type, item.payload) for item in envelope.items] == [("attachment", b""), ("event", b"{}")]


@pytest.mark.parametrize(
    "body",
    [
        b'{}\n{"type":"session"}',
        b'{}\n{"type":"session"}\n',
        b'{}\n{"type":"session","length":0}',
        b'{}\n{"type":"session","length":0}\n',
    ],
)
def test_item_header_at_end_of_body_has_empty_payload(body: bytes) -> None:
    (item,) = parse_envelope(body).items
    assert item.type == "session"
    assert item.payload == b""


def test_item_without_length_and_empty_payload_before_another_item() -> None:
    envelope = parse_envelope(b'{}\n{"type":"a"}\n\n{"type":"b"}\nB\n')
    assert [(item.type, item.payload) for item in envelope.items] == [("a", b""), ("b", b"B")]


def test_length_payload_may_contain_newlines_and_carriage_returns() -> None:
    payload = b'{"a":\r\n"b\n"}\r\n'
    body = b'{}\n{"type":"event","length":%d}\n' % len(payload) + payload + b"\n"
    (item,) = parse_envelope(body).items
    assert item.payload == payload


def test_carriage_return_belongs_to_the_payload_without_length() -> None:
    envelope = parse_envelope(b'{}\r\n{"type":"event"}\r\n{"a":1}\r\n{"type":"x"}\r\n')
    assert [(item.type, item.headers, item.payload) for item in envelope.items] == [
        ("event", {"type": "event"}, b'{"a":1}\r'),
        ("x", {"type": "x"}, b""),
    ]
    # The header lines parse because "\r" is JSON whitespace; "\r" after {"type":"x"} too.


def test_unknown_item_types_and_header_keys_are_kept() -> None:
    (item,) = parse_envelope(b'{}\n{"type":"future_thing","length":3,"novel":{"x":1}}\nabc\n').items
    assert item == Item("future_thing", {"type": "future_thing", "length": 3, "novel": {"x": 1}}, b"abc")


def test_blank_lines_between_items_are_skipped() -> None:
    envelope = parse_envelope(b'{}\n\n{"type":"a","length":1}\nA\n\n\n{"type":"b","length":1}\nB\n\n')
    assert [(item.type, item.payload) for item in envelope.items] == [("a", b"A"), ("b", b"B")]


def test_length_null_means_no_length() -> None:
    (item,) = parse_envelope(b'{}\n{"type":"a","length":null}\nA\n').items
    assert item.payload == b"A"


def test_items_under_their_limit_are_accepted() -> None:
    body = b'{}\n{"type":"check_in","length":100}\n' + b"x" * 100 + b'\n{"type":"replay_recording"}\n' + b"y" * 5000
    envelope = parse_envelope(body, max_item_bytes=LIMITS)
    assert [len(item.payload) for item in envelope.items] == [100, 5000]  # unlisted types: no limit here


# --- event_id --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        EVENT_ID,
        EVENT_ID.upper(),
        "9ec79c33-ec99-42ab-8353-589fcb2e04dc",
        "9EC79C33-EC99-42AB-8353-589FCB2E04DC",
    ],
)
def test_event_id_forms(value: str) -> None:
    assert normalize_event_id(value) == EVENT_ID
    assert parse_envelope(orjson.dumps({"event_id": value})).event_id == EVENT_ID


@pytest.mark.parametrize("value", [None, ""])
def test_missing_event_id(value: str | None) -> None:
    assert normalize_event_id(value) is None
    assert parse_envelope(orjson.dumps({"event_id": value})).event_id is None


@pytest.mark.parametrize(
    "value",
    [
        "xyz",
        EVENT_ID[:-1],
        EVENT_ID + "0",
        "9ec79c33ec9942ab8353589fcb2e04dg",
        "9ec79c33-ec99-42ab-8353589fcb2e04dc",
        "9ec79c33-ec99-42ab-8353-589fcb2e04d-",
        "{9ec79c33-ec99-42ab-8353-589fcb2e04dc}",
        "9ec79c33 ec99 42ab 8353 589fcb2e04dc",
        "9ec79c33ec9942ab 353589fcb2e04dc ",
        "é" * 32,
        12345,
        [EVENT_ID],
    ],
)
def test_invalid_event_id(value: object) -> None:
    with refused() as info:
        normalize_event_id(value)
    assert info.value.status == 400
    assert info.value.body["detail"] == "invalid event_id"
    assert info.value.body["causes"] == [f"event_id {value!r} is not 32 hex digits or a dashed UUID"]
    assert_invalid(
        orjson.dumps({"event_id": value}),
        f"envelope header event_id {value!r} is not 32 hex digits or a dashed UUID",
    )


def test_invalid_event_id_is_shortened_in_the_message() -> None:
    error = invalid(orjson.dumps({"event_id": "a" * 10_000}))
    assert len(error.body["causes"][0]) < 150


# --- what must be rejected ---------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"\n", b"  \r\n\t"])
def test_empty_envelope(body: bytes) -> None:
    error = invalid(body)
    assert error.status == 400
    assert error.body == {"detail": "empty envelope", "causes": ["the request body is empty"]}


@pytest.mark.parametrize("body", [b"[]", b"null", b'"x"\n', b"1"])
def test_envelope_header_not_an_object(body: bytes) -> None:
    assert_invalid(body, "envelope header is not a JSON object")


@pytest.mark.parametrize("body", [b"{", b"not json\n{}", b"\n{}\n"])
def test_envelope_header_not_json(body: bytes) -> None:
    error = invalid(body)
    assert error.status == 400
    assert error.body["causes"][0].startswith("envelope header is not valid JSON: ")


def test_item_header_not_json_names_the_item() -> None:
    error = invalid(b'{}\n{"type":"a","length":1}\nA\n{"type":\n')
    assert error.body["detail"] == "invalid envelope"
    assert error.body["causes"][0].startswith("item 2 header is not valid JSON: ")


def test_item_header_not_an_object() -> None:
    assert_invalid(b'{}\n{"type":"a","length":1}\nA\n["type"]\n', "item 2 header is not a JSON object")


def test_item_without_type() -> None:
    assert_invalid(b'{}\n{"length":1}\nA\n', "item 1 header has no type")


@pytest.mark.parametrize("value", [b"1", b"null", b'["event"]', b"true"])
def test_item_type_not_a_string(value: bytes) -> None:
    assert_invalid(b'{}\n{"type":' + value + b"}\nA\n", "item 1 type is not a string")


@pytest.mark.parametrize("value", [b"-1", b"1.0", b'"1"', b"true", b"[1]"])
def test_item_length_not_a_non_negative_integer(value: bytes) -> None:
    assert_invalid(b'{}\n{"type":"a","length":' + value + b"}\nA\n", "item 1 length is not a non-negative integer")


def test_length_past_the_end() -> None:
    assert_invalid(b'{}\n{"type":"event","length":10}\n{}\n', "item 1 length exceeds body: 10 bytes declared, 3 available")
    assert_invalid(b'{}\n{"type":"event","length":1}', "item 1 length exceeds body: 1 bytes declared, 0 available")


def test_missing_newline_after_length_payload() -> None:
    assert_invalid(b'{}\n{"type":"event","length":2}\n{}x\n', "missing newline after item 1 payload")
    assert_invalid(b'{}\n{"type":"event","length":2}\n{}\r\n', "missing newline after item 1 payload")


def test_two_event_items() -> None:
    body = b'{}\n{"type":"event"}\n{}\n{"type":"session"}\n{}\n{"type":"event"}\n{}\n'
    assert_invalid(body, "more than one event item (items 1 and 3)")


@pytest.mark.parametrize(
    ("item_type", "limit"), [("event", 1024), ("client_report", 100), ("check_in", 100), ("log", 2048)]
)
def test_item_over_its_limit_is_413(item_type: str, limit: int) -> None:
    body = b'{}\n{"type":"%s"}\n' % item_type.encode() + b"x" * (limit + 1)
    with refused() as info:
        parse_envelope(body, max_item_bytes=LIMITS)
    assert info.value.status == 413
    assert info.value.body == {
        "detail": "envelope item too large",
        "causes": [f"item 1 ({item_type}) is {limit + 1} bytes; {item_type} items are limited to {limit} bytes"],
    }
    assert len(parse_envelope(body[:-1], max_item_bytes=LIMITS).items[0].payload) == limit


# --- properties ------------------------------------------------------------------------------

# Sampled header dicts keep generation fast; the payload bytes are where the variety matters.
ENVELOPE_HEADERS = st.sampled_from(
    [{}, {"event_id": EVENT_ID}, {"event_id": None, "sdk": {"name": "x"}}, {"event_id": "", "dsn": "https://k@h/1"}]
)
EXTRA_ITEM_HEADERS = st.sampled_from(
    [{}, {"content_type": "application/json"}, {"filename": "a\nb.txt", "z": None}, {"item_count": 3, "x": [1, "\u2028"]}]
)
ITEM_TYPES = st.sampled_from(["transaction", "attachment", "session", "client_report", "span", "x-unknown"])


@st.composite
def items(draw: st.DrawFn) -> tuple[dict, bytes]:
    item_type = draw(ITEM_TYPES)
    with_length = draw(st.booleans())
    payload = draw(st.binary(max_size=60))
    if not with_length:
        payload = payload.replace(b"\n", b"")
    headers: dict = {"type": item_type}
    if with_length:
        headers["length"] = len(payload)
    headers.update(draw(EXTRA_ITEM_HEADERS))
    return headers, payload


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[bytes, dict, list[tuple[dict, bytes]]]:
    headers = draw(ENVELOPE_HEADERS)
    parts = draw(st.lists(items(), max_size=6))
    if draw(st.booleans()):  # at most one event item, anywhere
        parts.insert(draw(st.integers(0, len(parts))), ({"type": "event", "length": 2}, b"{}"))
    body = orjson.dumps(headers)
    for item_headers, payload in parts:
        body += b"\n" + orjson.dumps(item_headers) + b"\n" + payload
    if draw(st.booleans()):
        body += b"\n"
    return body, headers, parts


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(envelopes())
def test_valid_envelopes_parse_to_their_items(case: tuple[bytes, dict, list[tuple[dict, bytes]]]) -> None:
    body, headers, parts = case
    envelope = parse_envelope(body, max_item_bytes=LIMITS)
    assert envelope.headers == headers
    assert envelope.items == tuple(Item(h["type"], h, payload) for h, payload in parts)


def check_parse(body: bytes) -> None:
    """Either an Envelope whose event_id reads, or a 400/413 with a cause; never another exception."""
    try:
        envelope = parse_envelope(body, max_item_bytes=LIMITS)
    except Rejection as rejection:
        problem = as_problem(rejection)
        assert problem.status in (400, 413)
        assert problem.body["detail"] and problem.body["causes"]
    else:
        assert isinstance(envelope, Envelope)
        assert envelope.event_id is None or len(envelope.event_id) == 32
        assert all(isinstance(item.type, str) and isinstance(item.payload, bytes) for item in envelope.items)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=300) | st.lists(st.sampled_from([b"{", b"}", b"\n", b'"type"', b":", b'"length"', b"1", b",", b"x"])).map(b"".join))
def test_random_bytes_never_crash(body: bytes) -> None:
    check_parse(body)


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(envelopes())[0])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "newline", "delete"]))
        pos = draw(st.integers(0, len(body)))
        if kind == "truncate":
            del body[pos:]
        elif kind == "newline":
            body[pos:pos] = b"\n"
        elif pos < len(body):
            if kind == "flip":
                body[pos] ^= 1 << draw(st.integers(0, 7))
            else:
                del body[pos]
    return bytes(body)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(mutated_envelopes())
def test_mutated_envelopes_never_crash(body: bytes) -> None:
    check_parse(body)


# --- bounded work whatever the envelope ------------------------------------------------------

TINY_ITEM = b'{"type":"client_report"}\n{}\n'


def test_an_envelope_holds_up_to_max_items() -> None:
    envelope = parse_envelope(b"{}\n" + TINY_ITEM * MAX_ITEMS)
    assert len(envelope.items) == MAX_ITEMS


def test_more_items_than_max_items_is_413_before_building_them() -> None:
    # A few hundred KB of gzip decode to millions of such items: refused at the first one past the cap.
    error = invalid(b"{}\n" + TINY_ITEM * 1_000_000)
    assert error.status == 413
    assert error.body == {"detail": "envelope has too many items", "causes": [f"an envelope holds at most {MAX_ITEMS} items"]}


def test_blank_lines_are_skipped_in_one_step() -> None:
    # Blank lines were skipped one byte per loop turn: 50 MiB of them took seconds of CPU.
    body = b"{}\n" + b"\n" * (50 * 1024 * 1024) + TINY_ITEM
    started = time.process_time()
    envelope = parse_envelope(body)
    assert [item.type for item in envelope.items] == ["client_report"]
    assert time.process_time() - started < 1.0  # about 0.05 s; the old loop took over 5 s
