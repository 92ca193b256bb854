"""Configuration: one table of settings (variable, parser, default, meaning), read once from a given environment."""

from __future__ import annotations

import os
import pwd
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping
from urllib.parse import urlsplit

from app.cores import default_workers

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
MiB = 1024 * 1024
MAX_WORKERS = 64
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

Env = Mapping[str, str]


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


class _Invalid(ValueError):
    """A parser's complaint about a value; ``Settings.from_env`` puts the variable's name in front."""


# Parsers: called with the stripped, non-blank value and the environment it came from.


@dataclass(frozen=True)
class Text:
    """Text as given, refused when ``check`` names a problem with it."""

    check: Callable[[str], str | None] | None = None

    def __call__(self, raw: str, env: Env) -> str:
        problem = self.check(raw) if self.check else None
        if problem:
            raise _Invalid(problem)
        return raw


@dataclass(frozen=True)
class OneOf:
    """One word of ``choices`` in any case, read as lower case."""

    choices: tuple[str, ...]

    def __call__(self, raw: str, env: Env) -> str:
        if raw.lower() not in self.choices:
            raise _Invalid(f"expected one of {', '.join(self.choices)}, got {raw!r}")
        return raw.lower()


@dataclass(frozen=True)
class Number:
    """A number, fractions allowed, from ``low`` to ``high``, both included."""

    low: float
    high: float
    convert: ClassVar[Callable[[str], Any]] = float
    kind: ClassVar[str] = "a number"

    def __call__(self, raw: str, env: Env) -> Any:
        try:
            value = self.convert(raw)
        except ValueError:
            raise _Invalid(f"expected {self.kind}, got {raw!r}") from None
        if not self.low <= value <= self.high:
            raise _Invalid(f"must be between {self.low} and {self.high}, got {raw!r}")
        return value


@dataclass(frozen=True)
class Integer(Number):
    """A whole number from ``low`` to ``high``, both included."""

    low: int
    high: int
    convert = int
    kind = "an integer"


@dataclass(frozen=True)
class Directory:
    """A directory; a leading ``~`` is the given environment's home."""

    def __call__(self, raw: str, env: Env) -> Path:
        if raw == "~" or raw.startswith("~/"):
            return Path(_home(env) + raw[1:])
        return Path(raw).expanduser()  # ``~user`` reads the account database, not the environment


@dataclass(frozen=True)
class Derived:
    """A default computed from the environment and the settings declared before it."""

    compute: Callable[[Env, Mapping[str, Any]], Any]


def _home(env: Env) -> str:
    # Without HOME in the given environment, the account's home directory, as a login shell would set it.
    return env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir


def _data_dir(env: Env, settings: Mapping[str, Any]) -> Path:
    # XDG's data directory, read from the given environment so that tests and tools control it.
    base = env.get("XDG_DATA_HOME") or os.path.join(_home(env), ".local", "share")
    return Path(base) / "errgate"


def _external_url(env: Env, settings: Mapping[str, Any]) -> str:
    # A wildcard address is not one a client can connect to: DSNs then name this machine as localhost.
    host = "localhost" if settings["host"] in ("0.0.0.0", "::") else settings["host"]
    return f"http://{host}:{settings['port']}"


def _usable_cores(env: Env, settings: Mapping[str, Any]) -> int:
    return min(default_workers(), MAX_WORKERS)


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


def _check_sentry_dsn(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.username or not parts.hostname:
        return "expected a Sentry DSN such as https://KEY@host/PROJECT_ID"
    if not parts.path.rstrip("/").rpartition("/")[2].isdigit():
        return "the DSN must end with a numeric project id"
    return None


def setting(variable: str, parse: Callable[[str, Env], Any], default: Any, meaning: str, shown: str | None = None) -> Any:
    """One row of the configuration table, declared as the attribute of :class:`Settings` it fills.

    ``meaning`` is the row's one line in the README; ``shown`` is the README's default when it
    is not the value itself (a derived default, or what an unset variable means).
    """
    row = {"variable": variable, "parse": parse, "default": default, "meaning": meaning, "shown": shown}
    if isinstance(default, Derived):
        # A Settings built directly gets what an empty environment gives.
        return field(default_factory=lambda: default.compute({}, _plain_defaults()), metadata=row)
    return field(default=default, metadata=row)


@dataclass(frozen=True)
class Settings:
    """Every setting of errgate. Each attribute's declaration is its row of the configuration table."""

    # A new setting is one more declaration here; the README's Configuration table must gain the
    # same row (tests/test_readme.py compares them).

    database_url: str | None = setting("DATABASE_URL", Text(_check_database_url), None,
                                       "`postgresql://` URL of the database", shown="unset: embedded PostgreSQL")
    host: str = setting("ERRGATE_HOST", Text(), DEFAULT_HOST, "address to listen on (`0.0.0.0` in containers)")
    port: int = setting("ERRGATE_PORT", Integer(1, 65535), DEFAULT_PORT, "HTTP port (API, collector, probes, metrics)")
    external_url: str = setting("ERRGATE_EXTERNAL_URL", Text(_check_external_url), Derived(_external_url),
                                "base URL of DSNs and `Link` headers (a path prefix is kept)", shown="`http://{host}:{port}`")
    data_dir: Path = setting("ERRGATE_DATA_DIR", Directory(), Derived(_data_dir),
                             "embedded PostgreSQL data (only without `DATABASE_URL`); with several workers, "
                             "their metrics files (`metrics-{host}-{port}`)",
                             shown="`$XDG_DATA_HOME/errgate`, else `~/.local/share/errgate`")
    root_token: str | None = setting("ERRGATE_ROOT_TOKEN", Text(_check_root_token), None,
                                     "makes sure an administrator `root` with this token exists; a new value revokes the old one's token")
    session_hours: float = setting("ERRGATE_SESSION_HOURS", Number(0.01, 8760), 168.0,
                                   "a sign-in to the web page lasts this long (one week, GitLab's default); "
                                   "signing out, or revoking its token, ends it sooner")
    log_level: str = setting("ERRGATE_LOG_LEVEL", OneOf(LOG_LEVELS), "info", "`debug`, `info`, `warning`, `error`, `critical`")
    metrics_port: int | None = setting("ERRGATE_METRICS_PORT", Integer(1, 65535), None,
                                       "serve `/metrics` on this port instead of the main one")
    workers: int = setting("ERRGATE_WORKERS", Integer(1, MAX_WORKERS), Derived(_usable_cores),
                           "worker processes sharing the port (SO_REUSEPORT); `errgate serve --workers N`",
                           shown="number of usable cores (cgroup quota respected)")
    shutdown_grace_seconds: float = setting("ERRGATE_SHUTDOWN_GRACE_SECONDS", Number(0, 3600), 20.0,
                                            "on SIGTERM, how long in-flight requests may take")
    # The HTTP connection layer (app/protocol.py).
    header_timeout_seconds: float = setting("ERRGATE_HEADER_TIMEOUT_SECONDS", Number(0.01, 3600), 10.0,
                                            "a request's line and headers must all arrive within this of their "
                                            "first byte, else the connection is closed")
    body_timeout_seconds: float = setting("ERRGATE_BODY_TIMEOUT_SECONDS", Number(0.01, 3600), 30.0,
                                          "a request body that stops for this long (while errgate is reading) "
                                          "is answered 408 and its connection closed")
    keepalive_seconds: float = setting("ERRGATE_KEEPALIVE_SECONDS", Number(0.01, 86_400), 75.0,
                                       "idle keep-alive connections are closed after this; keep it above the idle "
                                       "timeout of a load balancer in front (nginx 60 s, AWS ALB 60 s; Google's "
                                       "load balancers keep 600 s)")
    max_connections: int = setting("ERRGATE_MAX_CONNECTIONS", Integer(1, 1_000_000), 1024,
                                   "client connections per worker; past it a new connection replaces an idle "
                                   "keep-alive one, or is closed at once when all are busy (see \"Slow clients\")")
    db_pool_size: int = setting("ERRGATE_DB_POOL_SIZE", Integer(2, 500), 10, "connections per worker")
    db_timeout_seconds: float = setting("ERRGATE_DB_TIMEOUT_SECONDS", Number(0.1, 300), 5.0,
                                        "longest wait for PostgreSQL on the ingest path and in readiness; "
                                        "then 503 with `Retry-After`")
    key_cache_ttl_seconds: float = setting("ERRGATE_KEY_CACHE_TTL_SECONDS", Number(0, 300), 5.0,
                                           "how long a client key decision is cached "
                                           "(changes also notify every replica at once)")
    max_body_bytes: int = setting("ERRGATE_MAX_BODY_BYTES", Integer(1024, 1 << 40), 20 * MiB,
                                  "largest request body as sent (20 MiB), else 413")
    max_envelope_bytes: int = setting("ERRGATE_MAX_ENVELOPE_BYTES", Integer(1024, 1 << 40), 200 * MiB,
                                      "largest decompressed envelope (200 MiB), else 413")
    max_inflight_bytes: int = setting("ERRGATE_MAX_INFLIGHT_BYTES", Integer(1024, 1 << 40), 128 * MiB,
                                      "decoded request bodies one worker holds at once (128 MiB: a quarter of "
                                      "the 512 MiB the Kubernetes manifests give their one worker; with N "
                                      "workers, a quarter of the memory limit / N); past it 429 with "
                                      "`Retry-After`, and a body that decodes to more alone is 413")
    max_event_bytes: int = setting("ERRGATE_MAX_EVENT_BYTES", Integer(1024, 1 << 40), 1 * MiB,
                                   "largest event item, and largest decoded `/store/` body (1 MiB), else 413")
    batch_max_events: int = setting("ERRGATE_BATCH_MAX_EVENTS", Integer(1, 100_000), 500, "events per commit at most")
    # 0 by default: a batch that starts from idle goes at once, and the events that arrive while it
    # commits form the next one. Waiting for company only left the worker's CPU idle while it
    # waited (`python -m tests.bench --connections 32`: +21 % stored events/s with 0 against 5 ms).
    batch_max_wait_ms: float = setting("ERRGATE_BATCH_MAX_WAIT_MS", Number(0, 10_000), 0.0,
                                       "how long a batch that starts while the writer is idle waits to fill; "
                                       "batches that queued behind a commit go at once")
    # 1 by default: on the 2-core development machine (`python -m tests.bench --connections 32`),
    # 2 batches side by side stored as many events/s as one at a time, for more CPU per event.
    writer_commits_in_flight: int = setting("ERRGATE_WRITER_COMMITS_IN_FLIGHT", Integer(1, 499), 1,
                                            "batches committing at once per worker, each on its own pooled "
                                            "connection; below `ERRGATE_DB_POOL_SIZE`")
    counts_fold_ms: float = setting("ERRGATE_COUNTS_FOLD_MS", Number(10, 600_000), 1000.0,
                                    "how often each worker folds the events' pending counts into their errors' "
                                    "counters, last seen and status (reads of errors fold first)")
    max_pending_events: int = setting("ERRGATE_MAX_PENDING_EVENTS", Integer(1, 10_000_000), 20_000,
                                      "events waiting for commit per worker before 429")
    event_retention_days: int = setting("ERRGATE_EVENT_RETENTION_DAYS", Integer(1, 36_500), 90,
                                        "events older than this are dropped, a whole day partition at a time")
    max_events_per_error: int | None = setting("ERRGATE_MAX_EVENTS_PER_ERROR", Integer(1, 1 << 40), None,
                                               "stored events per error at most; later events are acknowledged, "
                                               "move `last_seen_at`, and are not stored "
                                               "(the cap may be passed by one batch)")
    sentry_dsn: str | None = setting("SENTRY_DSN", Text(_check_sentry_dsn), None,
                                     "report errgate's own unhandled exceptions to this DSN (see \"Self-reporting\")")

    def __post_init__(self) -> None:
        if self.writer_commits_in_flight >= self.db_pool_size:
            raise ConfigError(
                f"ERRGATE_WRITER_COMMITS_IN_FLIGHT: {self.writer_commits_in_flight} batches in flight need more "
                f"than ERRGATE_DB_POOL_SIZE={self.db_pool_size} pooled connections; raise the pool or lower this"
            )

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Every setting from ``env`` (the process environment when None), reading nothing else.

        A blank value is the same as an unset one. A bad value raises :class:`ConfigError`
        naming its variable.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for row in TABLE:
            raw = (env.get(row.variable) or "").strip()
            if not raw:
                values[row.name] = row.default.compute(env, values) if isinstance(row.default, Derived) else row.default
                continue
            try:
                values[row.name] = row.parse(raw, env)
            except _Invalid as problem:
                raise ConfigError(f"{row.variable}: {problem}") from None
        return cls(**values)


@dataclass(frozen=True)
class Setting:
    """A row of the configuration table: the attribute, its variable, parser, default and meaning."""

    name: str
    variable: str
    parse: Callable[[str, Env], Any]
    default: Any
    meaning: str
    shown: str | None


TABLE: tuple[Setting, ...] = tuple(Setting(name=f.name, **f.metadata) for f in fields(Settings))


def _plain_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
