"""``ERRGATE_ROOT_TOKEN`` rotation: at start, the tokens made from its previous values stop working."""

from __future__ import annotations

import shutil
from pathlib import Path

import aiohttp
import asyncpg

from app.auth import token_digest
from app.db import migrations, users
from tests.api.helpers import REVOKED
from tests.conftest import ROOT_TOKEN, Api, fresh_database

TOKEN_A = "glpat-root-token-value-A-0123456789"
TOKEN_B = "glpat-root-token-value-B-0123456789"


async def current_user(server, token: str):
    async with aiohttp.ClientSession() as session:
        return await Api(session, server.url).get("/user", token=token)


async def test_a_changed_root_token_revokes_the_previous_one(start_server) -> None:
    first = await start_server(root_token=TOKEN_A)
    assert (await current_user(first, TOKEN_A)).body["username"] == "root"

    second = await start_server(root_token=TOKEN_B)
    for server in (first, second):  # every replica answers from the same database
        refused = await current_user(server, TOKEN_A)
        assert (refused.status, refused.body) == (401, REVOKED)
        accepted = await current_user(server, TOKEN_B)
        assert (accepted.status, accepted.body["username"], accepted.body["is_admin"]) == (200, "root", True)
    refused = await current_user(second, ROOT_TOKEN)  # the value the suite's own start used
    assert (refused.status, refused.body) == (401, REVOKED)


async def test_setting_a_previous_value_again_brings_it_back(start_server) -> None:
    await start_server(root_token=TOKEN_A)
    await start_server(root_token=TOKEN_B)
    server = await start_server(root_token=TOKEN_A)
    assert (await current_user(server, TOKEN_A)).status == 200
    assert (await current_user(server, TOKEN_B)).status == 401


async def test_an_unset_root_token_changes_nothing(start_server) -> None:
    await start_server(root_token=TOKEN_A)
    server = await start_server(root_token=None)
    assert (await current_user(server, TOKEN_A)).status == 200


async def test_the_same_value_at_every_start_keeps_working(start_server, pool) -> None:
    for _ in range(2):
        server = await start_server(root_token=TOKEN_A)
        assert (await current_user(server, TOKEN_A)).status == 200
    assert await pool.fetchval("select count(*) from personal_access_tokens where from_root_token") == 2  # A, ROOT_TOKEN


async def test_root_s_other_tokens_survive_a_rotation(start_server, world, pool) -> None:
    root = await pool.fetchrow("select * from users where username = 'root'")
    own = await world.token(root)
    other_admin = await world.token(await world.user(admin=True))
    server = await start_server(root_token=TOKEN_B)
    assert (await current_user(server, own)).status == 200
    assert (await current_user(server, other_admin)).status == 200


async def test_the_migration_marks_root_tokens_made_before_it(base_database_url, tmp_path: Path, monkeypatch) -> None:
    """Tokens that errgate made from ``ERRGATE_ROOT_TOKEN`` before the marking column existed are
    known by their name on root's account, and are revoked by the next change of the value."""
    before = tmp_path / "sql"
    before.mkdir()
    for migration in migrations.discover():
        if migration.version < 5:
            shutil.copy(migration.path, before / migration.path.name)
    async with fresh_database(base_database_url, "errgate_root_token") as url:
        conn = await asyncpg.connect(url)
        try:
            with monkeypatch.context() as patched:
                patched.setattr(migrations, "sql_dir", lambda: before)
                await migrations.migrate(conn)
            root = await users.create_user(conn, "root", "Administrator", None, True)
            alice = await users.create_user(conn, "alice", "Alice", None, False)
            made = {
                "root's setting": (root["id"], "ERRGATE_ROOT_TOKEN", TOKEN_A),
                "root's own": (root["id"], "deploy", "glpat-root-own-token-0123456789"),
                "alice's": (alice["id"], "ERRGATE_ROOT_TOKEN", "glpat-alice-token-0123456789"),
            }
            for user_id, name, token in made.values():
                await users.create_token(conn, user_id, name, token_digest(token), ["api"], None)

            await migrations.migrate(conn)
            await users.ensure_root(conn, token_digest(TOKEN_B))

            revoked = {
                what: await conn.fetchval(
                    "select revoked from personal_access_tokens where token_digest = $1", token_digest(token)
                )
                for what, (_, _, token) in made.items()
            }
            assert revoked == {"root's setting": True, "root's own": False, "alice's": False}
        finally:
            await conn.close()
