"""Settings and client keys driven through python-gitlab's own HTTP helpers, as a real GitLab client would.

python-gitlab is synchronous and the server runs on the test's event loop, so every call
goes through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable
from urllib.parse import quote

import gitlab
import pytest

from tests.conftest import ROOT_TOKEN

PUBLIC_KEY_RE = re.compile(r"^glet_[0-9a-f]{32}$")


async def with_gitlab(
    server, action: Callable[[gitlab.Gitlab], Any], token: str = ROOT_TOKEN, keep_base_url: bool = False
) -> Any:
    def run() -> Any:
        with gitlab.Gitlab(server.url, private_token=token, keep_base_url=keep_base_url) as gl:
            return action(gl)

    return await asyncio.to_thread(run)


@pytest.mark.parametrize("path", ["group/app", "group/sub/app"])
async def test_settings_and_client_keys_round_trip(server, world, pool, path) -> None:
    project = await world.project(path)
    base = f"/projects/{quote(path, safe='')}/error_tracking"

    def scenario(gl: gitlab.Gitlab) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        seen["put"] = gl.http_put(f"{base}/settings", query_data={"active": True, "integrated": True})
        seen["get"] = gl.http_get(f"{base}/settings")
        seen["patch"] = gl.http_patch(f"{base}/settings", post_data={"active": False})
        seen["get_after_patch"] = gl.http_get(f"{base}/settings")
        seen["created"] = gl.http_post(f"{base}/client_keys")
        seen["listed"] = gl.http_list(f"{base}/client_keys", get_all=True)
        seen["fetched"] = gl.http_get(f"{base}/client_keys")
        deleted = gl.http_delete(f"{base}/client_keys/{seen['created']['id']}")
        seen["deleted"] = (deleted.status_code, deleted.json())
        seen["after_delete"] = gl.http_list(f"{base}/client_keys", get_all=True)
        return seen

    seen = await with_gitlab(server, scenario)

    integrated = {
        "active": True, "project_name": None, "sentry_external_url": None, "api_url": None, "integrated": True,
    }
    assert seen["put"] == integrated
    assert seen["get"] == integrated
    assert seen["patch"] == {**integrated, "active": False}
    assert seen["get_after_patch"] == {**integrated, "active": False}

    created = seen["created"]
    assert PUBLIC_KEY_RE.match(created["public_key"])
    assert created["sentry_dsn"] == (
        f"http://{created['public_key']}@errgate.test:8080/api/v4/error_tracking/collector/{project['id']}"
    )
    # The PUT enabled integrated tracking, which created the first key; POST added the second.
    assert len(seen["listed"]) == 2 and seen["listed"][1] == created
    assert seen["fetched"] == seen["listed"]
    assert seen["deleted"] == (200, created)
    assert seen["after_delete"] == seen["listed"][:1]
    assert await pool.fetchval(
        "select count(*) from error_tracking_client_keys where project_id = $1", project["id"]
    ) == 1


async def test_http_list_follows_link_headers(server, world) -> None:
    project = await world.project()
    url = f"/projects/{project['id']}/error_tracking/client_keys"

    def scenario(gl: gitlab.Gitlab) -> tuple[list[dict], list[dict]]:
        made = [gl.http_post(url) for _ in range(5)]
        return made, gl.http_list(url, per_page=2, get_all=True)

    # The links name ERRGATE_EXTERNAL_URL (errgate.test), not the loopback address the test reaches
    # errgate by: python-gitlab follows them on its own base URL only when told to keep it.
    made, listed = await with_gitlab(server, scenario, keep_base_url=True)
    assert listed == made


async def test_http_put_with_a_json_body(server, world) -> None:
    await world.project("group/app")

    def scenario(gl: gitlab.Gitlab) -> Any:
        return gl.http_put(
            "/projects/group%2Fapp/error_tracking/settings", post_data={"active": True, "integrated": False}
        )

    body = await with_gitlab(server, scenario)
    assert (body["active"], body["integrated"]) == (True, False)


@pytest.mark.parametrize(
    "level, method, code, message",
    [
        (30, "get", 403, "403 Forbidden"),
        (30, "put", 403, "403 Forbidden"),
        (None, "get", 404, "404 Project Not Found"),
        (None, "post", 404, "404 Project Not Found"),
    ],
)
async def test_errors_surface_as_gitlab_http_errors(server, world, level, method, code, message) -> None:
    project = await world.project()
    user = await world.user()
    if level is not None:
        await world.member(project, user, level)
    token = await world.token(user)
    path = f"/projects/{project['id']}/error_tracking/settings"

    def scenario(gl: gitlab.Gitlab) -> Any:
        if method == "put":
            return gl.http_put(path, query_data={"active": True, "integrated": True})
        if method == "post":
            return gl.http_post(path.replace("settings", "client_keys"))
        return gl.http_get(path)

    with pytest.raises(gitlab.exceptions.GitlabHttpError) as raised:
        await with_gitlab(server, scenario, token)
    assert raised.value.response_code == code
    assert raised.value.error_message == message


async def test_missing_settings_surface_as_404(server, world) -> None:
    project = await world.project()

    def scenario(gl: gitlab.Gitlab) -> Any:
        return gl.http_patch(f"/projects/{project['id']}/error_tracking/settings", post_data={"active": True})

    with pytest.raises(gitlab.exceptions.GitlabHttpError) as raised:
        await with_gitlab(server, scenario)
    assert (raised.value.response_code, raised.value.error_message) == (404, "404 Error Tracking Setting Not Found")


async def test_bad_token_is_an_authentication_error(server, world) -> None:
    def scenario(gl: gitlab.Gitlab) -> Any:
        gl.auth()
        return gl.user

    with pytest.raises(gitlab.exceptions.GitlabAuthenticationError) as raised:
        await with_gitlab(server, scenario, "glpat-this-token-does-not-exist")
    assert raised.value.response_code == 401


async def test_gitlab_auth_reads_the_current_user(server) -> None:
    def scenario(gl: gitlab.Gitlab) -> tuple[str, bool]:
        gl.auth()
        return gl.user.username, gl.user.is_admin

    # The user's web_url uses the configured external URL (errgate.test), not the loopback address.
    assert await with_gitlab(server, scenario, keep_base_url=True) == ("root", True)
