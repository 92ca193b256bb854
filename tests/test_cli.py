"""The ``errgate`` command run for real (``python -m app``) against the test database: JSON in, JSON out."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from app.cli import main
from tests.conftest import Api
from tests.process import errgate_env, free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return orjson.loads(self.stdout)

    def error(self) -> Any:
        """The last stderr line (log lines may come before it) as JSON."""
        return orjson.loads(self.stderr.strip().splitlines()[-1])


async def errgate(*args: str, env: dict[str, str]) -> Run:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    return Run(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture
def cli(database_url: str, pool):
    """``await cli("user", "create", "alice")`` on a clean test database (``pool`` empties the tables)."""
    env = errgate_env(DATABASE_URL=database_url)

    async def run(*args: str) -> Run:
        return await errgate(*args, env=env)

    return run


async def test_user_create(cli, pool) -> None:
    run = await cli("user", "create", "alice", "--admin", "--name", "Alice A", "--email", "alice@example.com")
    assert run.code == 0, run.stderr
    body = run.json()
    assert (body["username"], body["name"], body["email"]) == ("alice", "Alice A", "alice@example.com")
    assert body["is_admin"] is True
    row = await pool.fetchrow("select id, is_admin from users where username = 'alice'")
    assert (row["id"], row["is_admin"]) == (body["id"], True)

    run = await cli("user", "create", "bob")
    assert run.code == 0, run.stderr
    assert (run.json()["name"], run.json()["is_admin"]) == ("bob", False)


async def test_duplicate_user_is_exit_1_with_json_error(cli, world, pool) -> None:
    await world.user("alice")
    run = await cli("user", "create", "alice")
    assert run.code == 1
    assert run.stdout == ""
    assert run.error() == {"status": 409, "message": "Username has already been taken"}
    assert await pool.fetchval("select count(*) from users where username = 'alice'") == 1


async def test_project_create_and_member_add(cli, world, pool) -> None:
    alice = await world.user("alice")
    bob = await world.user("bob")

    run = await cli("project", "create", "group/app", "--owner", "alice")
    assert run.code == 0, run.stderr
    project = run.json()
    assert (project["path_with_namespace"], project["path"]) == ("group/app", "app")
    members = await pool.fetch("select user_id, access_level from members where project_id = $1", project["id"])
    assert [(m["user_id"], m["access_level"]) for m in members] == [(alice["id"], 50)]

    run = await cli("member", "add", "group/app", "bob", "--access-level", "maintainer")
    assert run.code == 0, run.stderr
    assert (run.json()["id"], run.json()["access_level"]) == (bob["id"], 40)
    assert await pool.fetchval(
        "select access_level from members where project_id = $1 and user_id = $2", project["id"], bob["id"]
    ) == 40


async def test_lookup_and_argument_errors(cli, world) -> None:
    """Independent failures, run side by side to keep the suite fast."""
    await world.user("bob")
    missing_project, bad_level, missing_user = await asyncio.gather(
        cli("member", "add", "group/missing", "bob"),
        cli("member", "add", "group/app", "bob", "--access-level", "boss"),
        cli("project", "create", "group/app", "--owner", "nobody"),
    )
    assert (missing_project.code, missing_project.error()) == (1, {"status": 404, "message": "404 Project Not Found"})
    assert bad_level.code == 2 and "--access-level" in bad_level.stderr
    assert (missing_user.code, missing_user.error()) == (1, {"status": 404, "message": "404 User Not Found"})


async def test_token_create_prints_a_working_token_once(cli, world, pool, server) -> None:
    alice = await world.user("alice", admin=True)
    await world.project("group/app", alice)
    run = await cli("token", "create", "alice", "--scope", "read_api")
    assert run.code == 0, run.stderr
    body = run.json()
    token = body["token"]
    assert token.startswith("glpat-")
    assert (body["scopes"], body["user_id"]) == (["read_api"], alice["id"])
    stored = await pool.fetchrow("select token_digest from personal_access_tokens where id = $1", body["id"])
    assert stored["token_digest"] == hashlib.sha256(token.encode()).digest()

    async with aiohttp.ClientSession() as session:
        api = Api(session, server.url)
        settings = "/projects/group%2Fapp/error_tracking/settings"
        assert (await api.get("/user", token=token)).body["username"] == "alice"
        assert (await api.get(settings, token=token)).status == 404  # read allowed; nothing configured yet
        refused = await api.put(settings, token=token, params={"active": "true", "integrated": "true"})
        assert refused.status == 403 and refused.body["error"] == "insufficient_scope"


async def test_token_create_defaults_to_api_scope(cli, world) -> None:
    await world.user("alice")
    run = await cli("token", "create", "alice")
    assert run.code == 0, run.stderr
    assert run.json()["scopes"] == ["api"]


async def test_migrate_prints_json(cli) -> None:
    run = await cli("migrate")
    assert run.code == 0, run.stderr
    body = run.json()
    assert body["applied"] == []  # the test database is already migrated
    assert isinstance(body["version"], int) and body["version"] >= 1


# Nothing listens on port 1: a start that got past its checks would fail there instead of touching a real database.
CLOSED = "postgresql://postgres@127.0.0.1:1/none"


async def test_a_start_that_cannot_work_stops_with_one_line_naming_the_variable(tmp_path) -> None:
    """A bad value (every variable's validation is covered in test_config.py), a database that does
    not answer, a port in use: exit 2 and one line on stderr that names the variable to fix."""
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = str(busy.getsockname()[1])
        cases = [
            ("ERRGATE_PORT", ["migrate"], {"ERRGATE_PORT": "abc"}),
            ("ERRGATE_PORT", ["serve"], {"ERRGATE_PORT": "abc"}),
            ("DATABASE_URL", ["serve"], {"DATABASE_URL": "mysql://x"}),
            ("DATABASE_URL", ["serve"], {}),
            ("DATABASE_URL", ["migrate"], {}),
            ("DATABASE_URL", ["serve"], {"DATABASE_URL": "postgresql://postgres@nosuchhost.invalid/none"}),
            ("ERRGATE_PORT", ["serve"], {"ERRGATE_PORT": busy_port}),
            ("ERRGATE_METRICS_PORT", ["serve"], {"ERRGATE_METRICS_PORT": busy_port}),
            ("ERRGATE_HOST", ["serve"], {"ERRGATE_HOST": "nosuchhost.invalid"}),
            ("ERRGATE_DATA_DIR", ["serve"], {"DATABASE_URL": "", "ERRGATE_DATA_DIR": str(not_a_directory)}),
            ("ERRGATE_DATA_DIR", ["serve", "--workers", "2"], {"ERRGATE_DATA_DIR": str(not_a_directory)}),
        ]
        base = errgate_env(DATABASE_URL=CLOSED, ERRGATE_DATA_DIR=str(tmp_path), ERRGATE_PORT=str(free_port()))
        runs = await asyncio.gather(*(errgate(*args, env={**base, **env}) for _, args, env in cases))
    for (variable, args, env), run in zip(cases, runs):
        assert (run.code, run.stdout) == (2, ""), (args, env, run.stderr)
        assert len(run.stderr.splitlines()) == 1, (args, env, run.stderr)
        assert run.stderr.startswith(f"errgate: {variable}: "), (args, env, run.stderr)


def test_version_is_the_package_version(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert (exited.value.code, capsys.readouterr().out) == (0, f"errgate {metadata.version('errgate')}\n")


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["user", "create"], ["project", "create"],
                                     ["member", "add"], ["token", "create"]])
def test_help_is_plain_text(command, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and out.startswith("usage: errgate")
    assert not any(markup in out for markup in ("``", "::", ":class:")), out


async def test_installed_console_script() -> None:
    """``errgate`` on PATH (pyproject's [project.scripts]) is the same command."""
    script = Path(sys.executable).with_name("errgate")
    process = await asyncio.create_subprocess_exec(
        str(script), "--help", env=errgate_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    assert all(command in stdout.decode() for command in ("serve", "migrate", "user", "project", "member", "token"))
