"""``GET/POST /projects/:id/error_tracking/client_keys`` and ``DELETE .../client_keys/:key_id``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from app.db import error_tracking
from tests.api.helpers import (
    BELOW_MAINTAINER,
    EXPIRED,
    FORBIDDEN,
    INSUFFICIENT_SCOPE,
    KEY_NOT_FOUND,
    PROJECT_NOT_FOUND,
    REVOKED,
    UNAUTHORIZED,
    days_from_today,
    parse_link_header,
)
from tests.conftest import ROOT_TOKEN, Api

PUBLIC_KEY_RE = re.compile(r"^glet_[0-9a-f]{32}$")
METHODS = ["GET", "POST", "DELETE"]


def keys_url(project) -> str:
    return f"/projects/{project['id']}/error_tracking/client_keys"


async def key_ids(pool, project) -> list[int]:
    rows = await pool.fetch(
        "select id from error_tracking_client_keys where project_id = $1 order by id", project["id"]
    )
    return [r["id"] for r in rows]


async def send(api, method: str, project, token: str | None, key_id: int | None = None):
    """The route for ``method``: list, create, or delete ``key_id``."""
    url = keys_url(project) + (f"/{key_id}" if method == "DELETE" else "")
    return await api.request(method, url, token=token)


async def project_with_key(world, pool, owner=None):
    project = await world.project(owner=owner)
    key = await error_tracking.create_key(pool, project["id"])
    return project, key


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("token", [None, "", "glpat-unknown-token-xxxxxxxx"])
async def test_missing_or_bad_token_is_401(api, world, pool, method, token) -> None:
    project, key = await project_with_key(world, pool)
    reply = await send(api, method, project, token, key["id"])
    assert (reply.status, reply.body) == (401, UNAUTHORIZED)
    assert await key_ids(pool, project) == [key["id"]]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind, body", [("expired", EXPIRED), ("revoked", REVOKED)])
async def test_expired_and_revoked_tokens_are_401(api, world, pool, method, kind, body) -> None:
    owner = await world.user()
    project, key = await project_with_key(world, pool, owner)
    if kind == "expired":
        token = await world.token(owner, expires_at=days_from_today(0))
    else:
        token = await world.token(owner, revoked=True)
    reply = await send(api, method, project, token, key["id"])
    assert (reply.status, reply.body) == (401, body)
    assert await key_ids(pool, project) == [key["id"]]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("by_path", [False, True])
async def test_non_member_is_404(api, world, pool, method, by_path) -> None:
    project, key = await project_with_key(world, pool, await world.user())
    outsider = await world.token(await world.user())
    base = "/projects/group%2Fapp/error_tracking/client_keys" if by_path else keys_url(project)
    url = base + (f"/{key['id']}" if method == "DELETE" else "")
    reply = await api.request(method, url, token=outsider)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)
    assert await key_ids(pool, project) == [key["id"]]


@pytest.mark.parametrize("method", METHODS)
async def test_missing_project_is_404(api, method) -> None:
    url = "/projects/424242/error_tracking/client_keys" + ("/1" if method == "DELETE" else "")
    reply = await api.request(method, url, token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("level", BELOW_MAINTAINER)
async def test_below_maintainer_is_403(api, world, pool, method, level) -> None:
    project, key = await project_with_key(world, pool)
    token = await world.user_with_role(project, level)
    reply = await send(api, method, project, token, key["id"])
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    assert await key_ids(pool, project) == [key["id"]]


@pytest.mark.parametrize("method, status", [("GET", 200), ("POST", 201), ("DELETE", 200)])
@pytest.mark.parametrize("who", ["maintainer", "owner", "admin"])
async def test_maintainer_owner_and_admin_are_allowed(api, world, pool, method, status, who) -> None:
    project, key = await project_with_key(world, pool, await world.user())
    if who == "admin":
        token = await world.token(await world.user(admin=True))
    else:
        token = await world.user_with_role(project, {"maintainer": 40, "owner": 50}[who])
    reply = await send(api, method, project, token, key["id"])
    assert reply.status == status, reply.body
    remaining = await key_ids(pool, project)
    if method == "GET":
        assert [k["id"] for k in reply.body] == [key["id"]]
    elif method == "POST":
        assert remaining == [key["id"], reply.body["id"]]
    else:
        assert reply.body["id"] == key["id"] and remaining == []


@pytest.mark.parametrize(
    "method, status, body", [("GET", 200, None), ("POST", 403, INSUFFICIENT_SCOPE), ("DELETE", 403, INSUFFICIENT_SCOPE)]
)
async def test_read_api_token(api, world, pool, method, status, body) -> None:
    maintainer = await world.user()
    project, key = await project_with_key(world, pool)
    await world.member(project, maintainer, 40)
    token = await world.token(maintainer, scopes=("read_api",))
    reply = await send(api, method, project, token, key["id"])
    assert reply.status == status
    if body is not None:
        assert reply.body == body
    else:
        assert [k["public_key"] for k in reply.body] == [key["public_key"]]
    assert await key_ids(pool, project) == [key["id"]]


# --- create ----------------------------------------------------------------------------------


async def test_create_answers_201_with_gitlab_shape(api, world, pool) -> None:
    project = await world.project()
    reply = await api.post(keys_url(project), token=ROOT_TOKEN)
    assert reply.status == 201
    assert set(reply.body) == {"id", "active", "public_key", "sentry_dsn"}
    assert reply.body["active"] is True
    public_key = reply.body["public_key"]
    assert PUBLIC_KEY_RE.match(public_key), public_key
    assert reply.body["sentry_dsn"] == (
        f"http://{public_key}@errgate.test:8080/api/v4/error_tracking/collector/{project['id']}"
    )
    row = await pool.fetchrow(
        "select project_id, public_key, active from error_tracking_client_keys where id = $1", reply.body["id"]
    )
    assert (row["project_id"], row["public_key"], row["active"]) == (project["id"], public_key, True)


async def test_create_by_path_id(api, world) -> None:
    project = await world.project("group/sub/app")
    reply = await api.post("/projects/group%2Fsub%2Fapp/error_tracking/client_keys", token=ROOT_TOKEN)
    assert reply.status == 201
    assert reply.body["sentry_dsn"].endswith(f"/api/v4/error_tracking/collector/{project['id']}")


async def test_public_keys_are_random(api, world) -> None:
    project = await world.project()
    keys = {(await api.post(keys_url(project), token=ROOT_TOKEN)).body["public_key"] for _ in range(5)}
    assert len(keys) == 5


@pytest.mark.parametrize(
    "external_url, expected",
    [
        (
            "https://errors.example.com/sub/",
            "https://{key}@errors.example.com/sub/api/v4/error_tracking/collector/{id}",
        ),
        ("https://errors.example.com", "https://{key}@errors.example.com/api/v4/error_tracking/collector/{id}"),
        ("http://10.0.0.5:9000/a/b", "http://{key}@10.0.0.5:9000/a/b/api/v4/error_tracking/collector/{id}"),
    ],
)
async def test_dsn_is_built_from_external_url(start_server, world, external_url, expected) -> None:
    server = await start_server(external_url=external_url)
    project = await world.project()
    async with aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        created = await api.post(keys_url(project), token=ROOT_TOKEN)
        listed = await api.get(keys_url(project), token=ROOT_TOKEN)
    key = created.body["public_key"]
    assert created.body["sentry_dsn"] == expected.format(key=key, id=project["id"])
    assert listed.body[0]["sentry_dsn"] == created.body["sentry_dsn"]


# --- list and pagination ---------------------------------------------------------------------


async def test_list_is_ordered_by_id_and_scoped_to_the_project(api, world, pool) -> None:
    project = await world.project("group/app")
    other = await world.project("group/other")
    created = []
    for owner in (project, other, project, other, project):
        created.append(await error_tracking.create_key(pool, owner["id"]))
    reply = await api.get(keys_url(project), token=ROOT_TOKEN)
    assert reply.status == 200
    ids = [k["id"] for k in reply.body]
    assert ids == sorted(ids) == [created[0]["id"], created[2]["id"], created[4]["id"]]
    for item in reply.body:
        assert set(item) == {"id", "active", "public_key", "sentry_dsn"}
        assert item["sentry_dsn"] == (
            f"http://{item['public_key']}@errgate.test:8080/api/v4/error_tracking/collector/{project['id']}"
        )


async def test_empty_list(api, world) -> None:
    project = await world.project()
    reply = await api.get(keys_url(project), token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (200, [])
    assert reply.headers["X-Total"] == "0"
    assert reply.headers["X-Total-Pages"] == "1"
    assert reply.headers["X-Next-Page"] == ""


@pytest.fixture
async def project_with_25_keys(world, pool):
    project = await world.project()
    ids = [(await error_tracking.create_key(pool, project["id"]))["id"] for _ in range(25)]
    return project, ids


def pages(total: str, total_pages: str, per_page: str, page: str, next_page: str, prev_page: str) -> dict[str, str]:
    return {
        "X-Total": total, "X-Total-Pages": total_pages, "X-Per-Page": per_page, "X-Page": page,
        "X-Next-Page": next_page, "X-Prev-Page": prev_page,
    }


def link_pages(reply) -> dict[str, tuple[int, int]]:
    """``{"next": (page, per_page), ...}`` from the ``Link`` header."""
    pages = {}
    for rel, url in parse_link_header(reply.headers["Link"]).items():
        parts = urlsplit(url)
        assert parts.path.endswith("/error_tracking/client_keys"), url
        query = parse_qs(parts.query)
        pages[rel] = (int(query["page"][0]), int(query["per_page"][0]))
    return pages


@pytest.mark.parametrize(
    "params, ids_slice, headers, links",
    [
        (
            None,
            slice(0, 20),
            pages("25", "2", "20", "1", "2", ""),
            {"next": (2, 20), "first": (1, 20), "last": (2, 20)},
        ),
        (
            {"page": "2"},
            slice(20, 25),
            pages("25", "2", "20", "2", "", "1"),
            {"prev": (1, 20), "first": (1, 20), "last": (2, 20)},
        ),
        (
            {"per_page": "10", "page": "2"},
            slice(10, 20),
            pages("25", "3", "10", "2", "3", "1"),
            {"prev": (1, 10), "next": (3, 10), "first": (1, 10), "last": (3, 10)},
        ),
        (
            {"per_page": "10", "page": "3"},
            slice(20, 25),
            pages("25", "3", "10", "3", "", "2"),
            {"prev": (2, 10), "first": (1, 10), "last": (3, 10)},
        ),
        (
            {"per_page": "500"},
            slice(0, 25),
            pages("25", "1", "100", "1", "", ""),
            {"first": (1, 100), "last": (1, 100)},
        ),
        (
            {"per_page": "10", "page": "4"},
            slice(0, 0),
            {"X-Total": "25", "X-Total-Pages": "3", "X-Per-Page": "10", "X-Page": "4", "X-Next-Page": ""},
            None,
        ),
        (
            {"per_page": "0", "page": "0"},
            slice(0, 20),
            {"X-Per-Page": "20", "X-Page": "1"},
            None,
        ),
    ],
)
async def test_pagination(api, project_with_25_keys, params, ids_slice, headers, links) -> None:
    project, ids = project_with_25_keys
    reply = await api.get(keys_url(project), token=ROOT_TOKEN, params=params)
    assert reply.status == 200
    assert [k["id"] for k in reply.body] == ids[ids_slice]
    assert {name: reply.headers.get(name) for name in headers} == headers
    if links is not None:
        assert link_pages(reply) == links


@pytest.mark.parametrize(
    "params, error", [({"page": "x"}, "page is invalid"), ({"per_page": "ten"}, "per_page is invalid")]
)
async def test_bad_pagination_parameters_are_400(api, world, params, error) -> None:
    project = await world.project()
    reply = await api.get(keys_url(project), token=ROOT_TOKEN, params=params)
    assert (reply.status, reply.body) == (400, {"error": error})


# --- delete ----------------------------------------------------------------------------------


async def test_delete_answers_200_with_the_key_and_removes_it(api, world, pool) -> None:
    project = await world.project()
    first = (await api.post(keys_url(project), token=ROOT_TOKEN)).body
    second = (await api.post(keys_url(project), token=ROOT_TOKEN)).body
    reply = await api.delete(f"{keys_url(project)}/{first['id']}", token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (200, first)
    listed = await api.get(keys_url(project), token=ROOT_TOKEN)
    assert listed.body == [second]
    again = await api.delete(f"{keys_url(project)}/{first['id']}", token=ROOT_TOKEN)
    assert (again.status, again.body) == (404, KEY_NOT_FOUND)


async def test_delete_by_path_id(api, world, pool) -> None:
    project, key = await project_with_key(world, pool)
    reply = await api.delete(f"/projects/group%2Fapp/error_tracking/client_keys/{key['id']}", token=ROOT_TOKEN)
    assert reply.status == 200
    assert await key_ids(pool, project) == []


async def test_delete_key_of_another_project_is_404(api, world, pool) -> None:
    owner = await world.user()
    token = await world.token(owner)
    mine = await world.project("group/mine", owner)
    theirs, their_key = await project_with_key(world, pool)
    reply = await api.delete(f"{keys_url(mine)}/{their_key['id']}", token=token)
    assert (reply.status, reply.body) == (404, KEY_NOT_FOUND)
    # The administrator, who may see both projects, gets the same answer through the wrong project.
    reply = await api.delete(f"{keys_url(mine)}/{their_key['id']}", token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, KEY_NOT_FOUND)
    assert await key_ids(pool, theirs) == [their_key["id"]]


@pytest.mark.parametrize("key_id", ["987654", "abc", "-1", "1.5", "99999999999999999999999"])
async def test_delete_unknown_key_is_404(api, world, pool, key_id) -> None:
    project, key = await project_with_key(world, pool)
    reply = await api.delete(f"{keys_url(project)}/{key_id}", token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, KEY_NOT_FOUND)
    assert await key_ids(pool, project) == [key["id"]]


# --- regressions found while writing these tests ---


@pytest.mark.parametrize("page", [str(2**62), str(2**70)])
async def test_huge_page_number_is_not_a_server_error(api, world, page) -> None:
    project = await world.project()
    reply = await api.get(keys_url(project), token=ROOT_TOKEN, params={"page": page})
    assert (reply.status, reply.body) in [(200, []), (400, {"error": "page is invalid"})]


async def test_page_past_the_end_has_no_prev_page(api, project_with_25_keys) -> None:
    project, _ = project_with_25_keys
    reply = await api.get(keys_url(project), token=ROOT_TOKEN, params={"page": "9", "per_page": "10"})
    assert (reply.body, reply.headers["X-Prev-Page"], reply.headers["X-Next-Page"]) == ([], "", "")
