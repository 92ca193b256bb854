"""Reading values out of a stored event payload that may hold anything: text, numbers, pairs, times.

A stored payload is what an SDK (or anyone holding a DSN) sent, so every field may be missing, of
another type, or huge. These readers never raise: a value of the wrong shape reads as empty, and
text is cut to a length a page can show.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Iterator

TEXT_LIMIT = 2_000  # characters of one shown value
MAX_ROWS = 200  # rows of one key/value table (tags, headers, a context, breadcrumb data)
_NESTING = 8  # levels of a nested value written out before "…"
_ELLIPSIS = "…"


def text(value: Any, limit: int = TEXT_LIMIT) -> str:
    """``value`` as display text: a string as is, None as empty, anything else as compact JSON; cut to ``limit``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clip(value, limit)
    return compact(value, limit)


def clip(value: str, limit: int = TEXT_LIMIT) -> str:
    """A string cut to ``limit`` characters, the last one an ellipsis when it was longer."""
    return value if len(value) <= limit else value[: limit - 1] + _ELLIPSIS


def compact(value: Any, limit: int = TEXT_LIMIT) -> str:
    """Compact JSON-like text of any value, written only up to ``limit`` characters and :data:`_NESTING` levels."""
    out: list[str] = []
    size = 0
    for piece in _pieces(value, 0, limit):
        out.append(piece)
        size += len(piece)
        if size > limit:
            break  # the pieces are made lazily: nothing past the limit is ever written
    return clip("".join(out), limit)


def key(value: Any, limit: int = 200) -> str:
    """A mapping's key as text (JSON keys are strings; a Python caller's may be anything)."""
    return clip(value, limit) if isinstance(value, str) else clip(_scalar(value), limit)


def integer(value: Any) -> int | None:
    """A whole number of 64 bits from an int, an integral float or a string of digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, str) and 0 < len(value) <= 18 and value.strip().lstrip("-").isdecimal():
        return int(value)
    return None


def mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list:
    return value if isinstance(value, list) else []


def values_list(value: Any) -> list:
    """The items of a Sentry interface sent as ``{"values": [...]}`` or as a bare list."""
    if isinstance(value, dict):
        return sequence(value.get("values"))
    return sequence(value)


def pairs(value: Any, limit: int = MAX_ROWS) -> list[tuple[str, str]]:
    """Key/value rows from an object, a list of ``[key, value]`` pairs or of ``{"key", "value"}`` objects."""
    rows: list[tuple[str, str]] = []
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = (_pair(item) for item in value)
    else:
        return rows
    for item in items:
        if len(rows) >= limit:
            break
        if item is not None:
            rows.append((key(item[0]) if not isinstance(item[0], (dict, list)) else text(item[0], 200), text(item[1])))
    return rows


def timestamp(value: Any) -> str:
    """An event or breadcrumb time as ISO 8601 text in UTC: from epoch seconds (a number or numeric string) or RFC 3339 text."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            return clip(value, 64)
    if seconds is None or not math.isfinite(seconds):
        return ""
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return clip(str(value), 64)
    return moment.isoformat().replace("+00:00", "Z")


def _pair(item: Any) -> tuple[Any, Any] | None:
    if isinstance(item, list) and len(item) == 2:
        return item[0], item[1]
    if isinstance(item, dict) and "key" in item:
        return item.get("key"), item.get("value")
    return None


def _pieces(node: Any, depth: int, limit: int) -> Iterator[str]:
    if isinstance(node, str):
        yield _quoted(node[: limit + 1])
    elif isinstance(node, (dict, list)):
        opening, closing = ("{", "}") if isinstance(node, dict) else ("[", "]")
        if depth >= _NESTING:
            yield opening + _ELLIPSIS + closing
            return
        yield opening
        for index, item in enumerate(node.items() if isinstance(node, dict) else node):
            if index:
                yield ", "
            if isinstance(node, dict):
                yield _quoted(key(item[0], limit + 1)) + ": "
                item = item[1]
            yield from _pieces(item, depth + 1, limit)
        yield closing
    else:
        yield _scalar(node)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    try:
        return clip(repr(value), 200)
    except ValueError:  # an integer of more digits than Python converts to text
        return _ELLIPSIS
