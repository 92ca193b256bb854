"""Event payload JSON: loading what SDKs actually send, and the stored form of an event.

This module owns the per-event size limit and the JSON hazards seen in the wild
(SENTRY-PROTOCOL.md, "Payload hazards"): NaN and Infinity from old raven-python, lone surrogate
escapes, a UTF-8 BOM, duplicate keys (last wins), absurd nesting, and ``\\u0000``, which jsonb
rejects. orjson is the fast path both ways; the standard library's json module is the lenient
fallback. It also decodes the legacy ``/store/`` body (plain, base64, or base64 of zlib).

Stored form: the event's JSON text, made safe for jsonb (so that SQL can still look inside
with ``payload_text::jsonb``), in ``error_tracking_error_events.payload_text``, which PostgreSQL
compresses with lz4 when it is large. Having PostgreSQL parse every payload into jsonb on
insert was most of its ingest CPU (125–160 µs per 8.5 KB event, against about 35 µs as text);
compressing in errgate (zstd) cost the request path more than it saved. Refusals are
:class:`~app.ingest.rejection.Rejection`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from typing import Any

import orjson

from app.ingest.rejection import Rejection

MAX_DEPTH = 128  # nesting levels accepted in an event; the top-level object is level 1

_INT64_MIN, _UINT64_END = -(2**63), 2**64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# A surrogate escape without its partner: a high one not followed by a low one, or a low one
# not preceded by a high one. Read where no escaped backslash is left (see _without_lone_surrogates).
# Both start with the literal \u so that the regex engine skips quickly to the next one.
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD])[c-fC-F][0-9a-fA-F]{2})"
)
# Digits made 0, exponent marks e and signs +, so that plain substring searches find the numbers
# json.loads could make an integer beyond 64 bits or a float beyond a double (see _may_overflow).
_NUMBER_SHAPES = bytes.maketrans(b"123456789E-", b"000000000e+")
_JSONB_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def load_event(payload: bytes, *, max_bytes: int) -> dict:
    """Parse an event payload into a dict.

    413 above ``max_bytes``; 400 for invalid UTF-8, invalid JSON, nesting deeper than
    :data:`MAX_DEPTH`, or a top level that is not an object. NaN, Infinity and numbers too large
    for a double become None; integers beyond 64 bits become floats (as orjson does); lone
    surrogate escapes become U+FFFD.
    """
    if len(payload) > max_bytes:
        raise Rejection(
            413, "event payload too large", [f"the event payload is {len(payload)} bytes; the limit is {max_bytes} bytes"]
        )
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        event = _load_lenient(payload)  # refuses deep nesting itself
    else:
        if type(event) is dict and _nests_too_deep(payload, event):
            raise _too_deep()
    if type(event) is not dict:
        raise _invalid(f"event payload is not a JSON object (it is {_json_type(event)})")
    return event


def decode_store_body(body: bytes, *, max_bytes: int) -> bytes:
    """The JSON bytes of a legacy ``/store/`` request body.

    Relay accepts a JSON object, its base64 (standard or urlsafe alphabet, padding optional), or
    the base64 of its zlib (or gzip) compression; inflating stops at ``max_bytes`` (413).
    """
    text = body.lstrip()
    if not text:
        raise Rejection(400, "invalid store body", ["the request body is empty"])
    if text.startswith(b"{"):
        return body
    decoded = _base64_or_none(text)
    if decoded is None:
        raise Rejection(400, "invalid store body", ["the store body is neither a JSON object nor base64"])
    if decoded.lstrip().startswith(b"{"):
        return decoded
    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib or gzip header
    try:
        inflated = inflater.decompress(decoded, max_bytes + 1)
    except zlib.error as exc:
        raise Rejection(
            400, "invalid store body", [f"the base64 store body is neither JSON nor zlib-compressed: {exc}"]
        ) from None
    if len(inflated) > max_bytes:
        raise Rejection(
            413, "event payload too large", [f"the inflated store body is larger than {max_bytes} bytes"]
        )
    if not inflater.eof:
        raise Rejection(400, "invalid store body", ["the zlib data in the store body is truncated"])
    return inflated


def pack_event(event: dict) -> str:
    """The stored form of ``event``: the JSON text of :func:`dumps_event`."""
    return dumps_event(event).decode()


def dumps_event(event: dict) -> bytes:
    """JSON of ``event`` that PostgreSQL's jsonb would also accept.

    NUL characters and lone surrogates, in keys or values, become U+FFFD; integers beyond 64 bits
    become floats; non-string keys become strings.
    """
    try:
        out = orjson.dumps(event)
    except TypeError:  # lone surrogates, huge integers, non-string keys
        return _dumps_sanitised(event)
    if b"\\u0000" in out:
        return _without_nul_escapes(out)
    return out


def _without_nul_escapes(out: bytes) -> bytes:
    """orjson's output with every NUL escape made U+FFFD, in three passes over the bytes.

    Every backslash in JSON starts an escape, so pairing them from the left finds the escaped
    backslashes; orjson never writes a raw NUL byte, which can therefore stand in for them while
    ``\\u0000`` is replaced (an escaped backslash followed by "u0000" is text, not a NUL).
    """
    return out.replace(b"\\\\", b"\x00").replace(b"\\u0000", b"\\ufffd").replace(b"\x00", b"\\\\")


def _load_lenient(payload: bytes) -> Any:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"event payload is not valid UTF-8 (invalid byte at offset {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if _SURROGATE_ESCAPE.search(text):
        # NUL escapes stay until the event is stored: columns drop NUL, the stored JSON replaces it.
        text = _without_lone_surrogates(text)
    # The hooks cost a Python call per number; most payloads need none.
    numbers = {"parse_float": _float, "parse_int": _int} if _may_overflow(payload) else {}
    try:
        value = json.loads(text, parse_constant=_non_finite, **numbers)
    except json.JSONDecodeError as exc:
        raise _invalid(f"event payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _too_deep() from None
    if _nests_too_deep(payload, value):
        raise _too_deep()
    return value


def _without_lone_surrogates(text: str) -> str:
    """JSON text with every lone surrogate escape spelled ``\\ufffd``; pairs are kept.

    As in :func:`_without_nul_escapes`, NUL stands in for escaped backslashes meanwhile. A raw NUL
    makes the JSON invalid anyway, so such text is left for json.loads to refuse.
    """
    if "\x00" in text:
        return text
    return _LONE_SURROGATE_ESCAPE.sub(r"\\ufffd", text.replace("\\\\", "\x00")).replace("\x00", "\\\\")


def _may_overflow(payload: bytes) -> bool:
    """Whether ``payload`` has a run of 19 digits or more, or an exponent of three digits or more:
    without one, every JSON number in it is a 64-bit integer or a finite double."""
    shapes = payload.translate(_NUMBER_SHAPES)
    return b"0" * 19 in shapes or b"e000" in shapes or b"e+000" in shapes


def _non_finite(name: str) -> None:
    return None  # NaN, Infinity, -Infinity: JSON has no such numbers


def _float(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def _int(text: str) -> int | float | None:
    if len(text) <= 20:
        number = int(text)
        if _INT64_MIN <= number < _UINT64_END:
            return number
    return _float(text)


def _nests_too_deep(payload: bytes, value: Any) -> bool:
    """Whether containers nest more than :data:`MAX_DEPTH` levels in ``value``, parsed from ``payload``."""
    # Fewer brackets than the limit (counting those inside strings too) cannot nest too deep. One
    # pass deleting them counts both (two count() calls cost half as much again on a 3 KB event).
    if len(payload) - len(payload.translate(None, b"{[")) <= MAX_DEPTH:
        return False
    return (type(value) is dict or type(value) is list) and _nests_deeper(value, MAX_DEPTH - 1)


def _nests_deeper(node: dict | list, levels_left: int) -> bool:
    """Whether containers nest more than ``levels_left`` levels below ``node``.

    The recursion stops at the limit, so it is never deeper than :data:`MAX_DEPTH` frames.
    """
    for child in node.values() if type(node) is dict else node:
        if type(child) is dict or type(child) is list:
            if levels_left == 0 or _nests_deeper(child, levels_left - 1):
                return True
    return False


def _dumps_sanitised(event: dict) -> bytes:
    return orjson.dumps(_replaced(event))


def _replaced(value: Any) -> Any:
    """``value`` with every character jsonb refuses (NUL, lone surrogates) of its strings and keys replaced by U+FFFD,
    non-string keys made strings, and integers beyond 64 bits made floats (or None)."""
    if isinstance(value, str):
        return _JSONB_UNSAFE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {
            _replaced(key if isinstance(key, str) else str(key)): _replaced(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_replaced(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value < _UINT64_END:
        try:
            return float(value)
        except OverflowError:
            return None
    return value


def _base64_or_none(data: bytes) -> bytes | None:
    compact = b"".join(data.split())  # tolerate line-wrapped base64
    compact = compact.translate(_URLSAFE_TO_STANDARD)
    compact = compact.rstrip(b"=")
    if len(compact) % 4 == 1:
        return None
    compact += b"=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def _too_deep() -> Rejection:
    return _invalid(f"event payload nests deeper than {MAX_DEPTH} levels")


def _invalid(cause: str) -> Rejection:
    return Rejection(400, "invalid event payload", [cause])
