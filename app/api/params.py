"""Request parameters as GitLab's API (Grape) reads them (query string, JSON or form body, merged) and path ids.

Validation errors are collected and answered together as Grape does:
400 ``{"error": "active is missing, integrated is invalid"}``.

Reading is strict, so that what reaches the database is always text PostgreSQL accepts:

- The query string and ``application/x-www-form-urlencoded`` bodies are parsed as Rack does:
  a malformed ``%`` escape or bytes that are not valid in the charset answer 400
  ``{"message": "400 Bad request - ..."}``.
- A body's ``charset`` defaults to UTF-8; others are accepted when Python knows them and they
  leave ASCII unchanged (Latin-1, Windows-1252, Shift_JIS...). UTF-16, UTF-7, EBCDIC and unknown
  names answer 415, since the ``=``, ``&`` and ``{`` of the body could not be read.
- Any other content type is read as a JSON object. orjson refuses lone surrogates (``"\\ud800"``)
  and nesting deeper than 1024: both answer 400.
- ``multipart/form-data`` needs its boundary (400 without) and its closing delimiter; part
  headers are UTF-8. As in Rack, a part without a name (or named the RFC 2231 way) is no
  parameter, and Content-Transfer-Encoding is ignored (RFC 7578 forbids both). A file part is
  read as text like any other part, in its own charset; a nested multipart part answers 400.
- Bodies are bounded by the application's ``client_max_size`` (aiohttp's 413, rendered as JSON
  by the error middleware), forms also by ``MAX_FORM_FIELDS`` (413).
- ``name[]`` collects a list; every other key is taken literally (``a[b]`` is simply a parameter
  no route declares, and is ignored); a repeated key keeps its last value; the body's values
  override the query string's.
- PostgreSQL text cannot hold NUL, so a string parameter containing ``\\x00`` is invalid (400);
  it is never stripped silently. Integers are ASCII digits within PostgreSQL's bigint; dates are
  ISO 8601 dates that exist (``2024-02-30`` and year 99999 are invalid).
"""

from __future__ import annotations

import codecs
import email.message
import email.parser
import re
from datetime import date
from functools import lru_cache
from typing import Any, Iterable, Iterator, TypeVar
from urllib.parse import parse_qsl

import orjson
from aiohttp import hdrs, web

from app.ids import BIGINT_MAX, BIGINT_MIN, parse_id
from app.problems import HTTPProblem

T = TypeVar("T")

# dry-types' Params::Bool, which Grape uses to coerce booleans.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})

# aiohttp's own default for request.post(); one field costs a dict entry, not just its bytes.
MAX_FORM_FIELDS = 1000


async def read_params(request: web.Request) -> "Params":
    values: dict[str, Any] = {}
    # The raw query, not request.query: yarl decodes leniently and would let %zz or %ff through.
    query = request.rel_url.raw_query_string.encode("utf-8", "surrogateescape")
    _merge_pairs(values, _form_pairs(query, "utf-8", "query string", max_fields=None))
    if request.body_exists and request.method not in ("GET", "HEAD"):
        body = await request.read()  # bounded by client_max_size: 413 above 1 MiB
        if request.content_type == "multipart/form-data":
            _merge_pairs(values, _multipart_pairs(request.headers[hdrs.CONTENT_TYPE], body))
        elif request.content_type == "application/x-www-form-urlencoded":
            if body:
                _merge_pairs(values, _form_pairs(body, _codec(request.charset), "body", MAX_FORM_FIELDS))
        elif body.strip():
            values.update(_json_object(body, _codec(request.charset)))
    return Params(values)


def _bad_request(reason: str) -> HTTPProblem:
    return HTTPProblem.gitlab(400, f"400 Bad request - {reason}")


def _too_many_fields() -> HTTPProblem:
    return HTTPProblem.gitlab(413, f"413 Request Entity Too Large - more than {MAX_FORM_FIELDS} form fields")


def _json_object(body: bytes, codec: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body if codec == "utf-8" else _decode(body, codec, "body"))
    except orjson.JSONDecodeError as exc:
        raise _bad_request(f"malformed JSON body: {exc}") from None
    if not isinstance(parsed, dict):
        raise _bad_request("the JSON body must be an object")
    return parsed


# A % not followed by two hex digits: Rack refuses it ("invalid %-encoding"), Python would keep it as is.
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _form_pairs(raw: bytes, codec: str, where: str, max_fields: int | None) -> list[tuple[str, str]]:
    text = _decode(raw, codec, where).rstrip()
    if _MALFORMED_ESCAPE.search(text):
        raise _bad_request(f"invalid %-encoding in the {where}")
    try:
        return parse_qsl(text, keep_blank_values=True, encoding=codec, errors="strict", max_num_fields=max_fields)
    except UnicodeDecodeError:  # the bytes of a %-escape
        raise _bad_request(f"the {where} is not valid {codec}") from None
    except ValueError:  # parse_qsl's max_num_fields
        raise _too_many_fields() from None


def _multipart_pairs(content_type: str, body: bytes) -> list[tuple[str, str]]:
    boundary = _parameter(_mime_headers(b"Content-Type: " + content_type.encode("utf-8", "surrogateescape")), "boundary")
    if not boundary:
        raise _bad_request("multipart body without a boundary")
    pairs = []
    for part in _multipart_parts(body, b"--" + boundary.encode()):
        if len(pairs) == MAX_FORM_FIELDS:
            raise _too_many_fields()
        if part.startswith(b"\r\n"):  # no headers at all
            head, payload = b"", part[2:]
        else:
            head, separator, payload = part.partition(b"\r\n\r\n")
            if not separator:
                raise _malformed_multipart()
        headers = _mime_headers(head)
        if headers.get_content_maintype() == "multipart":
            raise _bad_request("nested multipart parts are not supported")
        name = _parameter(headers, "name", "content-disposition")
        if name is not None:
            pairs.append((name, _decode(payload, _codec(_parameter(headers, "charset")), f"part {name!r}")))
    return pairs


# The standard library parses header parameters in time quadratic in their number, so the
# headers of a part are bounded: as long as aiohttp allows a request's header line, and with a
# few parameters (name, filename, charset...).
MAX_PART_HEAD_BYTES = 8190
MAX_PART_HEAD_PARAMETERS = 16
_TRANSPORT_PADDING = re.compile(rb"[ \t]*\r\n")


def _multipart_parts(body: bytes, dash_boundary: bytes) -> Iterator[bytes]:
    """The parts between the delimiters (RFC 2046 5.1.1), in linear time; preamble and epilogue are dropped."""
    data = b"\r\n" + body
    delimiter = b"\r\n" + dash_boundary
    part_start: int | None = None
    position = 0
    while True:
        found = data.find(delimiter, position)
        if found < 0:
            raise _malformed_multipart()
        after = found + len(delimiter)
        if data.startswith(b"--", after):  # the close delimiter
            if part_start is not None:
                yield data[part_start:found]
            return
        line_end = _TRANSPORT_PADDING.match(data, after)
        if line_end is None:  # content that merely starts like the delimiter
            position = after
            continue
        if part_start is not None:
            yield data[part_start:found]
        part_start = position = line_end.end()


def _malformed_multipart() -> HTTPProblem:
    return _bad_request("malformed multipart body")


def _mime_headers(head: bytes) -> email.message.Message:
    """Header lines (only: a multipart Content-Type would make the parser look for parts), parsed by
    the standard library, which records defects rather than raising. Browsers send names in raw UTF-8."""
    if len(head) > MAX_PART_HEAD_BYTES or head.count(b";") > MAX_PART_HEAD_PARAMETERS:
        raise _bad_request("multipart headers too long or with too many parameters")
    return email.parser.HeaderParser().parsestr(_decode(head, "utf-8", "multipart header"))


def _parameter(headers: email.message.Message, name: str, header: str = "content-type") -> str | None:
    """A header's parameter. The RFC 2231 form ``name*=charset'lang'...``, which RFC 7578 forbids
    and Rack ignores, counts as absent: the standard library's decoding of it can raise."""
    value = headers.get_param(name, header=header)
    return value.strip() if isinstance(value, str) else None


def _decode(raw: bytes, codec: str, where: str) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        raise _bad_request(f"the {where} is not valid {codec}") from None


def _codec(charset: str | None) -> str:
    """Python's codec for a request's or a part's charset: UTF-8 when absent, 415 when unusable."""
    if charset is None:
        return "utf-8"
    name = charset.strip().lower()
    well_formed = _CHARSET_NAME.fullmatch(name) is not None
    codec = _ascii_compatible_codec(name) if well_formed else None
    if codec is None:
        # Only a well-formed name is echoed: the answer must stay valid JSON text.
        shown = name if well_formed else "of the request"
        raise HTTPProblem.gitlab(415, f"415 Unsupported Media Type - the charset {shown} is not supported")
    return codec


_CHARSET_NAME = re.compile(r"[a-z0-9][a-z0-9._:+-]{0,39}")
# ASCII plus the escapes of codecs that are not ASCII-compatible although most ASCII passes
# (UTF-7's +...-, HZ's ~{, ISO-2022's ESC $ B, Python's unicode_escape): such codecs fail the round trip.
_PROBE = bytes(range(128)) + b"\\u00e9\\x41+AGE-~{~}\x1b$B"


@lru_cache(maxsize=64)
def _ascii_compatible_codec(charset: str) -> str | None:
    try:
        text = _PROBE.decode("ascii")
        # Encoding first: it cannot warn, while decoding with unicode_escape warns on bad escapes.
        if text.encode(charset) == _PROBE and _PROBE.decode(charset) == text:
            return codecs.lookup(charset).name
    except (LookupError, ValueError):  # unknown, not a text encoding, or UnicodeError
        pass
    return None


def _merge_pairs(values: dict[str, Any], pairs: Iterable[tuple[str, str]]) -> None:
    lists: dict[str, list[str]] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            lists.setdefault(key[:-2], []).append(value)
        else:
            values[key] = value
    values.update(lists)


_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


class Params:
    """Typed getters over merged parameters; call :meth:`done` to raise the collected errors."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.errors: list[str] = []

    def _present(self, name: str, required: bool) -> Any:
        if name not in self.values:
            if required:
                self.errors.append(f"{name} is missing")
            return None
        value = self.values[name]
        if value is None or (isinstance(value, str) and value.strip() == ""):
            self.errors.append(f"{name} is empty")
            return None
        return value

    def boolean(self, name: str, required: bool = False) -> bool | None:
        value = self._present(name, required)
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.errors.append(f"{name} is invalid")
        return None

    def integer(self, name: str, required: bool = False, choices: Iterable[int] | None = None) -> int | None:
        value = self._present(name, required)
        if value is None:
            return None
        # ASCII digits only (int() would also take "١٢", "1_0" and 4,000-digit numbers) and within
        # PostgreSQL's bigint, so that every integer parameter can reach SQL.
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not BIGINT_MIN <= value <= BIGINT_MAX:
            self.errors.append(f"{name} is invalid")
            return None
        number = value
        if choices is not None and number not in choices:
            self.errors.append(f"{name} does not have a valid value")
            return None
        return number

    def string(self, name: str, required: bool = False, choices: Iterable[str] | None = None) -> str | None:
        value = self._present(name, required)
        if value is None:
            return None
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
        if not isinstance(value, (str, int)) or isinstance(value, bool) or "\x00" in str(value):
            self.errors.append(f"{name} is invalid")
            return None
        text = str(value).strip()
        if choices is not None and text not in choices:
            self.errors.append(f"{name} does not have a valid value")
            return None
        return text

    def strings(self, name: str, required: bool = False, choices: Iterable[str] | None = None) -> list[str] | None:
        value = self._present(name, required)
        if value is None:
            return None
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() and "\x00" not in i for i in items):
            self.errors.append(f"{name} is invalid")
            return None
        items = [i.strip() for i in items]
        if choices is not None and not set(items) <= set(choices):
            self.errors.append(f"{name} does not have a valid value")
            return None
        return items

    def integers(self, name: str, required: bool = False, max_items: int | None = None) -> list[int] | None:
        """``name[]`` values, a JSON list or comma-separated text, each an integer as :meth:`integer` reads it."""
        value = self._present(name, required)
        if value is None:
            return None
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.errors.append(f"{name} is invalid")
            return None
        if max_items is not None and len(items) > max_items:
            self.errors.append(f"{name} has more than {max_items} items")
            return None
        numbers = [Params({name: item}).integer(name) for item in items]
        if None in numbers:
            self.errors.append(f"{name} is invalid")
            return None
        return numbers  # type: ignore[return-value]

    def date(self, name: str) -> date | None:
        value = self._present(name, False)
        if value is None:
            return None
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.errors.append(f"{name} is invalid")
            return None

    def done(self) -> None:
        if self.errors:
            raise HTTPProblem.bad_params(", ".join(self.errors))


def path_id(request: web.Request, name: str, not_found: str) -> int:
    """A numeric id from the URL path; anything else is a 404 with GitLab's ``not_found`` message."""
    return found(parse_id(request.match_info[name]), not_found)


def found(value: T | None, not_found: str) -> T:
    """``value`` (an id, a row) when the path named one, else a 404 with GitLab's ``not_found`` message."""
    if value is None:
        raise HTTPProblem.gitlab(404, not_found)
    return value
