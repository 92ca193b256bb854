"""Property-based tests over every REST route: random methods, path ids, parameters, bodies and content
types never give a 500, always answer JSON in GitLab's shapes, and leave errgate healthy.

The routes come from the application's router (the handlers of ``app.api``), the parameter names
from the handlers' sources, so new routes and parameters are fuzzed without editing this file.
As in tests/ingest_http/test_fuzz_http.py, Hypothesis runs in a worker thread while errgate serves
on the test's event loop; requests and database work are sent to that loop with
``run_coroutine_threadsafe``. Callers are an administrator, a Developer of the project, a
``read_api`` Developer, nobody and an unknown token.

Path ids are ASCII (digits, huge numbers, encoded slashes, NUL, invalid UTF-8 escapes, real ids
and paths): digits that are not ASCII belong to the path-id parser's own tests."""

from __future__ import annotations

import asyncio
import io
import json
import re
import string
import uuid
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import quote, quote_from_bytes

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

import app.api
from app import identity
from app.db import error_tracking
from app.server import CLIENT_MAX_SIZE
from tests.api.test_errors import add_error
from tests.conftest import ROOT_TOKEN

FUZZ_SETTINGS = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALLOWED = {200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEVELOPER = 30


def rest_routes(application) -> list[tuple[str, str]]:
    """(method, path template) of every REST route: handlers of app.api (the collector also answers under /api/v4)."""
    found = {
        (route.method, route.resource.canonical)
        for route in application.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/v4/")
        and route.handler.__module__.startswith("app.api.")
    }
    return sorted(found)


def declared_params() -> list[str]:
    """Every parameter name a REST handler reads (``params.string("name")`` and the like)."""
    sources = Path(app.api.__file__).parent.glob("*.py")
    return sorted({name for path in sources for name in re.findall(r'\bparams\.\w+\(\s*"(\w+)"', path.read_text())})


# --- what gets sent ---------------------------------------------------------------------------

# Stand-ins for the ids of the objects the test creates, by path parameter; resolved when the request is sent.
SYMBOLS = {
    "id": ["<project>", "<project_path>"], "user_id": ["<user>", "<admin>"], "token_id": ["<token>", "self"],
    "key_id": ["<key>"], "error_id": ["<error>"], "event_id": ["<event>", "latest"],
}
ODD_IDS = [
    "0", "00", "007", "-1", "+1", "1.0", "1e3", "0x10", "9223372036854775807", "9223372036854775808",
    "99999999999999999999999999", "9" * 300, "self", "group%2Fapp", "%2F", "a%2Fb%2Fc", "%2E%2E", "..",
    "%00", "1%00", "%25", "%FF", "%ED%A0%80", "%C0%AF", "%20", "1%20", "group%2F%2Fapp", "~",
]
NASTY_VALUES = [
    "", " ", "\x00", "a\x00b", "\ud800", "1_0", "0x1f", "-0", "+5", "9223372036854775808", "-9223372036854775809",
    "9" * 50, "2024-02-30", "99999-01-01", "9999-12-31", "2030-01-01", "20300101", "true", "false", "yes", "null",
    "api", "read_api", "api,read_api", "api,,x", "unresolved", "resolved", "ignored", "owner", "10", "30", "50",
    "x" * 3000, "group/app", "a/b/c", "g\n/app", "\U0001f642", "\u202e", "\ufeff", "%", "\r\n", "a[b]",
]
# Values a route accepts, by parameter name, so that writes also succeed now and then.
PLAUSIBLE: dict[str, list[Any]] = {
    "username": ["fuzz1", "fuzz2", "Fuzz_3.x"], "name": ["Fuzz", "t"], "email": ["f@example.com", None],
    "admin": [True, "false"], "path": ["app", "app2"], "path_with_namespace": ["fuzz/app", "g/s/app"],
    "namespace": ["fuzz"], "description": ["d", ""], "scopes": [["api"], "read_api", ["api", "read_api"]],
    "expires_at": ["2099-01-01", None], "user_id": ["<user>", "<admin>"], "access_level": [10, "30", 50],
    "active": [True, "false"], "integrated": [True, "1"], "status": ["resolved", "ignored", "unresolved"],
    "page": ["1", 2], "per_page": ["1", 100],
}
CHARSETS = [None, None, None, "utf-8", "UTF8", '"utf-8"', "latin-1", "windows-1252", "shift_jis", "utf-16",
            "utf-7", "cp037", "nonsense", "", "\u00e9"]
# One body in ten is over client_max_size.
BODY_KINDS = ["none"] * 3 + ["json"] * 6 + ["form"] * 4 + ["multipart"] * 3 + ["raw"] * 3 + ["oversize"] * 2
TOKENS = [b"\x00", b"\xff", b"%", b"%zz", b"%F", b"\r\n", b"--xyz", b"--xyz--", b'"', b"{", b"}", b"[" * 40,
          b"\\ud800", b"&", b"=", b"[]", b"\r\n\r\n", b"; charset=", b"Content-Disposition: form-data\r\n"]

segments = st.one_of(
    st.sampled_from(sorted({symbol for symbols in SYMBOLS.values() for symbol in symbols})),
    st.sampled_from(ODD_IDS),
    st.integers(-10, 10**30).map(str),
    st.text(alphabet=string.printable, max_size=20).map(lambda t: quote(t, safe="")),
    # Digits of other scripts ('²', '٢', '０'): str.isdigit takes them, a row id must not.
    st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=3).map(lambda t: quote(t, safe="")),
)
scalars = st.one_of(
    st.sampled_from(NASTY_VALUES),
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**66), 2**66), st.floats(), scalars),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _encoded(text: str, charset: str | None) -> bytes:
    """``text`` in ``charset`` when Python knows it, else in UTF-8; lone surrogates stay as their bytes."""
    try:
        return text.encode((charset or "utf-8").strip('"'), "replace")
    except (LookupError, ValueError):
        return text.encode("utf-8", "surrogatepass")


def _flat_pairs(params: dict[str, Any]) -> list[tuple[str, str]]:
    """Form fields as Rack writes them: ``k[]`` for lists, ``k[sub]`` for objects."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, list):
            pairs += [(f"{key}[]", _text(v)) for v in value]
        elif isinstance(value, dict):
            pairs += [(f"{key}[{sub}]", _text(v)) for sub, v in value.items()]
        else:
            pairs.append((key, _text(value)))
    return pairs


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def _form(pairs: list[tuple[str, str]], charset: str | None) -> bytes:
    return b"&".join(
        quote_from_bytes(_encoded(k, charset)).encode() + b"=" + quote_from_bytes(_encoded(v, charset)).encode()
        for k, v in pairs
    )


@st.composite
def multipart_bodies(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> tuple[str, bytes]:
    boundary = draw(st.sampled_from(["xyz", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "b" * 80, '"q x"']))
    header = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}"] * 4 + ["multipart/form-data"]))
    delimiter = b"--" + boundary.strip('"').encode()
    body = b""
    for key, value in pairs + draw(st.lists(st.tuples(st.text(max_size=4), scalars), max_size=2)):
        charset = draw(st.sampled_from(CHARSETS))
        disposition = draw(st.sampled_from([
            f'form-data; name="{key}"', f'form-data; name="{key}"; filename="f.txt"', "form-data",
            f"form-data; name*=utf-8''{quote(key)}", f"form-data; name={key}",
        ]))
        lines = [b"Content-Disposition: " + _encoded(disposition, None)]
        if charset is not None:
            lines.append(b"Content-Type: text/plain; charset=" + _encoded(charset, None))
        if draw(st.booleans()) and draw(st.booleans()):
            lines.append(draw(st.sampled_from([b"Content-Transfer-Encoding: base64", b"Content-Type: multipart/mixed"])))
        body += delimiter + b"\r\n" + b"\r\n".join(lines) + b"\r\n\r\n" + _encoded(value, charset) + b"\r\n"
    return header, body + delimiter + b"--\r\n"


@st.composite
def parameters(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[str, Any]:
    """Declared parameter names (and a few others), each with a plausible value or any of ``values``."""
    names = st.one_of(st.sampled_from(declared_params()), st.sampled_from(["a[b]", "x[]", "", "private_token"]),
                      st.text(max_size=6))
    params = {}
    for name in draw(st.lists(names, max_size=6)):
        plausible = PLAUSIBLE.get(name)
        params[name] = draw(st.sampled_from(plausible) if plausible and draw(st.booleans()) else values)
    return params


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str | None, bytes]:
    """(Content-Type or None, body)."""
    params = draw(parameters(json_values))
    charset = draw(st.sampled_from(CHARSETS))
    with_charset = (lambda t: t) if charset is None else (lambda t: f"{t}; charset={charset}")
    kind = draw(st.sampled_from(BODY_KINDS))
    if kind == "none":
        return draw(st.sampled_from([None, "application/json"])), b""
    if kind == "json":
        document = params if draw(st.integers(0, 5)) else draw(json_values)
        return with_charset("application/json"), _encoded(json.dumps(document), charset)
    if kind == "form":
        return with_charset("application/x-www-form-urlencoded"), _form(_flat_pairs(params), charset)
    if kind == "multipart":
        return draw(multipart_bodies(_flat_pairs(params)))
    content_type = draw(st.sampled_from([None, "text/plain", "application/octet-stream", "application/json",
                                         "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
                                         ";;;", "application/json; charset", "*/*"]))
    if kind == "oversize":
        return content_type, b"x" * (CLIENT_MAX_SIZE + 1)
    return content_type, draw(st.binary(max_size=200))


@st.composite
def mutated(draw: st.DrawFn, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if kind == "insert":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


@st.composite
def requests(draw: st.DrawFn, routes: list[tuple[str, str]]) -> dict[str, Any]:
    method, template = draw(st.sampled_from(routes))
    if draw(st.integers(0, 15)) == 0:
        method = draw(st.sampled_from(METHODS))
    # Mostly the right kind of real object, so that requests get past the 404s.
    path = re.sub(
        r"\{(\w+)\}",
        lambda m: draw(st.sampled_from(SYMBOLS[m.group(1)]) if draw(st.integers(0, 2)) else segments),
        template,
    )
    query = _form(_flat_pairs(draw(parameters(scalars))), None)
    if draw(st.integers(0, 7)) == 0:
        query += draw(st.sampled_from([b"&%zz", b"&a=%FF", b"&&", b"&=", b"&private_token=" + ROOT_TOKEN.encode()]))
    content_type, body = draw(bodies())
    if body and len(body) <= CLIENT_MAX_SIZE and draw(st.integers(0, 3)) == 0:
        body = draw(mutated(body))
    caller = draw(st.sampled_from(["admin"] * 4 + ["user"] * 3 + ["reader", "nobody", "stranger"]))
    return sent(method, path.encode(), content_type, body, caller, query)


@st.composite
def odd_paths(draw: st.DrawFn, routes: list[tuple[str, str]]) -> dict[str, Any]:
    method, template = draw(st.sampled_from(routes))
    odd = draw(st.sampled_from(re.findall(r"\{(\w+)\}", template)))
    path = re.sub(
        r"\{(\w+)\}", lambda m: draw(segments if m.group(1) == odd else st.sampled_from(SYMBOLS[m.group(1)])), template
    )
    return sent(method, path.encode(), caller=draw(st.sampled_from(["admin", "user"])))


def sent(
    method: str, path: bytes, content_type: str | None = None, body: bytes = b"", caller: str = "admin", query: bytes = b""
) -> dict[str, Any]:
    return {"method": method, "path": path, "query": query, "content_type": content_type, "body": body, "caller": caller}


# --- the test ---------------------------------------------------------------------------------


class Objects:
    """The objects the requests aim at; whatever a request deletes, revokes or demotes is put back before the next."""

    def __init__(self, pool, world) -> None:
        self.pool, self.world = pool, world
        self.ids: dict[str, str] = {}
        self.members: list[int] = []
        self.tokens: dict[str, str | None] = {"admin": ROOT_TOKEN, "nobody": None, "stranger": "glpat-nobody-has-this-one"}
        self.generation = 0

    async def create(self) -> None:
        user = await self.world.user("fuzzer")
        reader = await self.world.user("reader")
        self.tokens["user"] = await self.world.token(user)
        self.tokens["reader"] = await self.world.token(reader, scopes=("read_api",))
        self.ids["<user>"] = str(user["id"])
        self.members = [user["id"], reader["id"]]
        self.ids["<admin>"] = str(await self.pool.fetchval("select id from users where username = 'root'"))
        self.ids["<token>"] = str(await self.pool.fetchval(
            "select id from personal_access_tokens where user_id = $1", user["id"]))
        await self.restore()

    async def restore(self) -> None:
        await self.pool.execute("update personal_access_tokens set revoked = false where revoked")
        project_id = int(self.ids.get("<project>", "0"))
        if not await self.pool.fetchval("select exists (select 1 from projects where id = $1)", project_id):
            self.generation += 1
            path = f"group/app{self.generation}"
            project = await identity.create_project(self.pool, path, None, None, None)
            project_id = project["id"]
            self.ids["<project>"], self.ids["<project_path>"] = str(project_id), quote(path, safe="")
            self.ids["<error>"] = str(await add_error(self.pool, project_id, "fp", minutes_ago=1))
            self.ids["<event>"] = uuid.uuid4().hex  # no such event: its lookup answers 404
        for user_id in self.members:
            await self.pool.execute(
                """insert into members (project_id, user_id, access_level) values ($1, $2, $3)
                   on conflict (project_id, user_id) do update set access_level = excluded.access_level""",
                project_id, user_id, DEVELOPER,
            )
        key = int(self.ids.get("<key>", "0"))
        if not await self.pool.fetchval(
            "select exists (select 1 from error_tracking_client_keys where id = $1 and project_id = $2)", key, project_id
        ):
            self.ids["<key>"] = str((await error_tracking.create_key(self.pool, project_id))["id"])

    def resolve(self, text: bytes) -> bytes:
        return re.sub(rb"<\w+>", lambda m: self.ids.get(m.group(0).decode(), m.group(0).decode()).encode(), text)


class Client:
    """Sends a drawn request to the live server from Hypothesis's thread and checks the answer."""

    def __init__(self, url: str, objects: Objects, session: aiohttp.ClientSession) -> None:
        self.url, self.objects, self.session = url, objects, session
        self.loop = asyncio.get_running_loop()
        self.seen: dict[int, int] = {}

    def check(self, request: dict[str, Any]) -> None:
        """No 500, a JSON body (but after 204 and HEAD) and GitLab's error shapes."""
        status, headers, raw = asyncio.run_coroutine_threadsafe(self._exchange(request), self.loop).result(timeout=60)
        self.seen[status] = self.seen.get(status, 0) + 1
        shown = {**request, "body": request["body"][:300]}
        assert status in ALLOWED, (status, raw[:300], shown)
        if status == 204:
            assert raw == b"", shown
            return
        assert headers.get("Content-Type", "").startswith("application/json"), (status, headers, shown)
        if request["method"] == "HEAD":
            return
        answer = orjson.loads(raw)
        if status >= 400:
            assert isinstance(answer, dict) and ("message" in answer or "error" in answer), (status, answer, shown)

    async def _exchange(self, request: dict[str, Any]) -> tuple[int, Any, bytes]:
        headers = {}
        if self.objects.tokens[request["caller"]] is not None:
            headers["PRIVATE-TOKEN"] = self.objects.tokens[request["caller"]]
        if request["content_type"] is not None:
            headers["Content-Type"] = request["content_type"]
        target = self.objects.resolve(request["path"] + (b"?" + request["query"] if request["query"] else b""))
        body = self.objects.resolve(request["body"])
        async with self.session.request(
            request["method"], URL(self.url + target.decode(), encoded=True), headers=headers,
            data=io.BytesIO(body) if len(body) > 1_000_000 else body or None,  # aiohttp warns about big bytes bodies
            skip_auto_headers=["Content-Type"],
        ) as response:
            answer = response.status, response.headers, await response.read()
        if request["method"] not in ("GET", "HEAD") and response.status < 300:
            await self.objects.restore()
        return answer

    async def still_serves(self) -> None:
        await self.objects.restore()
        async with self.session.get(self.url + "/-/readiness") as response:
            assert response.status == 200
        token = self.objects.tokens["user"]
        async with self.session.get(self.url + "/api/v4/user", headers={"PRIVATE-TOKEN": token}) as response:
            assert (response.status, (await response.json())["username"]) == (200, "fuzzer")


@pytest.fixture
async def client(server, pool, world) -> AsyncIterator[Client]:
    objects = Objects(pool, world)
    await objects.create()
    # The Link header repeats the query string four times: longer than aiohttp's client reads by default.
    async with aiohttp.ClientSession(max_field_size=8 * 8190) as session:
        yield Client(server.url, objects, session)


async def test_rest_routes_never_500_and_always_answer_json(server, client) -> None:
    routes = rest_routes(server.app)
    assert {("GET", "/api/v4/user"), ("PUT", "/api/v4/projects/{id}/members/{user_id}")} <= set(routes)
    assert not any("collector" in template for _, template in routes)
    assert {"username", "access_level", "expires_at", "page", "status"} <= set(declared_params())

    # The examples: refusals that random requests reach only now and then, always tried first.
    @FUZZ_SETTINGS
    @given(requests(routes))
    @example(sent("POST", b"/api/v4/users", "multipart/form-data", b"--x\r\n\r\n1\r\n--x--\r\n"))
    @example(sent("POST", b"/api/v4/users", "application/x-www-form-urlencoded; charset=utf-16", "a=b".encode("utf-16")))
    @example(sent("PUT", b"/api/v4/projects/<project>/error_tracking/settings", "application/json",
                  b"{" * (CLIENT_MAX_SIZE + 1)))
    @example(sent("OPTIONS", b"/api/v4/user"))
    def check(request: dict[str, Any]) -> None:
        client.check(request)

    await asyncio.to_thread(check)
    # The run explored successes and each kind of refusal, and errgate still serves.
    seen = client.seen
    assert sum(seen.get(s, 0) for s in (200, 201, 202)) >= 20 and seen.get(400, 0) >= 20, seen
    assert all(seen.get(s, 0) > 0 for s in (401, 403, 404, 405, 413, 415)), seen
    await client.still_serves()


async def test_odd_path_ids_never_500(server, client) -> None:
    """One odd id at a time, the other ids real, so that the odd one is what each handler meets."""
    routes = [(method, template) for method, template in rest_routes(server.app) if "{" in template]

    @settings(FUZZ_SETTINGS, max_examples=500)
    @given(odd_paths(routes))
    def check(request: dict[str, Any]) -> None:
        client.check(request)

    await asyncio.to_thread(check)
    assert client.seen.get(404, 0) > 50 and sum(client.seen.get(s, 0) for s in (200, 202, 204)) > 0, client.seen
    await client.still_serves()
