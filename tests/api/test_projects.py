"""Projects in GitLab's shapes: created with the creator as Owner, listed, shown by id or path, deleted."""

from __future__ import annotations

import asyncio

import pytest

from app.db import error_tracking

from tests.api.helpers import FORBIDDEN, PROJECT_NOT_FOUND, members_of
from tests.conftest import ROOT_TOKEN


async def test_create_project_makes_the_creator_owner(api, world, pool) -> None:
    alice = await world.user("alice")
    token = await world.token(alice)
    reply = await api.post("/projects", token=token, json={"path_with_namespace": "alice/app"})
    assert reply.status == 201, reply.body
    body = reply.body
    assert (body["path"], body["name"], body["path_with_namespace"]) == ("app", "app", "alice/app")
    assert body["namespace"]["full_path"] == "alice"
    assert await members_of(pool, body["id"]) == {alice["id"]: 50}
    members = await api.get(f"/projects/{body['id']}/members", token=token)
    assert [(m["id"], m["access_level"]) for m in members.body] == [(alice["id"], 50)]


async def test_create_project_with_name_and_namespace(api) -> None:
    reply = await api.post("/projects", token=ROOT_TOKEN, data={"name": "web", "namespace": "acme"})
    assert (reply.status, reply.body["path_with_namespace"]) == (201, "acme/web")


async def test_create_project_in_personal_namespace(api, world) -> None:
    token = await world.token(await world.user("alice"))
    reply = await api.post("/projects", token=token, json={"path": "tool"})
    assert (reply.status, reply.body["path_with_namespace"]) == (201, "alice/tool")


@pytest.mark.parametrize("path", ["group/app", "GROUP/App"])
async def test_duplicate_project_is_400(api, world, pool, path) -> None:
    await world.project("group/app")
    reply = await api.post("/projects", token=ROOT_TOKEN, json={"path_with_namespace": path})
    assert reply.status == 400
    assert reply.body == {"message": {"path": ["has already been taken"]}}
    assert await pool.fetchval("select count(*) from projects") == 1


@pytest.mark.parametrize("path", ["app", "group//app", "group/a b", "group/-app", "group/app?x"])
async def test_invalid_project_path_is_400(api, pool, path) -> None:
    reply = await api.post("/projects", token=ROOT_TOKEN, json={"path_with_namespace": path})
    assert reply.status == 400, reply.body
    assert isinstance(reply.body, dict) and "message" in reply.body
    assert await pool.fetchval("select count(*) from projects") == 0


async def test_create_project_without_name_or_path_is_400(api) -> None:
    reply = await api.post("/projects", token=ROOT_TOKEN, json={"description": "x"})
    error = "name, path are missing, at least one parameter must be provided"
    assert (reply.status, reply.body) == (400, {"error": error})


async def test_list_projects_member_sees_own_admin_sees_all(api, world) -> None:
    alice = await world.user("alice")
    token = await world.token(alice)
    mine = await world.project("group/mine", alice)
    shared = await world.project("group/shared")
    await world.member(shared, alice, 10)
    await world.project("group/theirs", await world.user())

    reply = await api.get("/projects", token=token)
    assert reply.status == 200
    assert sorted(p["id"] for p in reply.body) == sorted([mine["id"], shared["id"]])
    assert reply.headers["X-Total"] == "2"

    reply = await api.get("/projects", token=ROOT_TOKEN)
    assert {p["path_with_namespace"] for p in reply.body} == {"group/mine", "group/shared", "group/theirs"}
    assert reply.headers["X-Total"] == "3"


async def test_show_project_by_id_and_encoded_path(api, world) -> None:
    alice = await world.user("alice")
    token = await world.token(alice, scopes=("read_api",))
    project = await world.project("group/sub/app", alice)
    for ref in (str(project["id"]), "group%2Fsub%2Fapp"):
        reply = await api.get(f"/projects/{ref}", token=token)
        assert reply.status == 200, ref
        assert (reply.body["id"], reply.body["path_with_namespace"]) == (project["id"], "group/sub/app")


@pytest.mark.parametrize("ref", ["{id}", "group%2Fapp"])
async def test_show_project_to_non_member_is_404(api, world, ref) -> None:
    project = await world.project("group/app", await world.user())
    token = await world.token(await world.user())
    reply = await api.get(f"/projects/{ref.format(id=project['id'])}", token=token)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)


@pytest.mark.parametrize("who", ["owner", "admin"])
async def test_delete_project_by_owner_or_admin(api, world, pool, who) -> None:
    owner = await world.user()
    project = await world.project(owner=owner)
    settings = f"/projects/{project['id']}/error_tracking/settings"
    await api.put(settings, token=ROOT_TOKEN, json={"active": True, "integrated": True})
    token = await world.token(owner) if who == "owner" else ROOT_TOKEN
    reply = await api.delete(f"/projects/{project['id']}", token=token)
    assert (reply.status, reply.body) == (202, {"message": "202 Accepted"})
    assert await pool.fetchval("select count(*) from projects where id = $1", project["id"]) == 0
    assert await pool.fetchval(
        "select count(*) from error_tracking_client_keys where project_id = $1", project["id"]
    ) == 0
    assert (await api.get(f"/projects/{project['id']}", token=ROOT_TOKEN)).status == 404

async def test_deleting_a_project_tells_the_collectors_to_drop_its_keys(api, world, pool) -> None:
    project = await world.project()
    notices: asyncio.Queue[str] = asyncio.Queue()

    def on_notify(conn, pid, channel: str, payload: str) -> None:
        notices.put_nowait(payload)

    async with pool.acquire() as conn:
        await conn.add_listener(error_tracking.KEYS_CHANNEL, on_notify)
        try:
            reply = await api.delete(f"/projects/{project['id']}", token=ROOT_TOKEN)
            assert reply.status == 202
            assert await asyncio.wait_for(notices.get(), 5) == f"project:{project['id']}"
        finally:
            await conn.remove_listener(error_tracking.KEYS_CHANNEL, on_notify)


@pytest.mark.parametrize("level", [10, 20, 30, 40])
async def test_delete_project_below_owner_is_403(api, world, pool, level) -> None:
    project = await world.project()
    token = await world.user_with_role(project, level)
    reply = await api.delete(f"/projects/{project['id']}", token=token)
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    assert await pool.fetchval("select count(*) from projects where id = $1", project["id"]) == 1


async def test_delete_project_by_non_member_is_404(api, world, pool) -> None:
    project = await world.project(owner=await world.user())
    token = await world.token(await world.user())
    reply = await api.delete("/projects/group%2Fapp", token=token)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)
    assert await pool.fetchval("select count(*) from projects where id = $1", project["id"]) == 1
