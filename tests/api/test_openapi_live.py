"""schemathesis against a live errgate: no answer is a 5xx, and every answer is one the OpenAPI document describes.

errgate runs as its own process (``python -m app serve``, real HTTP on loopback) on a database
of its own, seeded with a project that has tracking enabled, a client key, a stored error and
its event, and a second user who is the project's Maintainer. Every operation of the document
is exercised twice: as root (an administrator) with the document's examples, schemathesis's
coverage cases (boundary and invalid values of every parameter, unexpected methods) and a few
generated cases; as that user with the examples and generated cases. Generation is
derandomized, so a run sends the same requests every time.

Half of the generated ids of projects and errors, and of the collector's ``sentry_key`` values,
are replaced by the seeded ones so that requests reach past 404 and 403. Requests that would
delete or demote what the seed made (the project, the tokens, the key, the user's membership)
are not sent, and the seeded project's tracking is turned back on after a request changed it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import hypothesis.strategies as st
import orjson
import pytest
import requests
import schemathesis
from schemathesis import checks

from app import openapi
from app.ids import parse_ref
from tests.conftest import ROOT_TOKEN, connect, fresh_database
from tests.process import errgate_process

MAX_EXAMPLES = 8
PROJECT_PATH = "group/app"
MAINTAINER = 40
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
]


@schemathesis.serializer("application/x-sentry-envelope")
def envelope_bytes(context: Any, value: Any) -> bytes:
    """An envelope goes on the wire as its text; a generated value that is no string, as JSON."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


@dataclasses.dataclass(frozen=True)
class Seed:
    """What the seeded errgate holds."""

    url: str
    user_token: str
    token_ids: frozenset[int]
    user_ids: frozenset[int]
    project_id: int
    key_id: int
    public_key: str
    error_id: int
    event_id: str

    def values(self) -> dict[str, Any]:
        """Seeded values by parameter name: path ids and the collector's key."""
        return {
            "id": self.project_id, "project_id": self.project_id, "error_id": self.error_id, "event_id": self.event_id,
            "sentry_key": self.public_key,
        }

    def is_project(self, ref: Any) -> bool:
        return parse_ref(str(ref)) == self.project_id or str(ref).lower() == PROJECT_PATH

    def would_be_undone(self, case: schemathesis.Case) -> bool:
        """Whether ``case`` deletes or demotes something the rest of the run needs."""
        route, params = case.operation.path, case.path_parameters or {}
        if case.method == "DELETE" and route == "/api/v4/personal_access_tokens/{token_id}":
            return str(params["token_id"]) == "self" or parse_ref(str(params["token_id"])) in self.token_ids
        if "id" not in params or not self.is_project(params["id"]):
            return False
        if case.method == "DELETE" and route == "/api/v4/projects/{id}":
            return True
        if route == "/api/v4/projects/{id}/members/{user_id}":
            return parse_ref(str(params["user_id"])) in self.user_ids
        if case.method == "DELETE" and route == "/api/v4/projects/{id}/error_tracking/client_keys/{key_id}":
            return parse_ref(str(params["key_id"])) == self.key_id
        return False

    def changes_tracking(self, case: schemathesis.Case) -> bool:
        params = case.path_parameters or {}
        return (
            case.method in ("PUT", "PATCH")
            and case.operation.path == "/api/v4/projects/{id}/error_tracking/settings"
            and self.is_project(params["id"])
        )

    def enable_tracking(self) -> None:
        response = requests.put(
            f"{self.url}/api/v4/projects/{self.project_id}/error_tracking/settings",
            json={"active": True, "integrated": True}, headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=10,
        )
        assert response.status_code == 200, response.text


async def _call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    async with session.request(method, url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}, **kwargs) as response:
        body = await response.json(content_type=None)
        assert response.status < 300, (method, url, response.status, body)
        return body


async def seed(url: str, database_url: str) -> Seed:
    """Through the API: a project with tracking on, a Maintainer with a token, an error and its event."""
    api = url + "/api/v4"
    async with aiohttp.ClientSession() as session:
        project = await _call(session, "POST", f"{api}/projects", json={"path_with_namespace": PROJECT_PATH})
        project_api = f"{api}/projects/{project['id']}"
        user = await _call(session, "POST", f"{api}/users", json={"username": "alice", "name": "Alice"})
        token = await _call(
            session, "POST", f"{api}/users/{user['id']}/personal_access_tokens", json={"name": "ci", "scopes": ["api"]}
        )
        await _call(session, "POST", f"{project_api}/members", json={"user_id": user["id"], "access_level": MAINTAINER})
        await _call(session, "PUT", f"{project_api}/error_tracking/settings", json={"active": True, "integrated": True})
        (key,) = await _call(session, "GET", f"{project_api}/error_tracking/client_keys")
        event = {"message": "seeded", "level": "error", "environment": "production", "release": "1.0", "tags": {"seed": "yes"}}
        stored = await _call(
            session, "POST", f"{url}/api/{project['id']}/store/", params={"sentry_key": key["public_key"]}, json=event
        )
        (error,) = await _call(session, "GET", f"{project_api}/error_tracking/errors")
    async with connect(database_url) as conn:  # the API lists no tokens; root's came with the start
        token_ids = frozenset(await conn.fetchval("select array_agg(id) from personal_access_tokens"))
        user_ids = frozenset(await conn.fetchval("select array_agg(id) from users"))
    return Seed(
        url=url, user_token=token["token"], token_ids=token_ids, user_ids=user_ids, project_id=project["id"],
        key_id=key["id"], public_key=key["public_key"], error_id=error["id"], event_id=stored["id"],
    )


@pytest.fixture(scope="module")
async def seeded(base_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seed]:
    log = Path(tmp_path_factory.mktemp("openapi-live")) / "errgate.log"
    async with fresh_database(base_database_url, prefix="errgate_openapi") as database_url:
        async with errgate_process(database_url, log) as errgate:
            seeded = await seed(errgate.url, database_url)
            SEEDED_VALUES.update(seeded.values())
            yield seeded
            SEEDED_VALUES.clear()


# The seeded values by parameter name, filled by the ``seeded`` fixture before the first case is drawn.
SEEDED_VALUES: dict[str, Any] = {}


def half_seeded(context: Any, generated: dict[str, Any] | None) -> st.SearchStrategy:
    """The generated parameters, or the same with the seeded values where their names match."""
    chosen = {name: SEEDED_VALUES[name] for name in generated or {} if name in SEEDED_VALUES}
    return st.sampled_from([generated, {**generated, **chosen}]) if chosen else st.just(generated)


def load_schema(*, coverage: bool) -> schemathesis.BaseSchema:
    """The document as schemathesis tests it; ``coverage``: with its boundary and invalid cases of
    every parameter (most of the run's requests). No stateful phase: the document has no links.
    Loaded at collection time, where the server's address is not known yet: each call names it."""
    config = {
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": coverage}},
    }
    loaded = schemathesis.openapi.from_dict(openapi.document(), config=schemathesis.Config.from_dict(config))
    loaded.hook("flatmap_path_parameters")(half_seeded)
    loaded.hook("flatmap_query")(half_seeded)
    return loaded


thorough = load_schema(coverage=True)
quick = load_schema(coverage=False)


def call_and_validate(case: schemathesis.Case, seeded: Seed, token: str) -> None:
    if seeded.would_be_undone(case):
        return
    headers = {"PRIVATE-TOKEN": token}
    if case.operation.path.endswith(("/envelope", "/envelope/", "/store", "/store/")) and not (case.query or {}).get("sentry_key"):
        headers = {"X-Sentry-Auth": f"Sentry sentry_key={seeded.public_key}, sentry_version=7"}
    try:
        case.call_and_validate(base_url=seeded.url, headers=headers, checks=CHECKS)
    finally:
        if seeded.changes_tracking(case):
            seeded.enable_tracking()


@thorough.parametrize()
def test_answers_to_an_administrator_conform(case: schemathesis.Case, seeded: Seed) -> None:
    call_and_validate(case, seeded, ROOT_TOKEN)


@quick.parametrize()
def test_answers_to_a_maintainer_conform(case: schemathesis.Case, seeded: Seed) -> None:
    call_and_validate(case, seeded, seeded.user_token)
