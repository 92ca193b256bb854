"""Web sign-in over real HTTP: the session cookie's flags, expiry, sign-out, revoked and expired
tokens, blocked users, read-only tokens, and the CSRF token on every form."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import aiohttp
import pytest

from app.web import sessions
from tests.api.helpers import days_from_today, token_id_of
from tests import conftest
from tests.web.helpers import WebClient

from app.server import create_app

SIGN_IN_FORM = 'name="token" type="password"'


async def test_the_sign_in_page_asks_for_a_token_in_a_password_field(client):
    page = await client.get("/")
    assert page.status == 200
    assert SIGN_IN_FORM in page.text
    assert 'name="_csrf"' in page.text


async def test_signing_in_sets_an_http_only_lax_cookie_holding_no_token(client, world, pool):
    user = await world.user("alice")
    token = await world.token(user)
    response = await client.post("/", {"_csrf": (await client.get("/")).csrf, "token": token}, follow=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.headers.getall("Set-Cookie")
    session_cookie = next(c for c in cookie if c.startswith(sessions.SESSION_COOKIE + "="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie and "Path=/" in session_cookie
    assert "Secure" not in session_cookie  # ERRGATE_EXTERNAL_URL is http here
    session_id = client.cookie(sessions.SESSION_COOKIE).value
    assert token not in session_cookie and session_id != token
    # Only the digest of the id is stored, tied to the token's row.
    rows = await pool.fetch("select id_digest, token_id from web_sessions")
    assert [(bytes(r["id_digest"]), r["token_id"]) for r in rows] == [
        (hashlib.sha256(session_id.encode()).digest(), await token_id_of(pool, token))
    ]
    page = await client.get("/")
    assert page.status == 200 and "alice" in page.text and SIGN_IN_FORM not in page.text


async def test_the_cookie_is_secure_behind_https(start_server, database_url, world):
    server = await start_server(external_url="https://errgate.example/tracker")
    user = await world.user()
    token = await world.token(user)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = WebClient(http, server.url)
        form = await client.get("/")
        assert 'action="/tracker/"' in form.text  # links keep the external URL's path
        nonce = client.cookie(sessions.SIGN_IN_COOKIE)
        assert nonce["secure"] and nonce["httponly"] and nonce["path"] == "/tracker"
        # The jar would not send a Secure cookie over http: send the nonce by hand.
        response = await client.post(
            "/", {"_csrf": form.csrf, "token": token}, follow=False, headers={"Cookie": f"{nonce.key}={nonce.value}"}
        )
    assert response.status == 303 and response.headers["Location"] == "/tracker/"
    session_cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith(sessions.SESSION_COOKIE))
    assert "Secure" in session_cookie and "Path=/tracker" in session_cookie and "HttpOnly" in session_cookie


@pytest.mark.parametrize("case", ["unknown", "revoked", "expired", "blocked", "blank"])
async def test_a_token_that_cannot_sign_in_gets_the_form_again_with_the_reason(client, world, pool, case):
    user = await world.user()
    token = {
        "unknown": "glpat-not-a-token-at-all-0000",
        "revoked": await world.token(user, revoked=True),
        "expired": await world.token(user, expires_at=days_from_today(-1)),
        "blocked": await world.token(user),
        "blank": "   ",
    }[case]
    if case == "blocked":
        await pool.execute("update users set state = 'blocked' where id = $1", user["id"])
    page = await client.sign_in(token)
    assert page.status in (401, 403) and SIGN_IN_FORM in page.text
    expected = {"unknown": "No such token", "revoked": "revoked", "expired": "expired", "blocked": "blocked",
                "blank": "Enter a personal access token"}[case]
    assert expected in page.text
    assert client.cookie(sessions.SESSION_COOKIE) is None
    assert await pool.fetchval("select count(*) from web_sessions") == 0


async def test_signing_in_without_the_forms_token_is_refused(client, world, pool):
    token = await world.token(await world.user())
    await client.get("/")
    page = await client.post("/", {"token": token})
    assert page.status == 403 and "CSRF" in page.text
    page = await client.post("/", {"token": token, "_csrf": "0" * 64})
    assert page.status == 403
    assert await pool.fetchval("select count(*) from web_sessions") == 0


async def test_sign_out_ends_the_session_on_the_server(client, world, pool):
    token = await world.token(await world.user())
    home = await client.sign_in(token)
    stolen = client.cookie(sessions.SESSION_COOKIE).value
    page = await client.post("/-/sign_out", {"_csrf": home.csrf})
    assert page.status == 200 and SIGN_IN_FORM in page.text
    assert await pool.fetchval("select count(*) from web_sessions") == 0
    # A copy of the old cookie signs nobody in.
    async with aiohttp.ClientSession() as http:
        async with http.get(client.base + "/", headers={"Cookie": f"{sessions.SESSION_COOKIE}={stolen}"}) as response:
            assert SIGN_IN_FORM in await response.text()


async def test_sign_out_needs_the_csrf_token(client, world, pool):
    await client.sign_in(await world.token(await world.user()))
    page = await client.post("/-/sign_out", {})
    assert page.status == 403
    assert await pool.fetchval("select count(*) from web_sessions") == 1


async def test_sessions_expire(client, world, pool):
    await client.sign_in(await world.token(await world.user()))
    assert SIGN_IN_FORM not in (await client.get("/")).text
    await pool.execute("update web_sessions set expires_at = now() - interval '1 second'")
    assert SIGN_IN_FORM in (await client.get("/")).text


async def test_the_session_lasts_errgate_session_hours(start_server, world, pool):
    server = await start_server(session_hours=2.0)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = WebClient(http, server.url)
        form = await client.get("/")
        response = await client.post("/", {"_csrf": form.csrf, "token": await world.token(await world.user())}, follow=False)
    session_cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith(sessions.SESSION_COOKIE))
    assert "Max-Age=7200" in session_cookie
    lifetime = await pool.fetchval("select expires_at - created_at from web_sessions")
    assert timedelta(hours=2) - timedelta(seconds=5) < lifetime <= timedelta(hours=2)


@pytest.mark.parametrize("change", ["revoke", "expire", "block"])
async def test_a_token_that_stops_working_ends_its_sessions_at_the_next_request(client, other_client, world, pool, change):
    user = await world.user()
    token = await world.token(user)
    await client.sign_in(token)
    await other_client.sign_in(token)
    assert await pool.fetchval("select count(*) from web_sessions") == 2
    token_id = await token_id_of(pool, token)
    if change == "revoke":
        await pool.execute("update personal_access_tokens set revoked = true where id = $1", token_id)
    elif change == "expire":
        await pool.execute("update personal_access_tokens set expires_at = current_date - 1 where id = $1", token_id)
    else:
        await pool.execute("update users set state = 'blocked' where id = $1", user["id"])
    page = await client.get("/")
    assert SIGN_IN_FORM in page.text and user["username"] not in page.text
    reason = {"revoke": "Token has been revoked.", "expire": "Token has expired.", "block": "blocked"}[change]
    assert "You were signed out" in page.text and reason in page.text
    assert await pool.fetchval("select count(*) from web_sessions") == 0  # the other browser's too


async def test_deleting_the_user_deletes_the_sessions(client, world, pool):
    user = await world.user()
    await client.sign_in(await world.token(user))
    await pool.execute("delete from users where id = $1", user["id"])
    assert await pool.fetchval("select count(*) from web_sessions") == 0


async def test_a_signed_out_visitor_gets_the_sign_in_form_and_comes_back_after_signing_in(client, world):
    owner = await world.user()
    await world.project("group/sub/app", owner)
    page = await client.get("/group/sub/app/-/error_tracking/settings")
    assert page.status == 401 and SIGN_IN_FORM in page.text and "group/sub/app" not in page.text.split("<main>")[1].replace(
        'value="/group/sub/app/-/error_tracking/settings"', "")
    landed = await client.post("/", {"_csrf": page.csrf, "token": await world.token(owner),
                                     "next": "/group/sub/app/-/error_tracking/settings"})
    assert landed.status == 200 and landed.url.endswith("/group/sub/app/-/error_tracking/settings")
    assert "Client keys" in landed.text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil"])
async def test_signing_in_goes_nowhere_outside_the_site(client, world, target):
    form = await client.get("/")
    response = await client.post("/", {"_csrf": form.csrf, "token": await world.token(await world.user()), "next": target},
                                 follow=False)
    assert response.status == 303 and response.headers["Location"] == "/"


async def test_a_read_api_session_may_look_but_not_post(client, world):
    owner = await world.user()
    await world.project("group/app", owner)
    await client.sign_in(await world.token(owner, scopes=("read_api",)))
    page = await client.get("/group/app/-/error_tracking/settings")
    assert page.status == 200 and "read only" in page.text
    assert "Turn on" not in page.text and "Create a client key" not in page.text  # no form it may not send
    refused = await client.post("/group/app/-/error_tracking/settings", {"_csrf": page.csrf, "enabled": "true"})
    assert refused.status == 403 and "higher privileges" in refused.text
    # Signing out still works.
    out = await client.post("/-/sign_out", {"_csrf": page.csrf})
    assert SIGN_IN_FORM in out.text


async def test_a_stale_session_cookie_for_another_server_signs_nothing(database_url, world, pool, client):
    """The session lives in PostgreSQL: another errgate (a replica) knows it too."""
    await client.sign_in(await world.token(await world.user("carol")))
    session_id = client.cookie(sessions.SESSION_COOKIE).value
    async with conftest.serving(create_app(conftest.test_settings(database_url))) as runner:
        async with aiohttp.ClientSession() as http:
            async with http.get(conftest.url_of(runner) + "/", headers={"Cookie": f"{sessions.SESSION_COOKIE}={session_id}"}) as r:
                assert "carol" in await r.text()
