"""The ``errgate`` command: serve, migrate, and the identity operations for scripts (JSON on stdout)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date
from typing import Any, Awaitable, Callable

import asyncpg
import orjson

from app import identity
from app.api import entities
from app.auth import SCOPES
from app.config import ConfigError, Settings
from app.db import migrations, projects
from app.identity import ACCESS_LEVELS
from app.ids import parse_ref
from app.logs import setup_logging
from app.problems import HTTPProblem
from app.startup import prepared_database
from app.version import installed_version


def _access_level(value: str) -> int:
    if value.lower() in ACCESS_LEVELS:
        return ACCESS_LEVELS[value.lower()]
    if value.isdigit() and int(value) in ACCESS_LEVELS.values():
        return int(value)
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(ACCESS_LEVELS)} or 10-50, got {value!r}")


# --help is plain text: argparse prints these as they are.
DESCRIPTION = "errgate: serve, migrate, and the identity operations for scripts (JSON on stdout)."
EXAMPLES = """examples:
  errgate serve
  errgate user create alice --admin
  errgate user create bob
  errgate project create group/app --owner alice
  errgate member add group/app bob --access-level maintainer
  errgate token create alice --scope api

Configuration comes from the environment (DATABASE_URL, ERRGATE_*); see README.md."""


def version() -> str:
    return installed_version() or "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errgate", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"errgate {version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service (migrates first)")
    serve.add_argument("--workers", type=int, help="worker processes (default ERRGATE_WORKERS)")
    commands.add_parser("migrate", help="apply pending SQL migrations and exit")

    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    user_create = user.add_parser("create", help="create a user")
    user_create.add_argument("username")
    user_create.add_argument("--name", help="display name (default: the username)")
    user_create.add_argument("--email")
    user_create.add_argument("--admin", action="store_true", help="make the user an administrator")

    project = commands.add_parser("project", help="manage projects").add_subparsers(dest="action", required=True)
    project_create = project.add_parser("create", help="create a project such as group/app")
    project_create.add_argument("path_with_namespace")
    project_create.add_argument("--name")
    project_create.add_argument("--owner", help="username that becomes the project's Owner")

    member = commands.add_parser("member", help="manage project members").add_subparsers(dest="action", required=True)
    member_add = member.add_parser("add", help="add a user to a project")
    member_add.add_argument("project", help="project id or path such as group/app")
    member_add.add_argument("user", help="username or user id")
    member_add.add_argument("--access-level", type=_access_level, default=ACCESS_LEVELS["maintainer"])

    token = commands.add_parser("token", help="manage personal access tokens").add_subparsers(
        dest="action", required=True
    )
    token_create = token.add_parser("create", help="create a token and print it once")
    token_create.add_argument("user", help="username or user id")
    token_create.add_argument("--scope", action="append", choices=SCOPES, help="api (default) or read_api")
    token_create.add_argument("--name", default="errgate-cli")
    token_create.add_argument("--expires-at", type=date.fromisoformat, help="YYYY-MM-DD")
    return parser


async def _user_create(pool: asyncpg.Pool, args: argparse.Namespace, settings: Settings) -> Any:
    row = await identity.create_user(pool, args.username, args.name or args.username, args.email, args.admin)
    return entities.user(row, settings.external_url, private=True)


async def _project_create(pool: asyncpg.Pool, args: argparse.Namespace, settings: Settings) -> Any:
    owner = await identity.require_user(pool, parse_ref(args.owner)) if args.owner else None
    row = await identity.create_project(pool, args.path_with_namespace, args.name, None, owner and owner["id"])
    return entities.project(row, settings.external_url)


async def _member_add(pool: asyncpg.Pool, args: argparse.Namespace, settings: Settings) -> Any:
    user = await identity.require_user(pool, parse_ref(args.user))
    project = await projects.project_for_user(pool, parse_ref(args.project), user["id"])
    if project is None:
        raise HTTPProblem.gitlab(404, "404 Project Not Found")
    row = await identity.add_member(pool, project["id"], user["id"], args.access_level)
    return entities.member(row, settings.external_url)


async def _token_create(pool: asyncpg.Pool, args: argparse.Namespace, settings: Settings) -> Any:
    user = await identity.require_user(pool, parse_ref(args.user))
    row, token = await identity.create_token(pool, user["id"], args.name, args.scope or ["api"], args.expires_at)
    return entities.personal_access_token(row, token)


Operation = Callable[[asyncpg.Pool, argparse.Namespace, Settings], Awaitable[Any]]
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("user", "create"): _user_create,
    ("project", "create"): _project_create,
    ("member", "add"): _member_add,
    ("token", "create"): _token_create,
}


async def _with_database(settings: Settings, operation: Operation | None, args: argparse.Namespace) -> Any:
    async with prepared_database(settings, 2) as database:
        if operation is None:
            return {"applied": [m.version for m in database.applied], "version": migrations.expected_version()}
        return await operation(database.pool, args, settings)


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    # A one-shot command's output is its JSON; its progress (the embedded server starting, each
    # migration applied) is logged only when ERRGATE_LOG_LEVEL asks for it.
    quiet = args.command != "serve" and "ERRGATE_LOG_LEVEL" not in os.environ
    setup_logging("warning" if quiet else settings.log_level)
    if args.command == "serve":
        from app.workers import serve_forever

        return serve_forever(settings, args.workers or settings.workers)
    operation = None if args.command == "migrate" else OPERATIONS[(args.command, args.action)]
    try:
        result = asyncio.run(_with_database(settings, operation, args))
    except HTTPProblem as problem:
        sys.stderr.write(orjson.dumps({"status": problem.status, **problem.body}).decode() + "\n")
        return 1
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        # A bad value, a database that does not answer, a port in use: one line naming the variable.
        print(f"errgate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before serving started (the server itself handles SIGINT)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
