"""Building the Sentry DSN that a client key hands out."""

from __future__ import annotations

from urllib.parse import urlsplit

COLLECTOR_PATH = "/api/v4/error_tracking/collector"


def build_dsn(external_url: str, public_key: str, project_id: int) -> str:
    """``{scheme}://{public_key}@{host[:port]}{path}/api/v4/error_tracking/collector/{project_id}``.

    Any path in ``external_url`` (errgate behind a sub-path) is kept before the collector path.
    """
    parts = urlsplit(external_url)
    base_path = parts.path.rstrip("/")
    return f"{parts.scheme}://{public_key}@{parts.netloc}{base_path}{COLLECTOR_PATH}/{project_id}"
