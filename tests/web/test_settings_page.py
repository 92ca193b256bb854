"""The project settings page over real HTTP: Maintainers turn tracking on and off and manage
client keys, through the same SQL as the REST API; other roles get 404 or 403."""

from __future__ import annotations

import re

import pytest

from tests.api.helpers import DEVELOPER, GUEST, MAINTAINER, OWNER, REPORTER

SETTINGS = "/group/sub/app/-/error_tracking/settings"


@pytest.fixture
async def project(world):
    return await world.project("group/sub/app", await world.user("owner"))


async def signed_in_with_role(client, world, project, level):
    user = await world.user()
    await world.member(project, user, level)
    await client.sign_in(await world.token(user))


async def test_a_maintainer_turns_tracking_on_and_gets_a_dsn_with_a_snippet(client, world, project, pool, api):
    await signed_in_with_role(client, world, project, MAINTAINER)
    page = await client.get(SETTINGS)
    assert page.status == 200 and "Turn on" in page.text and "No client key yet" in page.text
    page = await client.submit(SETTINGS, SETTINGS, {"enabled": "true"})
    assert page.status == 200 and page.url.endswith(SETTINGS) and "Turn off" in page.text
    row = await pool.fetchrow("select enabled, integrated from project_error_tracking_settings where project_id = $1",
                              project["id"])
    assert row["enabled"] and row["integrated"]
    keys = await pool.fetch("select public_key from error_tracking_client_keys where project_id = $1", project["id"])
    dsn = f"http://{keys[0]['public_key']}@errgate.test:8080/api/v4/error_tracking/collector/{project['id']}"
    assert "<code class=\"dsn\" id=\"dsn-" in page.text and dsn in page.text
    assert f'sentry_sdk.init(dsn="{dsn}")' in page.text
    assert re.search(r'<button type="button" class="copy" data-copy="dsn-\d+" hidden>', page.text)
    page = await client.submit(SETTINGS, SETTINGS, {"enabled": "false"})
    assert "Turn on" in page.text
    assert not await pool.fetchval("select enabled from project_error_tracking_settings where project_id = $1", project["id"])


async def test_client_keys_are_created_and_deleted(client, world, project, pool):
    await signed_in_with_role(client, world, project, OWNER)
    page = await client.submit(SETTINGS, SETTINGS + "/client_keys", {})
    page = await client.submit(SETTINGS, SETTINGS + "/client_keys", {})
    ids = [r["id"] for r in await pool.fetch("select id from error_tracking_client_keys where project_id = $1 order by id",
                                              project["id"])]
    assert len(ids) == 2 and page.text.count('class="dsn"') == 2
    page = await client.submit(SETTINGS, f"{SETTINGS}/client_keys/{ids[0]}/delete", {})
    assert page.status == 200 and page.text.count('class="dsn"') == 1
    assert [r["id"] for r in await pool.fetch("select id from error_tracking_client_keys")] == ids[1:]


async def test_a_key_of_another_project_is_not_deleted(client, world, project, pool):
    await signed_in_with_role(client, world, project, MAINTAINER)
    other = await world.project("other/app", await world.user())
    key = await pool.fetchval(
        "insert into error_tracking_client_keys (project_id, public_key) values ($1, 'glet_x') returning id", other["id"]
    )
    page = await client.submit(SETTINGS, f"{SETTINGS}/client_keys/{key}/delete", {})
    assert page.status == 404 and "<html" in page.text
    assert await pool.fetchval("select count(*) from error_tracking_client_keys") == 1


@pytest.mark.parametrize("level", [GUEST, REPORTER, DEVELOPER])
async def test_below_maintainer_the_settings_page_is_not_found(client, world, project, level):
    await signed_in_with_role(client, world, project, level)
    page = await client.get(SETTINGS)
    assert page.status == 404 and "Project Not Found" in page.text
    assert page.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("level", [REPORTER, DEVELOPER])
async def test_below_maintainer_settings_forms_are_forbidden(client, world, project, pool, level):
    await signed_in_with_role(client, world, project, level)
    home = await client.get("/")
    page = await client.post(SETTINGS, {"_csrf": home.csrf, "enabled": "true"})
    assert page.status == 403
    page = await client.post(SETTINGS + "/client_keys", {"_csrf": home.csrf})
    assert page.status == 403
    assert await pool.fetchval("select count(*) from error_tracking_client_keys") == 0


async def test_a_guest_posting_a_form_learns_nothing(client, world, project, pool):
    await signed_in_with_role(client, world, project, GUEST)
    home = await client.get("/")
    page = await client.post(SETTINGS, {"_csrf": home.csrf, "enabled": "true"})
    assert page.status == 404


async def test_a_non_member_and_a_missing_project_are_the_same_404(client, world, project):
    await client.sign_in(await world.token(await world.user()))
    hidden = await client.get(SETTINGS)
    missing = await client.get("/no/such/-/error_tracking/settings")
    assert hidden.status == missing.status == 404
    assert hidden.text == missing.text


async def test_forms_without_the_csrf_token_are_refused_before_anything_changes(client, world, project, pool):
    await signed_in_with_role(client, world, project, OWNER)
    for action in (SETTINGS, SETTINGS + "/client_keys"):
        page = await client.post(action, {"enabled": "true"})
        assert page.status == 403 and "CSRF" in page.text
    other = await client.get("/")
    wrong = other.csrf[:-1] + ("1" if other.csrf.endswith("0") else "0")
    assert (await client.post(SETTINGS, {"_csrf": wrong, "enabled": "true"})).status == 403
    assert await pool.fetchval("select count(*) from project_error_tracking_settings") == 0


async def test_the_token_of_one_session_does_not_work_for_another(client, other_client, world, project, pool):
    await signed_in_with_role(client, world, project, OWNER)
    await other_client.sign_in(await world.token(await world.user("eve")))
    csrf_of_eve = (await other_client.get("/")).csrf
    page = await client.post(SETTINGS, {"_csrf": csrf_of_eve, "enabled": "true"})
    assert page.status == 403


async def test_an_administrator_sees_every_project(client, world, project):
    await client.sign_in(await world.token(await world.user("admin", admin=True)))
    assert (await client.get(SETTINGS)).status == 200
