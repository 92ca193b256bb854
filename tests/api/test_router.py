"""The REST API's router: JSON 404 and 405, and parameters it refuses whatever the route."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT_TOKEN


@pytest.mark.parametrize("path", ["/api/v4/nothing-here", "/-/nothing-here", "/api/v4/projects/1/error_tracking/nope"])
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
