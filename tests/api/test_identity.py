"""Identity in GitLab's shapes: the current user, users, projects, members and personal access tokens."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
import pytest

from app.auth import token_digest
from app.db import error_tracking, users
from tests.api.helpers import (
    FORBIDDEN,
    INSUFFICIENT_SCOPE,
    PROJECT_NOT_FOUND,
    REVOKED,
    UNAUTHORIZED,
    days_from_today,
    parse_link_header,
)
from tests.conftest import ROOT_TOKEN, Api

# --- GET /user -------------------------------------------------------------------------------


async def test_current_user(api, world) -> None:
    alice = await world.user("alice")
    token = await world.token(alice, scopes=("read_api",))
    reply = await api.get("/user", token=token)
    assert reply.status == 200
    assert reply.body["id"] == alice["id"]
    assert (reply.body["username"], reply.body["name"], reply.body["is_admin"]) == ("alice", "Alice", False)
    assert reply.body["state"] == "active"
    assert reply.body["web_url"] == "http://errgate.test:8080/alice"


@pytest.mark.parametrize("token", [None, "glpat-nobody-has-this-token-x"])
async def test_current_user_needs_a_valid_token(api, token) -> None:
    reply = await api.get("/user", token=token)
    assert (reply.status, reply.body) == (401, UNAUTHORIZED)


async def test_root_token_setting_creates_an_admin_root(start_server, world, pool) -> None:
    await pool.execute("delete from users")
    server = await start_server()
    async with aiohttp.ClientSession() as session:
        reply = await Api(session, server.url).get("/user", token=ROOT_TOKEN)
    assert (reply.status, reply.body["username"], reply.body["is_admin"]) == (200, "root", True)
    assert await token_id_of(pool, ROOT_TOKEN) is not None  # looked up by the token's SHA-256 digest


async def test_root_token_setting_promotes_an_existing_root_and_restores_its_token(start_server, world, pool) -> None:
    await pool.execute("delete from users")
    root = await world.user("root")
    revoked = await users.create_token(pool, root["id"], "old", token_digest(ROOT_TOKEN), ["api"], None)
    await users.revoke_token(pool, revoked["id"])
    await start_server()
    assert await pool.fetchval("select is_admin from users where id = $1", root["id"]) is True
    row = await pool.fetchrow(
        "select user_id, revoked from personal_access_tokens where id = $1", await token_id_of(pool, ROOT_TOKEN)
    )
    assert (row["user_id"], row["revoked"]) == (root["id"], False)


async def test_without_root_token_setting_there_is_no_root(start_server, pool) -> None:
    await pool.execute("delete from users")
    server = await start_server(root_token=None)
    async with aiohttp.ClientSession() as session:
        reply = await Api(session, server.url).get("/user", token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (401, UNAUTHORIZED)
    assert await pool.fetchval("select count(*) from users") == 0


# --- how a token is carried ------------------------------------------------------------------


@pytest.mark.parametrize(
    "carry",
    [
        lambda t: {"headers": {"PRIVATE-TOKEN": t}},
        lambda t: {"headers": {"Authorization": f"Bearer {t}"}},
        lambda t: {"headers": {"Authorization": f"bearer {t}"}},
        lambda t: {"params": {"private_token": t}},
    ],
    ids=["private-token-header", "bearer", "bearer-lowercase", "private_token-query"],
)
async def test_token_carriers(api, world, carry) -> None:
    alice = await world.user("alice")
    token = await world.token(alice)
    reply = await api.get("/user", **carry(token))
    assert (reply.status, reply.body["username"]) == (200, "alice")
    bad = await api.get("/user", **carry(token + "x"))
    assert (bad.status, bad.body) == (401, UNAUTHORIZED)


async def test_basic_authorization_is_not_a_token(api, world) -> None:
    token = await world.token(await world.user())
    reply = await api.get("/user", headers={"Authorization": f"Basic {token}"})
    assert (reply.status, reply.body) == (401, UNAUTHORIZED)


# --- users -----------------------------------------------------------------------------------


async def test_admin_creates_a_user(api, pool) -> None:
    reply = await api.post(
        "/users", token=ROOT_TOKEN, json={"username": "bob", "name": "Bob B", "email": "bob@example.com"}
    )
    assert reply.status == 201, reply.body
    assert (reply.body["username"], reply.body["name"], reply.body["email"]) == ("bob", "Bob B", "bob@example.com")
    assert reply.body["is_admin"] is False
    row = await pool.fetchrow("select id, is_admin from users where username = 'bob'")
    assert (row["id"], row["is_admin"]) == (reply.body["id"], False)


async def test_admin_creates_an_admin_from_a_form(api) -> None:
    reply = await api.post("/users", token=ROOT_TOKEN, data={"username": "ops", "name": "Ops", "admin": "true"})
    assert (reply.status, reply.body["is_admin"]) == (201, True)


async def test_non_admin_cannot_create_users(api, world, pool) -> None:
    token = await world.token(await world.user())
    reply = await api.post("/users", token=token, json={"username": "bob", "name": "Bob"})
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    assert await pool.fetchval("select count(*) from users where username = 'bob'") == 0


async def test_read_api_admin_cannot_create_users(api, world) -> None:
    token = await world.token(await world.user(admin=True), scopes=("read_api",))
    reply = await api.post("/users", token=token, json={"username": "bob", "name": "Bob"})
    assert (reply.status, reply.body) == (403, INSUFFICIENT_SCOPE)


@pytest.mark.parametrize("username", ["bob", "BOB"])
async def test_duplicate_username_is_409(api, world, username) -> None:
    await world.user("bob")
    reply = await api.post("/users", token=ROOT_TOKEN, json={"username": username, "name": "Other"})
    assert (reply.status, reply.body) == (409, {"message": "Username has already been taken"})


async def test_duplicate_email_is_409(api) -> None:
    await api.post("/users", token=ROOT_TOKEN, json={"username": "a", "name": "A", "email": "same@example.com"})
    reply = await api.post("/users", token=ROOT_TOKEN, json={"username": "b", "name": "B", "email": "SAME@example.com"})
    assert (reply.status, reply.body) == (409, {"message": "Email has already been taken"})


@pytest.mark.parametrize(
    "body, error",
    [
        ({"username": "bob"}, "name is missing"),
        ({"name": "Bob"}, "username is missing"),
        ({}, "username is missing, name is missing"),
        ({"username": "bob", "name": ""}, "name is empty"),
    ],
)
async def test_create_user_parameter_errors(api, body, error) -> None:
    reply = await api.post("/users", token=ROOT_TOKEN, json=body)
    assert (reply.status, reply.body) == (400, {"error": error})


@pytest.mark.parametrize("username", ["has space", "-dash", "x.git", "a/b"])
async def test_invalid_username_is_400(api, pool, username) -> None:
    reply = await api.post("/users", token=ROOT_TOKEN, json={"username": username, "name": "X"})
    assert reply.status == 400
    assert reply.body == {"message": {"username": ["is invalid"]}}
    assert await pool.fetchval("select count(*) from users where username = $1", username) == 0


async def test_list_users_with_username_filter(api, world) -> None:
    alice = await world.user("alice")
    await world.user("bob")
    reply = await api.get("/users", token=ROOT_TOKEN, params={"username": "ALICE"})
    assert reply.status == 200
    assert [u["id"] for u in reply.body] == [alice["id"]]
    assert reply.headers["X-Total"] == "1"
    reply = await api.get("/users", token=ROOT_TOKEN, params={"username": "nobody"})
    assert (reply.status, reply.body, reply.headers["X-Total"]) == (200, [], "0")


async def test_list_users_hides_private_fields_from_non_admins(api, world) -> None:
    alice = await world.user("alice")
    token = await world.token(alice)
    reply = await api.get("/users", token=token)
    by_name = {u["username"]: u for u in reply.body}
    assert by_name["alice"]["is_admin"] is False
    assert "is_admin" not in by_name["root"] and "email" not in by_name["root"]


async def test_list_users_paginates(api, world) -> None:
    for i in range(4):
        await world.user(f"user{i}")
    # root plus four users, ordered by id
    reply = await api.get("/users", token=ROOT_TOKEN, params={"per_page": "2", "page": "2"})
    assert [u["username"] for u in reply.body] == ["user1", "user2"]
    names = ("X-Total", "X-Total-Pages", "X-Per-Page", "X-Page", "X-Next-Page", "X-Prev-Page")
    assert {k: reply.headers[k] for k in names} == {
        "X-Total": "5", "X-Total-Pages": "3", "X-Per-Page": "2", "X-Page": "2", "X-Next-Page": "3", "X-Prev-Page": "1",
    }
    assert set(parse_link_header(reply.headers["Link"])) == {"prev", "next", "first", "last"}


async def test_list_users_needs_a_token(api) -> None:
    reply = await api.get("/users")
    assert (reply.status, reply.body) == (401, UNAUTHORIZED)


# --- projects --------------------------------------------------------------------------------


async def members_of(pool, project_id: int) -> dict[int, int]:
    rows = await pool.fetch("select user_id, access_level from members where project_id = $1", project_id)
    return {r["user_id"]: r["access_level"] for r in rows}


async def test_create_project_makes_the_creator_owner(api, world, pool) -> None:
    alice = await world.user("alice")
    token = await world.token(alice)
    reply = await api.post("/projects", token=token, json={"path_with_namespace": "group/sub/app"})
    assert reply.status == 201, reply.body
    body = reply.body
    assert (body["path"], body["name"], body["path_with_namespace"]) == ("app", "app", "group/sub/app")
    assert body["namespace"]["full_path"] == "group/sub"
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


# --- members ---------------------------------------------------------------------------------


def members_url(project) -> str:
    return f"/projects/{project['id']}/members"


@pytest.mark.parametrize("level", [10, 20, 30, 40, 50])
async def test_any_member_lists_members(api, world, level) -> None:
    owner = await world.user("owner")
    project = await world.project(owner=owner)
    token = await world.user_with_role(project, level)
    reply = await api.get(members_url(project), token=token)
    assert reply.status == 200
    levels = [m["access_level"] for m in reply.body]
    assert reply.body[0]["username"] == "owner" and levels == [50, level]
    assert reply.headers["X-Total"] == "2"


async def test_non_member_cannot_list_members(api, world) -> None:
    project = await world.project()
    token = await world.token(await world.user())
    reply = await api.get(members_url(project), token=token)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)


async def test_maintainer_adds_a_member(api, world, pool) -> None:
    project = await world.project()
    token = await world.user_with_role(project, 40)
    bob = await world.user("bob")
    reply = await api.post(members_url(project), token=token, json={"user_id": bob["id"], "access_level": 30})
    assert reply.status == 201, reply.body
    assert (reply.body["id"], reply.body["username"], reply.body["access_level"]) == (bob["id"], "bob", 30)
    assert (await members_of(pool, project["id"]))[bob["id"]] == 30
    # the new member can now see the project
    bob_token = await world.token(bob)
    assert (await api.get(f"/projects/{project['id']}", token=bob_token)).status == 200


async def test_add_member_from_form_body(api, world, pool) -> None:
    project = await world.project()
    bob = await world.user("bob")
    form = {"user_id": str(bob["id"]), "access_level": "20"}
    reply = await api.post(members_url(project), token=ROOT_TOKEN, data=form)
    assert (reply.status, reply.body["access_level"]) == (201, 20)


async def test_developer_cannot_add_members(api, world, pool) -> None:
    project = await world.project()
    token = await world.user_with_role(project, 30)
    bob = await world.user("bob")
    reply = await api.post(members_url(project), token=token, json={"user_id": bob["id"], "access_level": 10})
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    assert bob["id"] not in await members_of(pool, project["id"])


async def test_duplicate_member_is_409(api, world) -> None:
    project = await world.project()
    bob = await world.user("bob")
    await world.member(project, bob, 30)
    reply = await api.post(members_url(project), token=ROOT_TOKEN, json={"user_id": bob["id"], "access_level": 40})
    assert (reply.status, reply.body) == (409, {"message": "Member already exists"})


async def test_unknown_user_is_404(api, world) -> None:
    project = await world.project()
    reply = await api.post(members_url(project), token=ROOT_TOKEN, json={"user_id": 987654, "access_level": 30})
    assert (reply.status, reply.body) == (404, {"message": "404 User Not Found"})


@pytest.mark.parametrize(
    "body, error",
    [
        ({"user_id": "{bob}", "access_level": 45}, "access_level does not have a valid value"),
        ({"user_id": "{bob}", "access_level": 0}, "access_level does not have a valid value"),
        ({"user_id": "{bob}", "access_level": "maintainer"}, "access_level is invalid"),
        ({"user_id": "{bob}"}, "access_level is missing"),
        ({"access_level": 30}, "user_id is missing"),
    ],
)
async def test_add_member_parameter_errors(api, world, pool, body, error) -> None:
    project = await world.project()
    bob = await world.user("bob")
    body = {k: (bob["id"] if v == "{bob}" else v) for k, v in body.items()}
    reply = await api.post(members_url(project), token=ROOT_TOKEN, json=body)
    assert (reply.status, reply.body) == (400, {"error": error})
    assert bob["id"] not in await members_of(pool, project["id"])


async def test_only_an_owner_grants_owner(api, world, pool) -> None:
    project = await world.project()
    maintainer = await world.user_with_role(project, 40)
    owner = await world.user_with_role(project, 50)
    bob = await world.user("bob")
    reply = await api.post(members_url(project), token=maintainer, json={"user_id": bob["id"], "access_level": 50})
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    assert bob["id"] not in await members_of(pool, project["id"])
    reply = await api.post(members_url(project), token=owner, json={"user_id": bob["id"], "access_level": 50})
    assert (reply.status, reply.body["access_level"]) == (201, 50)


async def test_update_member_level(api, world, pool) -> None:
    project = await world.project()
    token = await world.user_with_role(project, 40)
    bob = await world.user("bob")
    await world.member(project, bob, 10)
    reply = await api.put(f"{members_url(project)}/{bob['id']}", token=token, json={"access_level": 30})
    assert (reply.status, reply.body["id"], reply.body["access_level"]) == (200, bob["id"], 30)
    assert (await members_of(pool, project["id"]))[bob["id"]] == 30


async def test_maintainer_cannot_promote_to_or_demote_an_owner(api, world, pool) -> None:
    project = await world.project()
    token = await world.user_with_role(project, 40)
    bob = await world.user("bob")
    carol = await world.user("carol")
    await world.member(project, bob, 30)
    await world.member(project, carol, 50)
    promote = await api.put(f"{members_url(project)}/{bob['id']}", token=token, json={"access_level": 50})
    demote = await api.put(f"{members_url(project)}/{carol['id']}", token=token, json={"access_level": 10})
    remove = await api.delete(f"{members_url(project)}/{carol['id']}", token=token)
    assert [r.status for r in (promote, demote, remove)] == [403, 403, 403]
    levels = await members_of(pool, project["id"])
    assert (levels[bob["id"]], levels[carol["id"]]) == (30, 50)


@pytest.mark.parametrize("user_id", ["{stranger}", "987654", "abc"])
async def test_update_non_member_is_404(api, world, user_id) -> None:
    project = await world.project()
    stranger = await world.user()
    url = f"{members_url(project)}/{user_id.format(stranger=stranger['id'])}"
    reply = await api.put(url, token=ROOT_TOKEN, json={"access_level": 30})
    assert (reply.status, reply.body) == (404, {"message": "404 Member Not Found"})


async def test_update_member_with_invalid_level_is_400(api, world) -> None:
    project = await world.project()
    bob = await world.user("bob")
    await world.member(project, bob, 10)
    reply = await api.put(f"{members_url(project)}/{bob['id']}", token=ROOT_TOKEN, json={"access_level": 45})
    assert (reply.status, reply.body) == (400, {"error": "access_level does not have a valid value"})


async def test_remove_member(api, world, pool) -> None:
    project = await world.project()
    token = await world.user_with_role(project, 40)
    bob = await world.user("bob")
    await world.member(project, bob, 30)
    url = f"{members_url(project)}/{bob['id']}"
    reply = await api.delete(url, token=token)
    assert (reply.status, reply.body) == (204, None)
    assert bob["id"] not in await members_of(pool, project["id"])
    again = await api.delete(url, token=token)
    assert (again.status, again.body) == (404, {"message": "404 Member Not Found"})
    bob_token = await world.token(bob)
    assert (await api.get(f"/projects/{project['id']}", token=bob_token)).status == 404


async def test_developer_cannot_remove_members(api, world, pool) -> None:
    project = await world.project()
    token = await world.user_with_role(project, 30)
    bob = await world.user("bob")
    await world.member(project, bob, 10)
    reply = await api.delete(f"{members_url(project)}/{bob['id']}", token=token)
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    assert bob["id"] in await members_of(pool, project["id"])


# --- personal access tokens ------------------------------------------------------------------


def tokens_url(user) -> str:
    return f"/users/{user['id']}/personal_access_tokens"


async def test_admin_creates_a_token_shown_once(api, world, pool) -> None:
    alice = await world.user("alice")
    expires = days_from_today(30)
    reply = await api.post(
        tokens_url(alice),
        token=ROOT_TOKEN,
        json={"name": "ci", "scopes": ["read_api"], "expires_at": expires.isoformat()},
    )
    assert reply.status == 201, reply.body
    body = reply.body
    token = body["token"]
    assert token.startswith("glpat-") and len(token) >= 26
    assert (body["name"], body["scopes"], body["expires_at"]) == ("ci", ["read_api"], expires.isoformat())
    assert body["user_id"] == alice["id"]
    assert (body["revoked"], body["active"]) == (False, True)

    me = await api.get("/user", token=token)
    assert (me.status, me.body["username"]) == (200, "alice")

    row = await pool.fetchrow("select * from personal_access_tokens where id = $1", body["id"])
    assert row["token_digest"] == hashlib.sha256(token.encode()).digest() and len(row["token_digest"]) == 32
    for column, value in row.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        assert token not in text and token.removeprefix("glpat-") not in text, column


async def test_token_scopes_from_a_form_body(api, world) -> None:
    alice = await world.user("alice")
    form = [("name", "ci"), ("scopes[]", "api"), ("scopes[]", "read_api")]
    reply = await api.post(tokens_url(alice), token=ROOT_TOKEN, data=form)
    assert (reply.status, sorted(reply.body["scopes"])) == (201, ["api", "read_api"])


async def test_listed_tokens_differ(api, world) -> None:
    alice = await world.user("alice")
    body = {"name": "t", "scopes": ["api"]}
    made = [await api.post(tokens_url(alice), token=ROOT_TOKEN, json=body) for _ in range(3)]
    assert len({r.body["token"] for r in made}) == 3


async def test_non_admin_cannot_create_tokens_even_for_themselves(api, world, pool) -> None:
    alice = await world.user("alice")
    token = await world.token(alice)
    reply = await api.post(tokens_url(alice), token=token, json={"name": "mine", "scopes": ["api"]})
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    assert await pool.fetchval("select count(*) from personal_access_tokens where user_id = $1", alice["id"]) == 1


@pytest.mark.parametrize(
    "body, error",
    [
        ({"name": "t", "scopes": ["sudo"]}, "scopes does not have a valid value"),
        ({"name": "t", "scopes": ["api", "write_repository"]}, "scopes does not have a valid value"),
        ({"name": "t"}, "scopes is missing"),
        ({"scopes": ["api"]}, "name is missing"),
        ({"name": "t", "scopes": ["api"], "expires_at": "soon"}, "expires_at is invalid"),
    ],
)
async def test_create_token_parameter_errors(api, world, pool, body, error) -> None:
    alice = await world.user("alice")
    reply = await api.post(tokens_url(alice), token=ROOT_TOKEN, json=body)
    assert (reply.status, reply.body) == (400, {"error": error})
    assert await pool.fetchval("select count(*) from personal_access_tokens where user_id = $1", alice["id"]) == 0


async def test_token_expiring_in_the_past_is_400(api, world) -> None:
    alice = await world.user("alice")
    body = {"name": "t", "scopes": ["api"], "expires_at": days_from_today(-1).isoformat()}
    reply = await api.post(tokens_url(alice), token=ROOT_TOKEN, json=body)
    assert reply.status == 400 and "expires_at" in reply.body["message"]


@pytest.mark.parametrize("user_id", ["987654", "abc"])
async def test_token_for_unknown_user_is_404(api, user_id) -> None:
    url = f"/users/{user_id}/personal_access_tokens"
    reply = await api.post(url, token=ROOT_TOKEN, json={"name": "t", "scopes": ["api"]})
    assert (reply.status, reply.body) == (404, {"message": "404 User Not Found"})


async def token_id_of(pool, token: str) -> int:
    return await pool.fetchval(
        "select id from personal_access_tokens where token_digest = $1", hashlib.sha256(token.encode()).digest()
    )


@pytest.mark.parametrize("who", ["owner", "admin"])
async def test_revoke_token(api, world, pool, who) -> None:
    alice = await world.user("alice")
    victim = await world.token(alice)
    actor = await world.token(alice) if who == "owner" else ROOT_TOKEN
    reply = await api.delete(f"/personal_access_tokens/{await token_id_of(pool, victim)}", token=actor)
    assert (reply.status, reply.body) == (204, None)
    after = await api.get("/user", token=victim)
    assert (after.status, after.body) == (401, REVOKED)
    assert (await api.get("/user", token=actor)).status == 200


async def test_other_users_token_is_404_and_stays_valid(api, world, pool) -> None:
    victim = await world.token(await world.user("alice"))
    mallory = await world.token(await world.user("mallory"))
    reply = await api.delete(f"/personal_access_tokens/{await token_id_of(pool, victim)}", token=mallory)
    assert (reply.status, reply.body) == (404, {"message": "404 Not found"})
    assert (await api.get("/user", token=victim)).status == 200


@pytest.mark.parametrize("token_id", ["987654", "abc"])
async def test_revoke_unknown_token_is_404(api, token_id) -> None:
    reply = await api.delete(f"/personal_access_tokens/{token_id}", token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, {"message": "404 Not found"})


async def test_revoke_self(api, world) -> None:
    alice = await world.user("alice")
    token = await world.token(alice)
    other = await world.token(alice)
    reply = await api.delete("/personal_access_tokens/self", token=token)
    assert reply.status == 204
    assert (await api.get("/user", token=token)).body == REVOKED
    assert (await api.get("/user", token=other)).status == 200


async def test_revoke_needs_a_token(api) -> None:
    reply = await api.delete("/personal_access_tokens/self")
    assert (reply.status, reply.body) == (401, UNAUTHORIZED)


# --- the router itself -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v4/nothing-here", "/", "/api/v4/projects/1/error_tracking/nope"])
async def test_unknown_route_is_json_404(api, path) -> None:
    reply = await api.get(api.base + path, token=ROOT_TOKEN)
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body == {"message": "404 Not Found"}


@pytest.mark.parametrize(
    "method, path", [("DELETE", "/user"), ("PATCH", "/users"), ("POST", "/projects/1/error_tracking/settings")]
)
async def test_wrong_method_is_json_405(api, method, path) -> None:
    reply = await api.request(method, path, token=ROOT_TOKEN)
    assert reply.status == 405
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body == {"message": "405 Method Not Allowed"}
    assert method not in reply.headers["Allow"]


# --- regressions found while writing these tests ---


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/users", {"username": "nul", "name": "a\x00b"}),
        ("POST", "/projects", {"path_with_namespace": "group/app", "description": "a\x00b"}),
        ("GET", "/users?username=a%00b", None),
    ],
)
async def test_nul_byte_in_a_parameter_is_400(api, pool, method, path, body) -> None:
    reply = await api.request(method, path, token=ROOT_TOKEN, json=body)
    assert reply.status == 400
