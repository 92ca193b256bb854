"""Sentry envelope parsing: decoded request bytes in, header and items out, no I/O.

This module owns the envelope grammar of SENTRY-PROTOCOL.md (``Envelope = Headers { "\\n" Item }
[ "\\n" ]``, ``Item = Headers "\\n" Payload``), the validation of envelope and item headers, the
envelope ``event_id`` rule, the per-item-type size limits and the number of items
(:data:`MAX_ITEMS`). Every failure is a :class:`~app.ingest.rejection.Rejection`: 400 for a
malformed envelope, 413 for an item over its limit or too many items.
Unknown item types and header keys are kept; deciding what to do with them is the caller's job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from app.ingest.rejection import Rejection, shown


# SDKs send an event or transaction with a few attachments, client reports or session updates in
# one envelope: a few items, rarely dozens. Every item costs a parsed header and a payload copy,
# so without a cap a 250 KB gzip body of tiny items (125 MiB decoded) built millions of them.
MAX_ITEMS = 1000
_BLANK_LINES = re.compile(rb"\n+")


@dataclass(frozen=True, slots=True)
class Item:
    type: str
    headers: dict
    payload: bytes


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    headers: dict
    event_id: str | None  # the header's event_id as 32 lowercase hex digits, or None when absent


@dataclass(frozen=True, slots=True)
class Envelope:
    headers: dict
    items: tuple[Item, ...]
    event_id: str | None  # as in EnvelopeHeader


def parse_envelope(
    body: bytes, *, max_item_bytes: Mapping[str, int] | None = None, header: EnvelopeHeader | None = None
) -> Envelope:
    """Split ``body`` into the envelope header and its items.

    ``max_item_bytes`` maps an item type to its largest accepted payload; types not in it are
    not limited here (the decoded body limit still applies). ``header``: what
    :func:`parse_envelope_header` made of the body's first line, when the caller read it already.
    """
    if not body or body.isspace():
        raise Rejection(400, "empty envelope", ["the request body is empty"])
    size = len(body)
    end = body.find(b"\n")
    if end < 0:
        end = size
    if header is None:
        header = parse_envelope_header(body[:end])

    items: list[Item] = []
    event_index = 0
    index = 0
    pos = end + 1
    while pos < size:
        eol = body.find(b"\n", pos)
        if eol < 0:
            eol = size
        if eol == pos:
            # Empty lines where an item header is expected cannot be anything else: skip them all
            # at once (a body of nothing but newlines is one step, not one per byte).
            pos = _BLANK_LINES.match(body, pos).end()  # type: ignore[union-attr]
            continue
        index += 1
        if index > MAX_ITEMS:
            raise Rejection(413, "envelope has too many items", [f"an envelope holds at most {MAX_ITEMS} items"])
        item_headers = _load_header(body[pos:eol], f"item {index} header")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str):
            if "type" not in item_headers:
                raise _invalid(f"item {index} header has no type")
            raise _invalid(f"item {index} type is not a string")

        start = eol + 1 if eol < size else size  # an item header at the end of the body: empty payload
        length = item_headers.get("length")
        if length is None:
            stop = body.find(b"\n", start)
            if stop < 0:
                stop = size
        else:
            if type(length) is not int or length < 0:
                raise _invalid(f"item {index} length is not a non-negative integer")
            stop = start + length
            if stop > size:
                raise _invalid(
                    f"item {index} length exceeds body: {length} bytes declared, {size - start} available"
                )
            if stop < size and body[stop] != 0x0A:
                raise _invalid(f"missing newline after item {index} payload")
        pos = stop + 1

        if max_item_bytes is not None:
            limit = max_item_bytes.get(item_type)
            if limit is not None and stop - start > limit:
                raise Rejection(
                    413,
                    "envelope item too large",
                    [f"item {index} ({item_type}) is {stop - start} bytes; {item_type} items are limited to {limit} bytes"],
                )
        if item_type == "event":
            if event_index:
                raise _invalid(f"more than one event item (items {event_index} and {index})")
            event_index = index
        items.append(Item(item_type, item_headers, body[start:stop]))
    return Envelope(header.headers, tuple(items), header.event_id)


def parse_envelope_header(line: bytes) -> EnvelopeHeader:
    """The envelope header from its line (the body up to its first newline): a JSON object
    whose ``event_id``, when present, is valid."""
    headers = _load_header(line, "envelope header")
    try:
        event_id = _parse_event_id(headers.get("event_id"))
    except ValueError as exc:
        raise _invalid(f"envelope header {exc}") from None
    return EnvelopeHeader(headers, event_id)


def normalize_event_id(value: object) -> str | None:
    """32 lowercase hex digits from 32 hex digits or a dashed UUID in any case.

    None or ``""`` give None (the server makes an id); anything else is a 400.
    """
    try:
        return _parse_event_id(value)
    except ValueError as exc:
        raise Rejection(400, "invalid event_id", [str(exc)]) from None


def _parse_event_id(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        hex_id = value
        if len(value) == 36 and value[8] == value[13] == value[18] == value[23] == "-":
            hex_id = value.replace("-", "")
        if len(hex_id) == 32 and hex_id.isascii():
            try:
                # fromhex skips whitespace, so 16 bytes out of 32 characters means 32 hex digits.
                if len(bytes.fromhex(hex_id)) == 16:
                    return hex_id.lower()
            except ValueError:
                pass
    raise ValueError(f"event_id {shown(value)} is not 32 hex digits or a dashed UUID")


def _load_header(line: bytes, what: str) -> dict:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"{what} is not valid JSON: {exc}") from None
    if type(value) is not dict:
        raise _invalid(f"{what} is not a JSON object")
    return value


def _invalid(cause: str) -> Rejection:
    return Rejection(400, "invalid envelope", [cause])
