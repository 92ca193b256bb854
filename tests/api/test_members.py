"""Project members in GitLab's shapes: listed, added, updated and removed, with the rules on who may grant what."""

from __future__ import annotations

import pytest

from tests.api.helpers import FORBIDDEN, PROJECT_NOT_FOUND, members_of
from tests.conftest import ROOT_TOKEN


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
