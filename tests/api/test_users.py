"""Users in GitLab's shapes: created by an administrator, listed with private fields for administrators only."""

from __future__ import annotations

import pytest

from tests.api.helpers import FORBIDDEN, INSUFFICIENT_SCOPE, UNAUTHORIZED, parse_link_header
from tests.conftest import ROOT_TOKEN


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
