"""The README's shell blocks as written: the test command is the one .ci/run runs, and the
walk-through and the command-line example work pasted into bash, with errgate running or not."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import orjson

from tests.conftest import fresh_database
from tests.faults.helpers import wait_until
from tests.process import errgate_process, free_port
from tests.process import errgate_env
from tests.test_cli import Run

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def sh_blocks(after: str) -> list[str]:
    """The ```sh blocks of the README from the first line that starts with ``after`` on."""
    start = next(m.start() for m in re.finditer(r"^.*$", README, re.MULTILINE) if m.group().startswith(after))
    return re.findall(r"^```sh\n(.*?)^```$", README[start:], re.MULTILINE | re.DOTALL)


WALK_THROUGH = sh_blocks("## Walk-through with curl")[0]
CLI_EXAMPLE = sh_blocks("The same operations from the command line")[0]


def test_the_test_command_is_the_one_ci_runs() -> None:
    run_it, test_it = sh_blocks("## Run it, test it")[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_it.strip() == ci.split("# The README's test command:\n", 1)[1].splitlines()[0]
    assert run_it.strip().endswith("&& errgate serve") and run_it.startswith("python3 -m venv .venv && ")


def checkout_with_this_venv(path: Path) -> Path:
    """A directory whose ``.venv/bin/activate`` puts this interpreter's scripts (errgate, python) on PATH."""
    bin_dir = path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(f'PATH="{Path(sys.executable).parent}:$PATH"\n')
    return path


@contextlib.asynccontextmanager
async def pasted(block: str, cwd: Path, env: dict[str, str]) -> AsyncIterator[Run]:
    """Run ``block`` with bash (stopping at the first failing command) in a process group of its
    own; on exit, stop whatever it left running in the background (an errgate it started)."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-e", "-c", block, cwd=cwd, env=env, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
        yield Run(process.returncode, stdout.decode(), stderr.decode())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        await wait_until(lambda: not group_alive(process.pid), 30, "the block's processes to exit")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def replies(run: Run) -> list[Any]:
    """Each line of output as JSON; none of them an error body (GitLab's or Relay's)."""
    assert run.code == 0 and run.stderr == "", run
    bodies = [orjson.loads(line) for line in run.stdout.splitlines()]
    errors = [b for b in bodies if isinstance(b, dict) and set(b) & {"message", "error", "detail"}]
    assert not errors, run.stdout
    return bodies


def check_walk_through(run: Run, port: int) -> None:
    project, alice, token, member, settings, key, keys = replies(run)
    assert (project["path_with_namespace"], alice["username"], member["access_level"]) == ("group/app", "alice", 40)
    assert token["user_id"] == alice["id"] and token["token"].startswith("glpat-")
    assert (settings["active"], settings["integrated"]) == (True, True)
    dsn = f"@127.0.0.1:{port}/api/v4/error_tracking/collector/{project['id']}"
    assert len(keys) == 2 and key in keys and all(dsn in k["sentry_dsn"] for k in keys)


async def test_walk_through_starts_errgate_and_the_cli_example_follows(base_database_url, tmp_path) -> None:
    cwd = checkout_with_this_venv(tmp_path)
    port = free_port()
    async with fresh_database(base_database_url, "errgate_readme") as url:
        # The errgate the block starts keeps its workers' metrics files under the data directory.
        env = errgate_env(DATABASE_URL=url, ERRGATE_PORT=str(port), ERRGATE_DATA_DIR=str(tmp_path / "data"))
        async with pasted(WALK_THROUGH, cwd, env) as run:
            check_walk_through(run, port)
            assert (cwd / "errgate.log").exists(), "nothing answered, so the block starts errgate"
            # The command-line example in the same shell afterwards: no name taken by the walk-through.
            async with pasted(CLI_EXAMPLE, cwd, env) as cli:
                carol, bob, project, member, token, migrated = replies(cli)
        assert (carol["is_admin"], bob["username"], project["path_with_namespace"]) == (True, "bob", "group/web")
        assert (member["id"], member["access_level"], token["user_id"]) == (bob["id"], 40, carol["id"])
        assert migrated["applied"] == []


async def test_walk_through_uses_the_errgate_already_running(base_database_url, tmp_path) -> None:
    cwd = checkout_with_this_venv(tmp_path)
    port = free_port()
    async with fresh_database(base_database_url, "errgate_readme") as url:
        # The first command's server: its own root token, which the block does not know.
        async with errgate_process(url, tmp_path / "first.log", port=port):
            async with pasted(WALK_THROUGH, cwd, errgate_env(DATABASE_URL=url, ERRGATE_PORT=str(port))) as run:
                check_walk_through(run, port)
        assert not (cwd / "errgate.log").exists(), "errgate answered, so the block must not start another"
