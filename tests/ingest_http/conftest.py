"""Fixtures of the collector's end-to-end tests: a tracked project on the live server."""

from __future__ import annotations

import pytest

from tests.ingest_http.helpers import TrackedProject, tracked_project


@pytest.fixture
async def tracked(api, world) -> TrackedProject:
    """A project with integrated error tracking on ``server``: (project_id, public_key, dsn)."""
    return await tracked_project(api, world)
