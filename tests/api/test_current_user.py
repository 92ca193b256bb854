"""The current user (``GET /user``), the root user made from ``ERRGATE_ROOT_TOKEN``, and where a token may be carried."""

from __future__ import annotations

import aiohttp
import pytest

from app.auth import token_digest
from app.db import users
from tests.api.helpers import UNAUTHORIZED, token_id_of
from tests.conftest import ROOT_TOKEN, Api


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
