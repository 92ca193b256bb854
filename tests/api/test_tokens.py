"""Personal access tokens in GitLab's shapes: created by an administrator and shown once, revoked."""

from __future__ import annotations

import hashlib

import pytest

from tests.api.helpers import FORBIDDEN, REVOKED, UNAUTHORIZED, days_from_today, token_id_of
from tests.conftest import ROOT_TOKEN


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
