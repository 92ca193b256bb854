"""Minimal end-to-end check of the management plane over real HTTP."""

from tests.conftest import ROOT_TOKEN


async def test_root_token_reaches_current_user(api) -> None:
    reply = await api.get("/user", token=ROOT_TOKEN)
    assert reply.status == 200
    assert reply.body["username"] == "root" and reply.body["is_admin"] is True


async def test_world_factories(api, world) -> None:
    owner = await world.user("owner")
    token = await world.token(owner)
    project = await world.project("group/sub/app", owner)
    reply = await api.get("/projects/group%2Fsub%2Fapp", token=token)
    assert reply.status == 200, reply.body
    assert reply.body["id"] == project["id"]
