"""``GET/PUT/PATCH /projects/:id/error_tracking/settings``: GitLab's roles, bodies and parameter rules."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import orjson
import pytest

from tests.api.helpers import (
    BELOW_MAINTAINER,
    EXPIRED,
    FORBIDDEN,
    INSUFFICIENT_SCOPE,
    MAINTAINER_OR_ABOVE,
    PROJECT_NOT_FOUND,
    REVOKED,
    SETTING_NOT_FOUND,
    UNAUTHORIZED,
    days_from_today,
)
from tests.conftest import ROOT_TOKEN

SETTINGS = "/projects/{}/error_tracking/settings"
ENABLED = {"active": True, "integrated": True}
INTEGRATED_BODY = {
    "active": True, "project_name": None, "sentry_external_url": None, "api_url": None, "integrated": True,
}
METHODS = ["GET", "PUT", "PATCH"]


def settings_url(project) -> str:
    return SETTINGS.format(project["id"])


async def settings_rows(pool, project) -> int:
    return await pool.fetchval(
        "select count(*) from project_error_tracking_settings where project_id = $1", project["id"]
    )


async def key_count(pool, project) -> int:
    return await pool.fetchval("select count(*) from error_tracking_client_keys where project_id = $1", project["id"])


async def send(api, method: str, target, token: str | None):
    """GET plainly; PUT/PATCH with valid parameters, so only access decides the answer.
    ``target`` is a project row or a ready URL."""
    url = target if isinstance(target, str) else settings_url(target)
    return await api.request(method, url, token=token, json=None if method == "GET" else ENABLED)


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_no_token_is_401(api, world, method) -> None:
    project = await world.project()
    reply = await send(api, method, project, None)
    assert (reply.status, reply.body) == (401, UNAUTHORIZED)


@pytest.mark.parametrize("method", METHODS)
async def test_unknown_token_is_401(api, world, method) -> None:
    project = await world.project()
    reply = await send(api, method, project, "glpat-not-a-real-token-at-all")
    assert (reply.status, reply.body) == (401, UNAUTHORIZED)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("days", [0, -1, -30])
async def test_expired_token_is_401_with_gitlab_body(api, world, pool, method, days) -> None:
    owner = await world.user()
    project = await world.project(owner=owner)
    token = await world.token(owner, expires_at=days_from_today(days))
    reply = await send(api, method, project, token)
    assert (reply.status, reply.body) == (401, EXPIRED)
    assert await settings_rows(pool, project) == 0


async def test_token_expiring_tomorrow_still_works(api, world) -> None:
    owner = await world.user()
    project = await world.project(owner=owner)
    token = await world.token(owner, expires_at=days_from_today(1))
    reply = await api.put(settings_url(project), token=token, json=ENABLED)
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("method", METHODS)
async def test_revoked_token_is_401_with_gitlab_body(api, world, pool, method) -> None:
    owner = await world.user()
    project = await world.project(owner=owner)
    token = await world.token(owner, revoked=True)
    reply = await send(api, method, project, token)
    assert (reply.status, reply.body) == (401, REVOKED)
    assert await settings_rows(pool, project) == 0


async def test_blocked_user_is_403(api, world, pool) -> None:
    owner = await world.user()
    project = await world.project(owner=owner)
    token = await world.token(owner)
    await pool.execute("update users set state = 'blocked' where id = $1", owner["id"])
    reply = await api.get(settings_url(project), token=token)
    assert (reply.status, reply.body) == (403, {"message": "403 Forbidden - Your account has been blocked."})


# --- project lookup and roles ----------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("project_id", ["999999", "group%2Fmissing", "99999999999999999999999"])
async def test_missing_project_is_404(api, method, project_id) -> None:
    reply = await send(api, method, SETTINGS.format(project_id), ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("by_path", [False, True])
async def test_non_member_gets_404_not_403(api, world, pool, method, by_path) -> None:
    project = await world.project("group/app", await world.user())
    outsider = await world.token(await world.user())
    url = SETTINGS.format("group%2Fapp" if by_path else project["id"])
    reply = await send(api, method, url, outsider)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)
    assert await settings_rows(pool, project) == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("level", BELOW_MAINTAINER)
async def test_below_maintainer_is_403(api, world, pool, method, level) -> None:
    project = await world.project()
    await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": False, "integrated": True})
    token = await world.user_with_role(project, level)
    reply = await send(api, method, project, token)
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    row = await pool.fetchrow(
        "select enabled from project_error_tracking_settings where project_id = $1", project["id"]
    )
    assert row["enabled"] is False
    assert await key_count(pool, project) == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("level", MAINTAINER_OR_ABOVE)
async def test_maintainer_and_owner_are_allowed(api, world, method, level) -> None:
    project = await world.project()
    await api.put(settings_url(project), token=ROOT_TOKEN, json=ENABLED)
    token = await world.user_with_role(project, level)
    reply = await send(api, method, project, token)
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)


@pytest.mark.parametrize("method", METHODS)
async def test_admin_who_is_not_a_member_is_allowed(api, world, pool, method) -> None:
    project = await world.project(owner=await world.user())
    admin = await world.user(admin=True)
    assert await pool.fetchval("select count(*) from members where user_id = $1", admin["id"]) == 0
    token = await world.token(admin)
    if method != "PUT":
        await api.put(settings_url(project), token=ROOT_TOKEN, json=ENABLED)
    reply = await send(api, method, project, token)
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)


async def test_read_api_token_may_read_but_not_write(api, world, pool) -> None:
    project = await world.project()
    await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": False, "integrated": True})
    maintainer = await world.user()
    await world.member(project, maintainer, 40)
    token = await world.token(maintainer, scopes=("read_api",))

    reply = await api.get(settings_url(project), token=token)
    assert reply.status == 200 and reply.body["active"] is False

    for method in ("PUT", "PATCH"):
        reply = await api.request(method, settings_url(project), token=token, json=ENABLED)
        assert (reply.status, reply.body) == (403, INSUFFICIENT_SCOPE), method
    assert await pool.fetchval(
        "select enabled from project_error_tracking_settings where project_id = $1", project["id"]
    ) is False


@pytest.mark.parametrize("path_id", ["group%2Fapp", "group%2Fsub%2Fapp", "GROUP%2FSUB%2FAPP"])
async def test_path_ids(api, world, path_id) -> None:
    path = "group/sub/app" if "SUB" in path_id.upper() else "group/app"
    owner = await world.user()
    token = await world.token(owner)
    await world.project(path, owner)
    url = SETTINGS.format(path_id)
    assert (await api.get(url, token=token)).body == SETTING_NOT_FOUND
    reply = await api.put(url, token=token, json=ENABLED)
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)
    reply = await api.patch(url, token=token, json={"active": False})
    assert (reply.status, reply.body["active"]) == (200, False)
    assert (await api.get(url, token=token)).body["active"] is False


# --- GET / PATCH / PUT semantics -------------------------------------------------------------


async def test_get_without_settings_is_404(api, world) -> None:
    project = await world.project()
    reply = await api.get(settings_url(project), token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, SETTING_NOT_FOUND)


@pytest.mark.parametrize("body", [{"active": True}, {"active": True, "integrated": True}, {"active": False}])
async def test_patch_never_creates(api, world, pool, body) -> None:
    project = await world.project()
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, json=body)
    assert (reply.status, reply.body) == (404, SETTING_NOT_FOUND)
    assert await settings_rows(pool, project) == 0
    assert await key_count(pool, project) == 0


async def test_put_creates_then_updates(api, world, pool) -> None:
    project = await world.project()
    reply = await api.put(settings_url(project), token=ROOT_TOKEN, params={"active": "true", "integrated": "true"})
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)
    assert list(reply.body) == ["active", "project_name", "sentry_external_url", "api_url", "integrated"]
    assert await settings_rows(pool, project) == 1

    reply = await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": False, "integrated": False})
    assert (reply.status, reply.body) == (
        200,
        {"active": False, "project_name": None, "sentry_external_url": None, "api_url": None, "integrated": False},
    )
    assert await settings_rows(pool, project) == 1
    row = await pool.fetchrow(
        "select enabled, integrated from project_error_tracking_settings where project_id = $1", project["id"]
    )
    assert (row["enabled"], row["integrated"]) == (False, False)
    assert (await api.get(settings_url(project), token=ROOT_TOKEN)).body["integrated"] is False


async def test_settings_are_per_project(api, world, pool) -> None:
    first = await world.project("group/one")
    second = await world.project("group/two")
    await api.put(settings_url(first), token=ROOT_TOKEN, json=ENABLED)
    assert (await api.get(settings_url(second), token=ROOT_TOKEN)).body == SETTING_NOT_FOUND
    assert await settings_rows(pool, second) == 0


async def test_patch_with_only_active_keeps_integrated(api, world) -> None:
    project = await world.project()
    await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": True, "integrated": False})
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, json={"active": False})
    assert reply.status == 200
    assert (reply.body["active"], reply.body["integrated"]) == (False, False)

    await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": False, "integrated": True})
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, params={"active": "true"})
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)


async def test_patch_can_change_integrated(api, world) -> None:
    project = await world.project()
    await api.put(settings_url(project), token=ROOT_TOKEN, json=ENABLED)
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, json={"active": True, "integrated": False})
    assert (reply.status, reply.body["integrated"]) == (200, False)
    assert (await api.get(settings_url(project), token=ROOT_TOKEN)).body["integrated"] is False


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({}, "active is missing, integrated is missing"),
        ({"json": {}}, "active is missing, integrated is missing"),
        ({"json": {"active": True}}, "integrated is missing"),
        ({"json": {"integrated": True}}, "active is missing"),
        ({"params": {"active": "maybe", "integrated": "true"}}, "active is invalid"),
        ({"params": {"active": "", "integrated": "true"}}, "active is empty"),
        ({"params": {"active": "true", "integrated": "maybe"}}, "integrated is invalid"),
        ({"params": {"active": "true", "integrated": ""}}, "integrated is empty"),
        ({"json": {"active": "maybe", "integrated": True}}, "active is invalid"),
        ({"json": {"active": True, "integrated": ""}}, "integrated is empty"),
        ({"data": {"active": "maybe", "integrated": "1"}}, "active is invalid"),
        ({"data": {"active": "1", "integrated": ""}}, "integrated is empty"),
        ({"params": {"active": "maybe"}}, "active is invalid, integrated is missing"),
    ],
)
async def test_put_parameter_errors(api, world, pool, kwargs, error) -> None:
    project = await world.project()
    reply = await api.put(settings_url(project), token=ROOT_TOKEN, **kwargs)
    assert (reply.status, reply.body) == (400, {"error": error})
    assert await settings_rows(pool, project) == 0


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({}, "active is missing"),
        ({"json": {"integrated": True}}, "active is missing"),
        ({"params": {"active": "maybe"}}, "active is invalid"),
        ({"params": {"active": ""}}, "active is empty"),
        ({"params": {"active": "true", "integrated": "maybe"}}, "integrated is invalid"),
        ({"params": {"active": "true", "integrated": ""}}, "integrated is empty"),
    ],
)
async def test_patch_parameter_errors(api, world, pool, kwargs, error) -> None:
    project = await world.project()
    await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": False, "integrated": False})
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, **kwargs)
    assert (reply.status, reply.body) == (400, {"error": error})
    row = await pool.fetchrow(
        "select enabled, integrated from project_error_tracking_settings where project_id = $1", project["id"]
    )
    assert (row["enabled"], row["integrated"]) == (False, False)


BOOLEAN_SPELLINGS = [("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True), ("False", False)]


@pytest.mark.parametrize("carrier", ["params", "data", "json"])
@pytest.mark.parametrize("text, expected", BOOLEAN_SPELLINGS)
async def test_boolean_spellings_from_every_carrier(api, world, pool, carrier, text, expected) -> None:
    project = await world.project()
    values = {"active": text, "integrated": text}
    reply = await api.put(settings_url(project), token=ROOT_TOKEN, **{carrier: values})
    assert reply.status == 200, reply.body
    assert (reply.body["active"], reply.body["integrated"]) == (expected, expected)
    row = await pool.fetchrow(
        "select enabled, integrated from project_error_tracking_settings where project_id = $1", project["id"]
    )
    assert (row["enabled"], row["integrated"]) == (expected, expected)


@pytest.mark.parametrize("active, integrated", [(True, False), (False, True), (True, True), (False, False)])
async def test_json_booleans(api, world, active, integrated) -> None:
    project = await world.project()
    reply = await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": active, "integrated": integrated})
    assert reply.status == 200
    assert (reply.body["active"], reply.body["integrated"]) == (active, integrated)
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, json={"active": not active})
    assert (reply.body["active"], reply.body["integrated"]) == (not active, integrated)


async def test_query_string_and_body_merge(api, world) -> None:
    project = await world.project()
    reply = await api.put(
        settings_url(project), token=ROOT_TOKEN, params={"active": "true"}, json={"integrated": False}
    )
    assert reply.status == 200, reply.body
    assert (reply.body["active"], reply.body["integrated"]) == (True, False)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("body", [b'{"active": tru', b"[true, true]", b'"active"', b"\xff\xfe"])
async def test_malformed_json_body_is_400_json(api, world, pool, method, body) -> None:
    project = await world.project()
    await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": False, "integrated": False})
    reply = await api.request(
        method, settings_url(project), token=ROOT_TOKEN, data=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("application/json")
    assert isinstance(reply.body, dict) and reply.body, reply.body
    assert await pool.fetchval(
        "select enabled from project_error_tracking_settings where project_id = $1", project["id"]
    ) is False


async def test_body_sent_in_chunks_is_read_whole(api, world) -> None:
    """Parameters come from the whole body, however the client splits it."""
    project = await world.project()
    body = orjson.dumps({"padding": "x" * 200_000, "active": True, "integrated": True})

    async def chunks():
        for start in range(0, len(body), 50_000):
            yield body[start : start + 50_000]
            await asyncio.sleep(0.01)

    reply = await api.put(
        settings_url(project), token=ROOT_TOKEN, data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)


async def test_body_over_one_mebibyte_is_413_json(api, world) -> None:
    project = await world.project()
    body = orjson.dumps({"padding": "x" * (1024 * 1024 + 10), "active": True, "integrated": True})
    reply = await api.put(
        settings_url(project), token=ROOT_TOKEN, data=io.BytesIO(body), headers={"Content-Type": "application/json"}
    )
    assert reply.status == 413
    assert reply.body == {"message": "413 Request Entity Too Large"}


# --- the client key that integrated tracking needs -------------------------------------------


async def test_enabling_integrated_tracking_creates_exactly_one_key(api, world, pool) -> None:
    project = await world.project()
    for _ in range(2):
        reply = await api.put(settings_url(project), token=ROOT_TOKEN, json=ENABLED)
        assert reply.status == 200
        assert await key_count(pool, project) == 1
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, json={"active": True})
    assert reply.status == 200
    assert await key_count(pool, project) == 1

    keys = await api.get(f"/projects/{project['id']}/error_tracking/client_keys", token=ROOT_TOKEN)
    assert len(keys.body) == 1 and keys.body[0]["active"] is True


async def test_concurrent_puts_create_one_key(api, world, pool) -> None:
    project = await world.project()
    replies = await asyncio.gather(*(api.put(settings_url(project), token=ROOT_TOKEN, json=ENABLED) for _ in range(6)))
    assert [r.status for r in replies] == [200] * 6
    assert await settings_rows(pool, project) == 1
    assert await key_count(pool, project) == 1


async def test_existing_active_key_is_reused(api, world, pool) -> None:
    project = await world.project()
    created = await api.post(f"/projects/{project['id']}/error_tracking/client_keys", token=ROOT_TOKEN)
    assert created.status == 201
    await api.put(settings_url(project), token=ROOT_TOKEN, json=ENABLED)
    assert await pool.fetchval(
        "select array_agg(id) from error_tracking_client_keys where project_id = $1", project["id"]
    ) == [created.body["id"]]


async def test_inactive_key_does_not_count(api, world, pool) -> None:
    project = await world.project()
    await pool.execute(
        """insert into error_tracking_client_keys (project_id, public_key, active)
           values ($1, 'glet_' || md5('x'), false)""",
        project["id"],
    )
    await api.put(settings_url(project), token=ROOT_TOKEN, json=ENABLED)
    assert await pool.fetchval(
        "select count(*) from error_tracking_client_keys where project_id = $1 and active", project["id"]
    ) == 1


@pytest.mark.parametrize(
    "put_body, patch_body",
    [
        ({"active": False, "integrated": True}, {"active": True, "integrated": False}),
        ({"active": False, "integrated": False}, {"active": True}),
        ({"active": True, "integrated": False}, {"active": True, "integrated": False}),
        ({"active": False, "integrated": True}, {"active": False, "integrated": True}),
    ],
)
async def test_no_key_unless_active_and_integrated(api, world, pool, put_body, patch_body) -> None:
    project = await world.project()
    assert (await api.put(settings_url(project), token=ROOT_TOKEN, json=put_body)).status == 200
    assert (await api.patch(settings_url(project), token=ROOT_TOKEN, json=patch_body)).status == 200
    assert await key_count(pool, project) == 0


async def test_patch_enabling_integrated_tracking_creates_a_key(api, world, pool) -> None:
    project = await world.project()
    await api.put(settings_url(project), token=ROOT_TOKEN, json={"active": False, "integrated": True})
    assert await key_count(pool, project) == 0
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, data={"active": "1"})
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)
    assert await key_count(pool, project) == 1



# --- settings of a project that uses an external Sentry --------------------------------------


async def test_sentry_backed_settings_use_gitlabs_example_shape(api, world, pool) -> None:
    project = await world.project()
    await pool.execute(
        """insert into project_error_tracking_settings (project_id, enabled, integrated, api_url, project_name)
           values ($1, true, false, $2, 'sample sentry project')""",
        project["id"],
        "https://sentry.io/api/0/projects/myawesomeproject/project",
    )
    reply = await api.get(settings_url(project), token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (
        200,
        {
            "active": True,
            "project_name": "sample sentry project",
            "sentry_external_url": "https://sentry.io/myawesomeproject/project",
            "api_url": "https://sentry.io/api/0/projects/myawesomeproject/project",
            "integrated": False,
        },
    )
    # Switching to integrated tracking hides the Sentry fields, as GitLab does.
    reply = await api.patch(settings_url(project), token=ROOT_TOKEN, json={"active": True, "integrated": True})
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)


# --- regressions found while writing these tests ---


async def test_multipart_form_body(api, world) -> None:
    project = await world.project()
    form = aiohttp.FormData({"active": "true", "integrated": "true"}, default_to_multipart=True)
    reply = await api.put(settings_url(project), token=ROOT_TOKEN, data=form)
    assert (reply.status, reply.body) == (200, INTEGRATED_BODY)


async def test_nul_byte_in_path_id_is_404(api) -> None:
    reply = await api.get(SETTINGS.format("group%00app"), token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)
