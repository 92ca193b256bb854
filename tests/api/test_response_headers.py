"""Response headers: ``Link`` from ``ERRGATE_EXTERNAL_URL`` without tokens, and nosniff, ``Server`` and ``Cache-Control`` on every answer."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from app import headers, health
from app.metrics import Metrics
from app.server import create_metrics_app
from tests.api.helpers import parse_link_header
from tests.conftest import ROOT_TOKEN, Api, serving, url_of

EXTERNAL = "http://errgate.test:8080"


def link_parts(reply) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """``{rel: (address without query, query pairs)}`` of the ``Link`` header."""
    parts = {}
    for rel, url in parse_link_header(reply.headers["Link"]).items():
        split = urlsplit(url)
        parts[rel] = (f"{split.scheme}://{split.netloc}{split.path}", parse_qsl(split.query))
    return parts


# --- Link --------------------------------------------------------------------------------------


async def test_links_name_the_external_url_whatever_the_host_header(api, world) -> None:
    for i in range(3):
        await world.user(f"user{i}")
    reply = await api.get("/users", token=ROOT_TOKEN, params={"per_page": "2"}, headers={"Host": "evil.example"})
    assert reply.status == 200
    links = link_parts(reply)
    assert set(links) == {"next", "first", "last"}
    for address, _ in links.values():
        assert address == f"{EXTERNAL}/api/v4/users"
    assert "evil.example" not in reply.headers["Link"]


@pytest.mark.parametrize("carrier", ["private_token", "access_token"])
async def test_links_do_not_repeat_a_token_from_the_query(api, carrier) -> None:
    reply = await api.get("/users", params={carrier: ROOT_TOKEN, "username": "root", "per_page": "5", "page": "1"})
    assert reply.status == 200
    assert ROOT_TOKEN not in reply.headers["Link"]
    links = link_parts(reply)
    assert set(links) == {"first", "last"}
    for _, query in links.values():
        assert query == [("username", "root"), ("page", "1"), ("per_page", "5")]


async def test_links_keep_an_encoded_project_path_and_lead_to_the_next_page(api, world) -> None:
    project = await world.project("group/sub/app")
    for _ in range(3):
        await world.member(project, await world.user(), 10)
    reply = await api.get("/projects/group%2Fsub%2Fapp/members", token=ROOT_TOKEN, params={"per_page": "2"})
    address, query = link_parts(reply)["next"]
    assert address == f"{EXTERNAL}/api/v4/projects/group%2Fsub%2Fapp/members"
    # The same link followed on the address the test reaches errgate by.
    following = await api.get(api.base + urlsplit(address).path, token=ROOT_TOKEN, params=query)
    assert (following.status, following.headers["X-Page"], len(following.body)) == (200, "2", 1)


async def test_links_keep_the_path_prefix_of_the_external_url(start_server) -> None:
    server = await start_server(external_url="https://errors.example.com/tools/errgate/")
    async with aiohttp.ClientSession() as session:
        reply = await Api(session, server.url).get("/users", token=ROOT_TOKEN)
    address, _ = link_parts(reply)["first"]
    assert address == "https://errors.example.com/tools/errgate/api/v4/users"


# --- headers on every answer -------------------------------------------------------------------


def assert_errgate_headers(response_headers, what: str) -> None:
    assert response_headers.get("X-Content-Type-Options") == "nosniff", what
    assert response_headers.get("Server") == "errgate", what


@pytest.mark.parametrize(
    "method, path, token, status",
    [
        ("GET", "/api/v4/user", ROOT_TOKEN, 200),
        ("GET", "/api/v4/user", None, 401),
        ("GET", "/api/v4/projects/999999", ROOT_TOKEN, 404),
        ("POST", "/api/v4/projects", ROOT_TOKEN, 400),
        ("GET", "/api/v4/no/such/route", None, 404),
        ("PATCH", "/api/v4/user", ROOT_TOKEN, 405),
        ("POST", "/api/v4/error_tracking/collector/api/1/envelope/", None, 400),  # no body, no key
        ("POST", "/api/1/store/", None, 401),
        ("OPTIONS", "/api/1/envelope/", None, 200),
        ("GET", health.LIVENESS_PATH, None, 200),
        ("GET", health.READINESS_PATH, None, 200),
        ("GET", health.METRICS_PATH, None, 200),
    ],
)
async def test_every_answer_has_nosniff_and_a_versionless_server(server, method, path, token, status) -> None:
    request_headers = {"PRIVATE-TOKEN": token} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, server.url + path, headers=request_headers) as response:
            assert response.status == status
            assert_errgate_headers(response.headers, f"{method} {path}")


async def test_metrics_on_their_own_port_have_the_same_headers() -> None:
    async with serving(create_metrics_app(Metrics())) as runner, aiohttp.ClientSession() as session:
        for path, status in ((health.METRICS_PATH, 200), ("/elsewhere", 404)):
            async with session.get(url_of(runner) + path) as response:
                assert response.status == status
                assert_errgate_headers(response.headers, path)


async def test_an_unparseable_request_is_answered_without_versions(server) -> None:
    port = urlsplit(server.url).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head = raw.split(b"\r\n\r\n")[0].decode()
    assert head.split("\r\n")[0].endswith("400 Bad Request")
    assert "\r\nServer: errgate" in head and "aiohttp" not in head and "Python" not in head


# --- Cache-Control -----------------------------------------------------------------------------


async def test_a_new_token_is_not_to_be_stored(api, world) -> None:
    alice = await world.user("alice")
    reply = await api.post(
        f"/users/{alice['id']}/personal_access_tokens", token=ROOT_TOKEN, json={"name": "ci", "scopes": ["api"]}
    )
    assert reply.status == 201 and reply.body["token"]
    assert reply.headers["Cache-Control"] == "no-store"


async def test_client_keys_are_not_to_be_stored(api, world) -> None:
    project = await world.project()
    url = f"/projects/{project['id']}/error_tracking/client_keys"
    created = await api.post(url, token=ROOT_TOKEN)
    listed = await api.get(url, token=ROOT_TOKEN)
    assert (created.status, listed.status) == (201, 200)
    assert listed.body[0]["sentry_dsn"] == created.body["sentry_dsn"]
    assert created.headers["Cache-Control"] == listed.headers["Cache-Control"] == "no-store"


async def test_answers_without_secrets_may_be_cached(api, world) -> None:
    project = await world.project()
    for path in ("/user", f"/projects/{project['id']}", f"/projects/{project['id']}/members"):
        reply = await api.get(path, token=ROOT_TOKEN)
        assert reply.status == 200 and "Cache-Control" not in reply.headers, path


def test_every_secret_route_exists(server) -> None:
    """The list names routes by their pattern: a renamed route must not silently drop out of it."""
    routes = {
        (route.method, route.resource.canonical)
        for route in server.app.router.routes()
        if route.resource is not None
    }
    assert headers.SECRET_ROUTES <= routes
