"""Configuration: read once from the environment into an immutable object, validated at start.

Every setting is an ``ERRGATE_*`` variable (plus ``DATABASE_URL`` and ``SENTRY_DSN``).
A bad value raises :class:`ConfigError` naming the variable. Tests build a
:class:`Settings` from a plain dict instead of touching ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
MiB = 1024 * 1024

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "errgate"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    external_url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    data_dir: Path = field(default_factory=_default_data_dir)
    root_token: str | None = None
    log_level: str = "info"
    metrics_port: int | None = None
    workers: int = 1
    shutdown_grace_seconds: float = 20.0
    db_pool_size: int = 10
    db_timeout_seconds: float = 5.0
    key_cache_ttl_seconds: float = 5.0
    max_body_bytes: int = 20 * MiB
    max_envelope_bytes: int = 200 * MiB
    max_event_bytes: int = 1 * MiB
    batch_max_events: int = 500
    batch_max_wait_ms: float = 5.0
    max_pending_events: int = 20_000
    event_retention_days: int = 90
    max_events_per_error: int | None = None
    sentry_dsn: str | None = None
    # The HTTP connection layer (app.protocol).
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keepalive_seconds: float = 75.0
    max_connections: int = 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        reader = _Reader(env)
        host = reader.text("ERRGATE_HOST", DEFAULT_HOST)
        port = reader.integer("ERRGATE_PORT", DEFAULT_PORT, 1, 65535)
        public_host = "localhost" if host in ("0.0.0.0", "::", "") else host
        return cls(
            database_url=reader.optional("DATABASE_URL", _check_database_url),
            host=host,
            port=port,
            external_url=reader.text("ERRGATE_EXTERNAL_URL", f"http://{public_host}:{port}", _check_external_url),
            data_dir=Path(reader.text("ERRGATE_DATA_DIR", str(_default_data_dir()))).expanduser(),
            root_token=reader.optional("ERRGATE_ROOT_TOKEN", _check_root_token),
            log_level=reader.text("ERRGATE_LOG_LEVEL", "info", _check_log_level).lower(),
            metrics_port=reader.optional_integer("ERRGATE_METRICS_PORT", 1, 65535),
            workers=reader.integer("ERRGATE_WORKERS", 1, 1, 64),
            shutdown_grace_seconds=reader.number("ERRGATE_SHUTDOWN_GRACE_SECONDS", 20.0, 0, 3600),
            db_pool_size=reader.integer("ERRGATE_DB_POOL_SIZE", 10, 2, 500),
            db_timeout_seconds=reader.number("ERRGATE_DB_TIMEOUT_SECONDS", 5.0, 0.1, 300),
            key_cache_ttl_seconds=reader.number("ERRGATE_KEY_CACHE_TTL_SECONDS", 5.0, 0, 300),
            max_body_bytes=reader.integer("ERRGATE_MAX_BODY_BYTES", 20 * MiB, 1024, 1 << 40),
            max_envelope_bytes=reader.integer("ERRGATE_MAX_ENVELOPE_BYTES", 200 * MiB, 1024, 1 << 40),
            max_event_bytes=reader.integer("ERRGATE_MAX_EVENT_BYTES", 1 * MiB, 1024, 1 << 40),
            batch_max_events=reader.integer("ERRGATE_BATCH_MAX_EVENTS", 500, 1, 100_000),
            batch_max_wait_ms=reader.number("ERRGATE_BATCH_MAX_WAIT_MS", 5.0, 0, 10_000),
            max_pending_events=reader.integer("ERRGATE_MAX_PENDING_EVENTS", 20_000, 1, 10_000_000),
            event_retention_days=reader.integer("ERRGATE_EVENT_RETENTION_DAYS", 90, 1, 36_500),
            max_events_per_error=reader.optional_integer("ERRGATE_MAX_EVENTS_PER_ERROR", 1, 1 << 40),
            sentry_dsn=reader.optional("SENTRY_DSN", _check_sentry_dsn),
            header_timeout_seconds=reader.number("ERRGATE_HEADER_TIMEOUT_SECONDS", 10.0, 0.01, 3600),
            body_timeout_seconds=reader.number("ERRGATE_BODY_TIMEOUT_SECONDS", 30.0, 0.01, 3600),
            keepalive_seconds=reader.number("ERRGATE_KEEPALIVE_SECONDS", 75.0, 0.01, 86_400),
            max_connections=reader.integer("ERRGATE_MAX_CONNECTIONS", 1024, 1, 1_000_000),
        )


class _Reader:
    """Typed access to an environment mapping; every failure names the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def optional(self, name: str, check: Callable[[str], str | None] | None = None) -> str | None:
        value = self._raw(name)
        if value is not None and check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(f"{name}: {problem}")
        return value

    def text(self, name: str, default: str, check: Callable[[str], str | None] | None = None) -> str:
        value = self.optional(name, check)
        return default if value is None else value

    def _parse(self, name: str, parse: Callable[[str], T], low: float, high: float, kind: str) -> T | None:
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            value = parse(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected {kind}, got {raw!r}") from None
        if not low <= value <= high:  # type: ignore[operator]
            raise ConfigError(f"{name}: must be between {low} and {high}, got {raw!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self._parse(name, int, low, high, "an integer")
        return default if value is None else value

    def optional_integer(self, name: str, low: int, high: int) -> int | None:
        return self._parse(name, int, low, high, "an integer")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self._parse(name, float, low, high, "a number")
        return default if value is None else value


def _check_database_url(value: str) -> str | None:
    if urlsplit(value).scheme not in ("postgres", "postgresql"):
        return "expected a postgresql:// URL"
    return None


def _check_external_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL with a host, got {value!r}"
    return None


def _check_root_token(value: str) -> str | None:
    if len(value) < 20:
        return "must be at least 20 characters long"
    return None


def _check_log_level(value: str) -> str | None:
    if value.lower() not in ("debug", "info", "warning", "error", "critical"):
        return f"expected one of debug, info, warning, error, critical, got {value!r}"
    return None


def _check_sentry_dsn(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.username or not parts.hostname:
        return "expected a Sentry DSN such as https://KEY@host/PROJECT_ID"
    if not parts.path.rstrip("/").rpartition("/")[2].isdigit():
        return "the DSN must end with a numeric project id"
    return None
