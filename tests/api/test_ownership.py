"""Who owns what: projects only in one's personal namespace (administrators anywhere), and never a project without an Owner."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.helpers import FORBIDDEN, MAINTAINER, OWNER
from tests.conftest import ROOT_TOKEN

NAMESPACE_NOT_VALID = {"message": {"namespace": ["is not valid"]}}


async def project_paths(pool) -> set[str]:
    return {r["path_with_namespace"] for r in await pool.fetch("select path_with_namespace from projects")}


async def levels_of(pool, project_id: int) -> dict[int, int]:
    rows = await pool.fetch("select user_id, access_level from members where project_id = $1", project_id)
    return {r["user_id"]: r["access_level"] for r in rows}


def member_url(project, user) -> str:
    return f"/projects/{project['id']}/members/{user['id']}"


# --- creating projects -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"path_with_namespace": "root/app"},
        {"path_with_namespace": "bob/app"},
        {"path_with_namespace": "group/app"},
        {"path_with_namespace": "alice/sub/app"},
        {"path_with_namespace": "alicex/app"},
        {"name": "app", "namespace": "group"},
        {"path": "app", "namespace_path": "bob"},
        {"path": "app", "namespace_id": "group/sub"},
    ],
    ids=["root", "other-user", "group", "below-own", "prefix-of-other", "namespace", "namespace_path", "namespace_id"],
)
async def test_user_cannot_create_a_project_outside_their_personal_namespace(api, world, pool, body) -> None:
    alice = await world.user("alice")
    await world.user("bob")
    reply = await api.post("/projects", token=await world.token(alice), json=body)
    assert (reply.status, reply.body) == (400, NAMESPACE_NOT_VALID)
    assert await project_paths(pool) == set()


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"path_with_namespace": "alice/app"}, "alice/app"),
        ({"path_with_namespace": "Alice/app"}, "Alice/app"),
        ({"name": "app", "namespace": "alice"}, "alice/app"),
        ({"path": "app"}, "alice/app"),
    ],
)
async def test_user_creates_a_project_in_their_personal_namespace(api, world, pool, body, expected) -> None:
    alice = await world.user("alice")
    reply = await api.post("/projects", token=await world.token(alice), json=body)
    assert (reply.status, reply.body["path_with_namespace"]) == (201, expected)
    assert await levels_of(pool, reply.body["id"]) == {alice["id"]: OWNER}


async def test_an_invalid_path_is_reported_before_the_namespace(api, world) -> None:
    reply = await api.post("/projects", token=await world.token(await world.user("alice")), json={"path": "a b"})
    assert reply.status == 400 and "path" in reply.body["message"]


@pytest.mark.parametrize("path", ["group/sub/app", "bob/app", "root/app"])
@pytest.mark.parametrize("who", ["root", "another-admin"])
async def test_administrator_creates_a_project_anywhere(api, world, pool, path, who) -> None:
    await world.user("bob")
    token = ROOT_TOKEN if who == "root" else await world.token(await world.user("ada", admin=True))
    reply = await api.post("/projects", token=token, json={"path_with_namespace": path})
    assert (reply.status, reply.body["path_with_namespace"]) == (201, path)
    assert await project_paths(pool) == {path}


# --- the last Owner ----------------------------------------------------------------------------


async def token_of(world, who: str, owner) -> str:
    """The token of the Owner themselves, of root, or of an administrator who is not a member."""
    if who == "the-owner":
        return await world.token(owner)
    if who == "root":
        return ROOT_TOKEN
    return await world.token(await world.user(admin=True))


async def change_level(api, project, user, level: int | None, token: str):
    """PUT the member to ``level``, or DELETE them when it is None."""
    if level is None:
        return await api.delete(member_url(project, user), token=token)
    return await api.put(member_url(project, user), token=token, json={"access_level": level})


@pytest.mark.parametrize("level", [MAINTAINER, 10, None], ids=["maintainer", "guest", "removed"])
@pytest.mark.parametrize("who", ["the-owner", "root", "another-admin"])
async def test_nobody_takes_the_owner_role_from_the_last_owner(api, world, pool, level, who) -> None:
    alice = await world.user("alice")
    project = await world.project("alice/app", alice)
    reply = await change_level(api, project, alice, level, await token_of(world, who, alice))
    assert (reply.status, reply.body) == (403, FORBIDDEN)
    assert await levels_of(pool, project["id"]) == {alice["id"]: OWNER}


async def test_last_owner_keeps_the_role_when_set_to_owner_again(api, world, pool) -> None:
    alice = await world.user("alice")
    project = await world.project("alice/app", alice)
    reply = await change_level(api, project, alice, OWNER, await world.token(alice))
    assert (reply.status, reply.body["access_level"]) == (200, OWNER)


@pytest.mark.parametrize("level", [MAINTAINER, None], ids=["demoted", "removed"])
async def test_ownership_passes_on_once_there_is_another_owner(api, world, pool, level) -> None:
    alice = await world.user("alice")
    bob = await world.user("bob")
    project = await world.project("alice/app", alice)
    alice_token = await world.token(alice)
    added = await api.post(
        f"/projects/{project['id']}/members", token=alice_token, json={"user_id": bob["id"], "access_level": OWNER}
    )
    assert added.status == 201
    # Alice steps down (or leaves); Bob, now the only Owner, cannot.
    assert (await change_level(api, project, alice, level, alice_token)).status == (204 if level is None else 200)
    bob_token = await world.token(bob)
    refused = await change_level(api, project, bob, MAINTAINER, bob_token)
    assert (refused.status, refused.body) == (403, FORBIDDEN)
    expected = {bob["id"]: OWNER} | ({} if level is None else {alice["id"]: MAINTAINER})
    assert await levels_of(pool, project["id"]) == expected


async def test_a_project_without_owner_still_has_its_members_managed(api, world, pool) -> None:
    """Projects made without an Owner (``errgate project create`` without ``--owner``) are not locked."""
    project = await world.project("group/app")
    bob = await world.user("bob")
    await world.member(project, bob, MAINTAINER)
    assert (await change_level(api, project, bob, 10, ROOT_TOKEN)).status == 200
    assert (await change_level(api, project, bob, None, ROOT_TOKEN)).status == 204


@pytest.mark.parametrize("kind", ["demote", "remove", "mixed"])
async def test_concurrent_changes_never_leave_a_project_without_owner(api, world, pool, kind) -> None:
    """Both Owners step down (or leave) at the same moment, many times over: each time exactly
    one of them succeeds and the other stays Owner."""
    levels = {"demote": (MAINTAINER, MAINTAINER), "remove": (None, None), "mixed": (MAINTAINER, None)}[kind]
    alice = await world.user("alice")
    bob = await world.user("bob")
    tokens = (await world.token(alice), await world.token(bob))
    for round_ in range(15):
        project = await world.project(f"alice/app{round_}", alice)
        await world.member(project, bob, OWNER)
        replies = await asyncio.gather(
            change_level(api, project, alice, levels[0], tokens[0]),
            change_level(api, project, bob, levels[1], tokens[1]),
        )
        statuses = sorted(r.status for r in replies)
        assert statuses[0] in (200, 204) and statuses[1] == 403, (round_, statuses)
        owners = [u for u, level in (await levels_of(pool, project["id"])).items() if level == OWNER]
        assert len(owners) == 1, round_
