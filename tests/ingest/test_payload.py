"""Event payloads: tolerant loading, the legacy /store/ body, jsonb-safe serialisation and the stored form."""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.problems import HTTPProblem
from app.ingest.payload import MAX_DEPTH, decode_store_body, dumps_event, load_event, pack_event
from app.ingest.rejection import Rejection
from app.ingest.routes import as_problem
from tests.ingest.refusals import refused
from tests.ingest_http.helpers import unpack_event

MIB = 1024 * 1024
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def load(payload: bytes, max_bytes: int = MIB) -> dict:
    return load_event(payload, max_bytes=max_bytes)


def rejected(payload: bytes, max_bytes: int = MIB) -> HTTPProblem:
    with refused() as info:
        load(payload, max_bytes)
    return info.value


def assert_invalid(payload: bytes, cause: str) -> None:
    error = rejected(payload)
    assert error.status == 400
    assert error.body == {"detail": "invalid event payload", "causes": [cause]}


# --- load_event ------------------------------------------------------------------------------


def test_plain_event() -> None:
    assert load(b'{"event_id":"x","message":"hi","extra":{"n":[1,2.5,null,true]}}') == {
        "event_id": "x",
        "message": "hi",
        "extra": {"n": [1, 2.5, None, True]},
    }


def test_size_limit_is_413() -> None:
    payload = b'{"a":"' + b"x" * 100 + b'"}'
    assert load(payload, max_bytes=len(payload)) == {"a": "x" * 100}
    error = rejected(payload, max_bytes=len(payload) - 1)
    assert error.status == 413
    assert error.body == {
        "detail": "event payload too large",
        "causes": [f"the event payload is {len(payload)} bytes; the limit is {len(payload) - 1} bytes"],
    }


def test_nan_and_infinity_become_null() -> None:
    assert load(b'{"a":NaN,"b":[Infinity,-Infinity],"c":1.5}') == {"a": None, "b": [None, None], "c": 1.5}


def test_numbers_beyond_a_double_become_null_and_huge_integers_floats() -> None:
    assert load(b'{"a":1e400,"b":-1e400}') == {"a": None, "b": None}
    assert load(b'{"a":1e400,"big":123456789012345678901234567890}') == {"a": None, "big": 1.2345678901234568e29}
    assert load(b'{"a":NaN,"huge":' + b"9" * 5000 + b"}") == {"a": None, "huge": None}
    assert load(b'{"a":NaN,"max":18446744073709551615,"min":-9223372036854775808}') == {
        "a": None,
        "max": 2**64 - 1,
        "min": -(2**63),
    }


@pytest.mark.parametrize("escape", [b"\\ud800", b"\\uDFFF", b"\\udc00x", b"\\ud83d"])
def test_lone_surrogate_escapes_become_replacement_characters(escape: bytes) -> None:
    event = load(b'{"a":"x' + escape + b'","k' + escape + b'":["' + escape + b'"]}')
    text = escape.decode()
    fixed = text.replace(text[:6], "\ufffd")
    assert event == {"a": "x" + fixed, "k" + fixed: [fixed]}
    orjson.dumps(event)  # no surrogates left


def test_surrogate_pairs_are_kept() -> None:
    assert load(b'{"a":"\\ud83d\\ude00","b":NaN}') == {"a": "\U0001f600", "b": None}
    assert load(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    assert load(b'{"a":"\\\\ud800","b":NaN}') == {"a": "\\ud800", "b": None}


def test_lone_surrogate_escapes_next_to_escaped_backslashes_and_pairs() -> None:
    assert load(b'{"a":"\\\\\\ud800","b":NaN}')["a"] == "\\\ufffd"
    assert load(b'{"a":"\\\\ud800\\udc00","b":NaN}')["a"] == "\\ud800\ufffd"
    assert load(b'{"a":"\\ud800\\ud83d\\ude00\\ude00"}')["a"] == "\ufffd\U0001f600\ufffd"


ESCAPES = st.lists(
    st.sampled_from(["\\ud83d", "\\ude00", "\\ud83d\\ude00", "\\udbff", "\\udfff", "\\\\", "\\\\ud800", "\\u0000", '\\"', "a"]),
    max_size=8,
).map("".join)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@PROPERTY
@given(st.lists(ESCAPES, min_size=1, max_size=4))
def test_lone_surrogate_escapes_become_replacement_characters_wherever_they_are(texts: list[str]) -> None:
    keys = [f"k{index}{text}" for index, text in enumerate(texts)]
    body = "{" + ",".join(f'"{key}":"{text}"' for key, text in zip(keys, texts)) + ',"nan":NaN}'
    decoded = [LONE_SURROGATE.sub("\ufffd", json.loads(f'"{text}"')) for text in [*keys, *texts]]
    assert load(body.encode()) == {**dict(zip(decoded[: len(texts)], decoded[len(texts) :])), "nan": None}


def test_numbers_next_to_nan_keep_their_values() -> None:
    assert load(b'{"a":NaN,"n":[1,-12345678901234567,1.5e99,1e308,2.5E-7]}')["n"] == [
        1, -12345678901234567, 1.5e99, 1e308, 2.5e-7
    ]


def test_duplicate_keys_last_wins() -> None:
    assert load(b'{"a":1,"a":2}') == {"a": 2}
    assert load(b'{"a":1,"a":2,"n":NaN}') == {"a": 2, "n": None}  # the lenient path too


def test_utf8_byte_order_mark_is_skipped() -> None:
    assert load(b'\xef\xbb\xbf{"a":1}') == {"a": 1}


def test_invalid_utf8() -> None:
    assert_invalid(b'{"a":"\xff"}', "event payload is not valid UTF-8 (invalid byte at offset 6)")
    assert_invalid(b'{"a":"\xed\xa0\x80"}', "event payload is not valid UTF-8 (invalid byte at offset 6)")


@pytest.mark.parametrize(
    ("payload", "cause"),
    [
        (b"", "event payload is not valid JSON: Expecting value at line 1 column 1"),
        (b'{"a":1', "event payload is not valid JSON: Expecting ',' delimiter at line 1 column 7"),
        (b'{"a":1}x', "event payload is not valid JSON: Extra data at line 1 column 8"),
        (b"{'a':1}", "event payload is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ],
)
def test_invalid_json(payload: bytes, cause: str) -> None:
    assert_invalid(payload, cause)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [(b"[]", "an array"), (b"[{}]", "an array"), (b'"x"', "a string"), (b"1", "a number"), (b"null", "null"), (b"true", "a boolean"), (b"NaN", "null")],
)
def test_top_level_not_an_object(payload: bytes, kind: str) -> None:
    assert_invalid(payload, f"event payload is not a JSON object (it is {kind})")


def nested(depth: int) -> bytes:
    """An object nesting ``depth`` levels: objects at odd levels, arrays at even ones."""
    opening = [b'{"k":' if level % 2 else b"[" for level in range(1, depth + 1)]
    closing = [b"}" if level % 2 else b"]" for level in range(depth, 0, -1)]
    return b"".join(opening) + b"1" + b"".join(closing)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    event = load(nested(MAX_DEPTH))
    depth = 1
    node: Any = event["k"]
    while isinstance(node, (dict, list)):
        node = node["k"] if isinstance(node, dict) else node[0]
        depth += 1
    assert depth == MAX_DEPTH


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 1100, 100_000])
def test_nesting_beyond_the_limit_is_400(depth: int) -> None:
    assert_invalid(nested(depth), f"event payload nests deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_nesting_beyond_the_limit_on_the_lenient_path_is_400(depth: int) -> None:
    assert_invalid(b'{"n":NaN,"k":' + nested(depth) + b"}", f"event payload nests deeper than {MAX_DEPTH} levels")


def test_a_hundred_thousand_brackets_do_not_blow_the_stack() -> None:
    error = rejected(b"[" * 100_000)
    assert error.status == 400
    assert error.body["causes"] == [f"event payload nests deeper than {MAX_DEPTH} levels"]


def test_many_brackets_in_strings_do_not_count_as_nesting() -> None:
    payload = b'{"a":"' + b"[{" * 1000 + b'","b":[[[]]]}'
    assert load(payload)["b"] == [[[]]]


JSONISH = st.lists(
    st.sampled_from(
        ["{", "}", "[", "]", '"', ":", ",", "1", "-2.5e3", "NaN", "Infinity", "-Infinity", "true", "null",
         '"a"', '"\\ud800"', '"\\udc00"', "\\", "\\u0000", "\xff", " ", "\n", "é", "\U0001f600"]
    ),
    max_size=40,
).map("".join)


@PROPERTY
@given(st.binary(max_size=200) | JSONISH.map(str.encode) | JSONISH.map(lambda text: ("{" + text).encode("utf-8", "surrogatepass")))
def test_load_event_returns_a_dict_or_a_4xx(payload: bytes) -> None:
    try:
        event = load(payload, max_bytes=150)
    except Rejection as rejection:
        problem = as_problem(rejection)
        assert problem.status in (400, 413)
        assert problem.body["causes"]
    else:
        assert type(event) is dict
        assert unpack_event(pack_event(event)) == orjson.loads(dumps_event(event))


# --- decode_store_body -------------------------------------------------------------------------

EVENT = b'{"message":"hello","level":"error"}'


def store(body: bytes, max_bytes: int = MIB) -> bytes:
    return decode_store_body(body, max_bytes=max_bytes)


def store_rejected(body: bytes, max_bytes: int = MIB) -> HTTPProblem:
    with refused() as info:
        store(body, max_bytes)
    return info.value


@pytest.mark.parametrize(
    "body",
    [
        EVENT,
        b" \r\n\t" + EVENT,
        base64.b64encode(EVENT),
        base64.urlsafe_b64encode('{"m":"ÿ>?~ÿ"}'.encode()),  # "-" in the encoding
        base64.b64encode(EVENT).rstrip(b"="),
        base64.encodebytes(b'{"m":"%s"}' % (b"x" * 200)),  # wrapped at 76 characters
        base64.b64encode(zlib.compress(EVENT)),  # raven-python
        base64.urlsafe_b64encode(zlib.compress(EVENT)).rstrip(b"="),
        base64.b64encode(gzip.compress(EVENT)),
    ],
)
def test_store_body_forms(body: bytes) -> None:
    decoded = store(body)
    assert json.loads(decoded)
    assert decoded.lstrip().startswith(b"{")


def test_store_body_json_is_returned_as_is() -> None:
    assert store(EVENT) is EVENT


def test_store_body_empty() -> None:
    error = store_rejected(b" \n")
    assert (error.status, error.body) == (400, {"detail": "invalid store body", "causes": ["the request body is empty"]})


@pytest.mark.parametrize("body", [b"not base64 at all!", b"[1,2]", b"abcde"])
def test_store_body_neither_json_nor_base64(body: bytes) -> None:
    error = store_rejected(body)
    assert error.status == 400
    assert error.body["causes"] == ["the store body is neither a JSON object nor base64"]


def test_store_body_base64_of_neither_json_nor_zlib() -> None:
    error = store_rejected(base64.b64encode(b"plain text, not compressed"))
    assert error.status == 400
    assert error.body["causes"][0].startswith("the base64 store body is neither JSON nor zlib-compressed: ")


def test_store_body_truncated_zlib() -> None:
    error = store_rejected(base64.b64encode(zlib.compress(EVENT * 50)[:-10]))
    assert error.status == 400
    assert error.body["causes"] == ["the zlib data in the store body is truncated"]


def test_store_body_zlib_bomb_is_413() -> None:
    bomb = base64.b64encode(zlib.compress(b"{" + b" " * (50 * MIB) + b"}"))
    error = store_rejected(bomb, max_bytes=MIB)
    assert error.status == 413
    assert error.body["causes"] == [f"the inflated store body is larger than {MIB} bytes"]
    assert store(base64.b64encode(zlib.compress(EVENT)), max_bytes=len(EVENT)) == EVENT


# --- dumps_event -------------------------------------------------------------------------------


def test_fast_path_is_orjson() -> None:
    event = {"a": [1, 2.5, None, True], "b": "é\U0001f600", "c": {"d": ""}}
    assert dumps_event(event) == orjson.dumps(event)


def test_nul_in_keys_and_values_becomes_replacement_character() -> None:
    out = dumps_event({"a\x00b": ["x\x00", {"\x00": "\x00\x00"}]})
    assert b"\\u0000" not in out
    assert json.loads(out) == {"a\ufffdb": ["x\ufffd", {"\ufffd": "\ufffd\ufffd"}]}


def test_escaped_backslash_u0000_text_is_kept() -> None:
    event = {"path": "C:\\u0000\\x", "k\\u0000": "\\\\u0000"}
    out = dumps_event(event)
    assert out == orjson.dumps(event)
    assert json.loads(out) == event


def test_text_and_nul_together() -> None:
    out = dumps_event({"a": "\\u0000", "b": "\x00"})
    assert json.loads(out) == {"a": "\\u0000", "b": "\ufffd"}


def test_lone_surrogates_become_replacement_characters() -> None:
    out = dumps_event({"a\ud800": "\udfff x \ud83d\ude00", "b": "\U0001f600"})
    assert orjson.loads(out) == {"a\ufffd": "\ufffd x \ufffd\ufffd", "b": "\U0001f600"}


def test_huge_integers_and_non_string_keys() -> None:
    out = dumps_event({"big": 2**70, "huge": 10**400, 1: "one", "ok": 2**64 - 1})
    assert orjson.loads(out) == {"big": float(2**70), "huge": None, "1": "one", "ok": 2**64 - 1}


def all_text(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in all_text(item)]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *all_text(item)]]
    return []


# Hazards (NUL, lone and paired surrogates, backslash-u0000 as text) among ordinary characters; a
# sampled alphabet keeps generation fast.
TEXT = st.text(
    st.sampled_from(["a", "u", "0", "\x00", "\x1f", '"', "\\", "é", "\u2028", "\ud800", "\udbff", "\udc00", "\udfff", "\U0001f600"]),
    max_size=8,
) | st.sampled_from(["\\u0000", "\\\\u0000", "\\\x00", "\ud83d\ude00"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=8,
)


@PROPERTY
@given(st.dictionaries(TEXT, JSON_VALUES, max_size=4))
def test_dumps_event_output_is_clean_json(event: dict) -> None:
    out = dumps_event(event)
    assert isinstance(out, bytes)
    loaded = json.loads(out)
    assert orjson.loads(out) == loaded  # orjson rejects lone surrogates
    assert not any("\x00" in text for text in all_text(loaded))
    if not any(
        "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text) for text in all_text(event)
    ):
        assert loaded == event


def test_stored_form_is_the_json_text_and_round_trips() -> None:
    event = {"message": "hello", "extra": {"nul": "a\x00b"}, "n": [1, 2.5, None]}
    text = pack_event(event)
    assert text == dumps_event(event).decode()
    assert unpack_event(text) == {"message": "hello", "extra": {"nul": "a\ufffdb"}, "n": [1, 2.5, None]}
