"""Grouping: the fingerprint that decides which error group an incoming event joins.

This module owns Sentry's grouping order -- a custom ``fingerprint`` (with ``{{ default }}``
expansion), else the stack trace of the primary exception (in-app frames only when any
exist), else the exception type and normalised value, else the message template -- and
the normalisation that keeps volatile details (numbers, ids, addresses, dates, build
hashes, deploy paths, line numbers) out of the group key.

It reads the event through :mod:`app.ingest.fields`. Everything is pure and never raises on
garbage: a field that is missing, null or of the wrong type is treated as absent. Regexes are
compiled once at import; this runs on the ingest hot path for every event, so its work is
bounded whatever the event's shape: fields reads only the last frames and exceptions, a
fingerprint counts only its first entries, ``{{ default }}`` is computed once however often it
appears, and every text is cut to its ``MAX_GROUPED_*`` length before a regex reads it.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from app.ingest.fields import EventFields, read_fields, text_or_none, text_prefix

__all__ = [
    "FINGERPRINT_LENGTH",
    "GROUPING_VERSION",
    "MAX_FINGERPRINT_ENTRIES",
    "MAX_GROUPED_PATH_CHARS",
    "MAX_GROUPED_SYMBOL_CHARS",
    "MAX_GROUPED_TEXT_CHARS",
    "default_components",
    "fingerprint_for",
    "grouping_components",
    "normalise_filename",
    "normalise_text",
]

#: Mixed into every digest so a future change of the algorithm can never collide with old groups.
GROUPING_VERSION = "errgate-grouping-1"
#: Length of the hex digest returned by :func:`fingerprint_for`.
FINGERPRINT_LENGTH = 32
#: Only this many characters of an exception value or message take part in grouping.
MAX_GROUPED_TEXT_CHARS = 1024
#: Only this many characters of a frame's filename (or abs_path) take part in grouping: the most
#: Relay keeps of a path (``MaxChars::Path``: 256 characters plus an allowance of 40).
MAX_GROUPED_PATH_CHARS = 256 + 40
#: Only this many characters of an exception type and of a frame's function and module take part
#: in grouping: the most Relay keeps of a type or function name (256 characters plus an allowance
#: of 20). Relay leaves a frame's module untrimmed; errgate gives it the same limit so that every
#: text a grouping component carries is bounded.
MAX_GROUPED_SYMBOL_CHARS = 256 + 20
#: Only the first entries of a custom fingerprint take part in grouping. Relay does not trim
#: fingerprints, so this limit is errgate's own: far above what SDKs and users send, and low
#: enough that the ``{{ default }}`` entries among them cost little to hash.
MAX_FINGERPRINT_ENTRIES = 32

_DEFAULT_PLACEHOLDER = re.compile(r"\{\{\s*default\s*\}\}", re.IGNORECASE)

# One pass over the text masks every volatile token; the named group that matched picks the mask.
_VOLATILE_TOKEN = re.compile(
    r"(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)"
    r"|(?P<date>\b\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:z|[+-]\d{2}(?::?\d{2})?)?)?)"
    r"|(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<ipv4>\b(?:\d{1,3}\.){3}\d{1,3}\b)"
    r"|(?P<ipv6>(?<![\w:])(?:"
    r"(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}"
    r"|[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?"
    r"|::[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*"
    r")(?![\w:]))"
    r"|(?P<hex>0x[0-9a-f]+|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b)"
    r"|(?P<number>\d+(?:\.\d+)*)",
    re.IGNORECASE,
)
_MASKS: dict[str | None, str] = {
    "uuid": "<uuid>",
    "date": "<date>",
    "email": "<email>",
    "ipv4": "<ip>",
    "ipv6": "<ip>",
    "hex": "<hex>",
    "number": "<n>",
}

_URL_SCHEME_AND_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]*", re.IGNORECASE)
_VENDOR_DIRECTORY = re.compile(r"^.*/(?:site-packages|dist-packages|node_modules)/")
_WINDOWS_DRIVE = re.compile(r"^[a-z]:/", re.IGNORECASE)
_BUILD_HASH = re.compile(r"[.-](?=[0-9a-f]*\d)[0-9a-f]{8,}(?=\.)", re.IGNORECASE)
_MINIFIED_SUFFIX = re.compile(r"\.min(?=\.[a-z0-9]+$)", re.IGNORECASE)
_ABSOLUTE_PATH_KEPT_SEGMENTS = 2

_ADDRESS_IN_FUNCTION = re.compile(r"0x[0-9a-f]+", re.IGNORECASE)
_ANONYMOUS_FUNCTIONS = frozenset({"?", "<anonymous>", "<unknown>"})


# --- normalisation ------------------------------------------------------------------------


def _mask_volatile_token(match: re.Match[str]) -> str:
    return _MASKS[match.lastgroup]


def normalise_text(text: str) -> str:
    """Mask numbers, hex, UUIDs, IP and e-mail addresses and dates so that messages differing
    only in such values compare equal. Quoted strings are kept (``KeyError: 'a'`` vs ``'b'``)."""
    return _VOLATILE_TOKEN.sub(_mask_volatile_token, text[:MAX_GROUPED_TEXT_CHARS])


def _strip_query_and_fragment(path: str) -> str:
    for separator in ("?", "#"):
        index = path.find(separator)
        if index >= 0:
            path = path[:index]
    return path


def _last_segments(path: str, count: int) -> str:
    return "/".join(path.rstrip("/").rsplit("/", count)[-count:])


def _strip_build_noise(path: str) -> str:
    """Drop webpack-style content hashes and ``.min`` from the file name."""
    directory, slash, name = path.rpartition("/")
    name = _MINIFIED_SUFFIX.sub("", _BUILD_HASH.sub("", name))
    return directory + slash + name


def normalise_filename(filename: str) -> str:
    """A file name stripped of what varies between deploys and builds: URL scheme and host,
    query and fragment, directories up to ``site-packages``/``node_modules``, all but the last
    two segments of an absolute file system path, build hashes and ``.min``. Only the first
    :data:`MAX_GROUPED_PATH_CHARS` characters are read."""
    path = _strip_query_and_fragment(filename[:MAX_GROUPED_PATH_CHARS].replace("\\", "/"))
    url_prefix = _URL_SCHEME_AND_HOST.match(path)
    is_url = url_prefix is not None
    if url_prefix is not None:
        path = path[url_prefix.end() :]
    path = _VENDOR_DIRECTORY.sub("", path, count=1)
    if is_url or path.startswith("~/"):
        path = path.lstrip("~/.")
    elif path.startswith("/") or _WINDOWS_DRIVE.match(path):
        path = _last_segments(path, _ABSOLUTE_PATH_KEPT_SEGMENTS)
    return _strip_build_noise(path)


def _exception_type(exception: dict[str, Any]) -> str | None:
    return text_prefix(exception.get("type"), MAX_GROUPED_SYMBOL_CHARS)


def _frame_function(frame: dict[str, Any]) -> str | None:
    function = text_prefix(frame.get("function"), MAX_GROUPED_SYMBOL_CHARS)
    if function is None or function in _ANONYMOUS_FUNCTIONS:
        return None
    if "0x" in function or "0X" in function:
        return _ADDRESS_IN_FUNCTION.sub("<hex>", function)
    return function


def _frame_location(frame: dict[str, Any]) -> str | None:
    """``m:`` + module, else ``f:`` + normalised filename (or abs_path), else ``None``."""
    module = text_prefix(frame.get("module"), MAX_GROUPED_SYMBOL_CHARS)
    if module is not None:
        return "m:" + module
    filename = text_or_none(frame.get("filename")) or text_or_none(frame.get("abs_path"))
    if filename is None:
        return None
    normalised = normalise_filename(filename)
    return "f:" + normalised if normalised else None


# --- grouping components ------------------------------------------------------------------


def _frame_components(frames: list[dict[str, Any]]) -> list[str]:
    components: list[str] = []
    for frame in frames:
        location = _frame_location(frame)
        function = _frame_function(frame)
        if location is None and function is None:
            continue
        components.append(location or "")
        components.append("fn:" + (function or ""))
    return components


def _stacktrace_components(fields: EventFields) -> list[str]:
    """Exception type plus (location, function) of each contributing frame; lines ignored."""
    exception = fields.exception
    if exception is None:
        return []
    frame_components = _frame_components(fields.app_frames)
    if not frame_components:
        return []
    return ["stack", "type:" + (_exception_type(exception) or ""), *frame_components]


def _exception_value_components(fields: EventFields) -> list[str]:
    exception = fields.exception
    if exception is None:
        return []
    kind = _exception_type(exception)
    value = fields.exception_value
    if kind is None and value is None:
        return []
    return ["exception", "type:" + (kind or ""), "value:" + normalise_text(value or "")]


def _message_components(fields: EventFields) -> list[str]:
    entry = fields.log_entry
    if entry is None:
        return []
    return ["message", "msg:" + normalise_text(entry.template or entry.formatted or "")]


def default_components(event: dict[str, Any], fields: EventFields | None = None) -> list[str]:
    """Sentry's default grouping: stack trace, else exception type and value, else message.
    ``fields``: :func:`~app.ingest.fields.read_fields` of ``event``, when the caller has them."""
    if fields is None:
        fields = read_fields(event)
    return (
        _stacktrace_components(fields)
        or _exception_value_components(fields)
        or _message_components(fields)
        or ["nothing"]
    )


def _fingerprint_entry(entry: object) -> str | None:
    """A fingerprint entry as text; objects, lists, nulls and non-finite numbers are dropped."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, bool):
        return "True" if entry else "False"
    if isinstance(entry, int):
        try:
            return str(entry)
        except ValueError:  # beyond Python's int-to-str digit limit
            return None
    if isinstance(entry, float) and math.isfinite(entry):
        return str(int(entry)) if entry.is_integer() else repr(entry)
    return None


def _custom_fingerprint(event: dict[str, Any]) -> list[str]:
    """The text of the first :data:`MAX_FINGERPRINT_ENTRIES` entries, unusable ones dropped."""
    raw = event.get("fingerprint")
    if not isinstance(raw, list):
        return []
    return [text for text in map(_fingerprint_entry, raw[:MAX_FINGERPRINT_ENTRIES]) if text is not None]


def _fingerprint_runs(entries: list[str], event: dict[str, Any], fields: EventFields | None) -> list[list[str]]:
    """Each entry tagged ``fp:``; ``{{ default }}`` expands in place, so ``["{{ default }}"]``
    alone groups exactly like no fingerprint at all (as in Sentry). Every expansion is the same
    list, computed once."""
    runs: list[list[str]] = []
    default: list[str] | None = None
    for entry in entries:
        if _DEFAULT_PLACEHOLDER.fullmatch(entry.strip()):
            if default is None:
                default = default_components(event, fields)
            runs.append(default)
        else:
            runs.append(["fp:" + entry])
    return runs


def _component_runs(event: dict[str, Any], fields: EventFields | None) -> list[list[str]]:
    """The components in runs: one per fingerprint entry, or the default grouping alone."""
    if not isinstance(event, dict):
        return [["nothing"]]
    entries = _custom_fingerprint(event)
    if entries:
        return _fingerprint_runs(entries, event, fields)
    return [default_components(event, fields)]


def grouping_components(event: dict[str, Any], fields: EventFields | None = None) -> list[str]:
    """The ordered, kind-tagged components that identify the event's group."""
    return [component for run in _component_runs(event, fields) for component in run]


def _encoded(components: list[str]) -> bytes:
    """Each component length-prefixed, so that no two component lists share an encoding."""
    parts: list[bytes] = []
    for component in components:
        encoded = component.encode("utf-8", "surrogatepass")
        parts.append(b"%d:" % len(encoded))
        parts.append(encoded)
    return b"".join(parts)


_VERSIONED_SHA256 = hashlib.sha256(GROUPING_VERSION.encode())  # copied per event: cheaper than a new one


def _digest(runs: list[list[str]]) -> str:
    """sha256 over the encoded components of every run; a run that repeats is encoded once."""
    hasher = _VERSIONED_SHA256.copy()
    encoded_runs: dict[int, bytes] = {}
    for run in runs:
        encoded = encoded_runs.get(id(run))
        if encoded is None:
            encoded = encoded_runs[id(run)] = _encoded(run)
        hasher.update(encoded)
    return hasher.hexdigest()[:FINGERPRINT_LENGTH]


def fingerprint_for(event: dict[str, Any], fields: EventFields | None = None) -> str:
    """The stable hex fingerprint of the group ``event`` belongs to; ``fields`` as for
    :func:`default_components`."""
    return _digest(_component_runs(event, fields))
