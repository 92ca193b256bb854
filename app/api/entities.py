"""JSON shapes of GitLab's API entities, built from database rows (shared by the API and the CLI)."""

from __future__ import annotations

from typing import Any, Mapping

import asyncpg

from app.dsn import build_dsn


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def user(row: asyncpg.Record, external_url: str, *, private: bool = False) -> dict[str, Any]:
    body = {
        "id": row["id"],
        "username": row["username"],
        "name": row["name"],
        "state": row["state"],
        "locked": False,
        "avatar_url": None,
        "web_url": f"{external_url.rstrip('/')}/{row['username']}",
    }
    if private:
        body.update(created_at=_iso(row["created_at"]), email=row["email"], is_admin=row["is_admin"])
    return body


def member(row: asyncpg.Record, external_url: str) -> dict[str, Any]:
    body = user(row, external_url)
    body.update(access_level=row["access_level"], created_at=_iso(row["created_at"]), expires_at=_iso(row["expires_at"]))
    return body


def project(row: asyncpg.Record, external_url: str) -> dict[str, Any]:
    namespace = row["namespace_path"]
    return {
        "id": row["id"],
        "name": row["name"],
        "path": row["path"],
        "path_with_namespace": row["path_with_namespace"],
        "name_with_namespace": f"{namespace.replace('/', ' / ')} / {row['name']}",
        "namespace": {"name": namespace.rsplit("/", 1)[-1], "path": namespace.rsplit("/", 1)[-1], "full_path": namespace},
        "description": row["description"],
        "visibility": "private",
        "created_at": _iso(row["created_at"]),
        "web_url": f"{external_url.rstrip('/')}/{row['path_with_namespace']}",
    }


def personal_access_token(row: asyncpg.Record, token: str | None = None) -> dict[str, Any]:
    body = {
        "id": row["id"],
        "name": row["name"],
        "revoked": row["revoked"],
        "created_at": _iso(row["created_at"]),
        "scopes": list(row["scopes"]),
        "user_id": row["user_id"],
        "last_used_at": _iso(row["last_used_at"]),
        "active": not row["revoked"],
        "expires_at": _iso(row["expires_at"]),
    }
    if token is not None:
        body["token"] = token
    return body


def error_tracking_settings(row: asyncpg.Record) -> dict[str, Any]:
    integrated = row["integrated"]
    api_url = None if integrated else row["api_url"]
    return {
        "active": row["enabled"],
        "project_name": None if integrated else row["project_name"],
        "sentry_external_url": _sentry_external_url(api_url),
        "api_url": api_url,
        "integrated": integrated,
    }


def _sentry_external_url(api_url: str | None) -> str | None:
    """GitLab derives the Sentry UI address from the API one: .../api/0/projects/ORG/PROJ → .../ORG/PROJ."""
    if not api_url:
        return None
    return api_url.replace("/api/0/projects/", "/", 1).rstrip("/")


def client_key(row: asyncpg.Record, external_url: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "active": row["active"],
        "public_key": row["public_key"],
        "sentry_dsn": build_dsn(external_url, row["public_key"], row["project_id"]),
    }


def error(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "fingerprint": row["fingerprint"],
        "name": row["name"],
        "description": row["description"],
        "actor": row["actor"],
        "platform": row["platform"],
        "status": row["status"],
        "first_seen_at": _iso(row["first_seen_at"]),
        "last_seen_at": _iso(row["last_seen_at"]),
        "events_count": row["events_count"],
        "environments": list(row["environments"]),
        "first_release": row["first_release"],
        "last_release": row["last_release"],
        "level": row["level"],
    }


def error_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """:func:`app.db.tracked_errors.error_summary` with its times in ISO 8601."""
    return {
        **summary,
        "events_per_hour": [{"start": _iso(b["start"]), "count": b["count"]} for b in summary["events_per_hour"]],
        "events_per_day": [{"start": _iso(b["start"]), "count": b["count"]} for b in summary["events_per_day"]],
    }


def error_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """An event as :mod:`app.db.error_events` returns it; ids in Sentry's form (32 hex digits)."""
    return {
        "event_id": row["event_id"].hex,
        "error_id": row["error_id"],
        "occurred_at": _iso(row["occurred_at"]),
        "received_at": _iso(row["received_at"]),
        "environment": row["environment"],
        "release": row["release"],
        "level": row["level"],
        "payload": row["payload"],
    }
