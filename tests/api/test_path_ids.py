"""Ids in REST paths: only ASCII digits within PostgreSQL's bigint name a row. Anything else is
GitLab's 404 for that resource (never a 500, never another row); a project path is decoded once."""

from __future__ import annotations

import dataclasses
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import pytest

from app.ids import parse_id, parse_ref
from app.db import error_tracking
from tests.api.helpers import DEVELOPER, KEY_NOT_FOUND, PROJECT_NOT_FOUND
from tests.api.test_errors import add_error
from tests.conftest import ROOT_TOKEN

BIGINT_MAX = 2**63 - 1


def in_digits_from(zero: int) -> Callable[[int], str]:
    """The id written with another script's digits, which ``str.isdigit`` and ``int`` accept too."""
    return lambda number: quote("".join(chr(zero + int(d)) for d in str(number)))


# Each a way to write something that is not the id ``n`` of an existing row.
NOT_IDS: dict[str, Callable[[int], str]] = {
    "superscript-two": lambda n: "%C2%B2",
    "arabic-indic-two": lambda n: "%D9%A2",
    "arabic-indic-id": in_digits_from(0x0660),
    "fullwidth-id": in_digits_from(0xFF10),
    "5000-digits": lambda n: "9" * 5000,
    "bigint-max": lambda n: str(BIGINT_MAX),
    "bigint-max-plus-one": lambda n: str(BIGINT_MAX + 1),
    "leading-plus": lambda n: f"+{n}",
    "minus-one": lambda n: "-1",
    "leading-space": lambda n: f"%20{n}",
}


@dataclasses.dataclass
class Target:
    """A route with a path id: ``path`` takes the id as written; ``n`` names an existing row."""

    method: str
    path: Callable[[str], str]
    n: int
    found: int
    not_found: dict[str, str]
    json: Any = None


async def project_target(world, pool) -> Target:
    project = await world.project()
    return Target("GET", lambda ref: f"/projects/{ref}", project["id"], 200, PROJECT_NOT_FOUND)


async def user_target(world, pool) -> Target:
    user = await world.user()
    return Target(
        "POST", lambda ref: f"/users/{ref}/personal_access_tokens", user["id"], 201,
        {"message": "404 User Not Found"}, {"name": "t", "scopes": ["api"]},
    )


async def member_target(world, pool) -> Target:
    project, user = await world.project(), await world.user()
    await world.member(project, user, DEVELOPER)
    return Target(
        "PUT", lambda ref: f"/projects/{project['id']}/members/{ref}", user["id"], 200,
        {"message": "404 Member Not Found"}, {"access_level": DEVELOPER},
    )


async def token_target(world, pool) -> Target:
    user = await world.user()
    await world.token(user)
    token_id = await pool.fetchval("select id from personal_access_tokens where user_id = $1", user["id"])
    return Target("DELETE", lambda ref: f"/personal_access_tokens/{ref}", token_id, 204, {"message": "404 Not found"})


async def key_target(world, pool) -> Target:
    project = await world.project()
    key = await error_tracking.create_key(pool, project["id"])
    return Target(
        "DELETE", lambda ref: f"/projects/{project['id']}/error_tracking/client_keys/{ref}", key["id"], 200,
        KEY_NOT_FOUND,
    )


async def error_target(world, pool) -> Target:
    project = await world.project()
    error_id = await add_error(pool, project["id"], "fp", minutes_ago=1)
    return Target(
        "GET", lambda ref: f"/projects/{project['id']}/error_tracking/errors/{ref}", error_id, 200,
        {"message": "404 Error Not Found"},
    )


TARGETS: dict[str, Callable[..., Awaitable[Target]]] = {
    "project": project_target,
    "user": user_target,
    "member": member_target,
    "token": token_target,
    "key": key_target,
    "error": error_target,
}


@pytest.mark.parametrize("written", NOT_IDS)
@pytest.mark.parametrize("kind", TARGETS)
async def test_what_is_not_an_id_is_that_resources_404(api, world, pool, kind: str, written: str) -> None:
    target = await TARGETS[kind](world, pool)
    reply = await api.request(target.method, target.path(NOT_IDS[written](target.n)), token=ROOT_TOKEN, json=target.json)
    assert (reply.status, reply.body) == (404, target.not_found)
    # The row is there, under its id as ASCII digits.
    reply = await api.request(target.method, target.path(str(target.n)), token=ROOT_TOKEN, json=target.json)
    assert reply.status == target.found, reply.body


async def test_a_project_path_is_decoded_once(api, world) -> None:
    await world.project("group/app")
    assert (await api.get("/projects/group%2Fapp", token=ROOT_TOKEN)).status == 200
    reply = await api.get("/projects/group%252Fapp", token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, PROJECT_NOT_FOUND)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", 1), ("007", 7), (str(BIGINT_MAX), BIGINT_MAX), ("0" * 5000 + "12", 12),
        ("", None), ("²", None), ("٢", None), ("１", None), ("9" * 5000, None), (str(BIGINT_MAX + 1), None),
        ("+1", None), ("-1", None), (" 1", None), ("1 ", None), ("1_000", None), ("0x1", None),
    ],
)
def test_parse_id(text: str, expected: int | None) -> None:
    assert parse_id(text) == expected


def test_parse_ref_is_the_id_or_else_the_text() -> None:
    assert parse_ref("42") == 42
    assert parse_ref("group/app") == "group/app"
    assert parse_ref("٤٢") == "٤٢"
    assert parse_ref(str(BIGINT_MAX + 1)) == str(BIGINT_MAX + 1)
