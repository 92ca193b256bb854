"""How the REST API reads bodies and query strings: charsets, multipart, malformed input, limits, NUL, integers, dates."""

from __future__ import annotations

import asyncio
import io
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
from yarl import URL

from app.api.params import MAX_FORM_FIELDS, MAX_PART_HEAD_BYTES, MAX_PART_HEAD_PARAMETERS
from app.server import CLIENT_MAX_SIZE
from tests.conftest import ROOT_TOKEN, Api, Reply

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


async def send(api: Api, method: str, path: str, content_type: str | None, body: bytes, token: str = ROOT_TOKEN) -> Reply:
    """``body`` exactly as given, with exactly this Content-Type (or none)."""
    headers = {"PRIVATE-TOKEN": token}
    if content_type is not None:
        headers["Content-Type"] = content_type
    data: Any = io.BytesIO(body) if len(body) > 1_000_000 else body  # aiohttp warns about big bytes bodies
    async with api.session.request(
        method, api.base + "/api/v4" + path, data=data, headers=headers, skip_auto_headers=["Content-Type"]
    ) as response:
        raw = await response.read()
        assert response.headers.get("Content-Type", "").startswith("application/json"), (response.status, raw[:200])
        return Reply(response.status, orjson.loads(raw), response.headers)


def multipart(*parts: bytes, boundary: bytes = b"xyz") -> bytes:
    """``parts`` are each a part's header lines and body, already joined by an empty line."""
    return b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + boundary + b"--\r\n"


def field(name: str, value: bytes, *headers: bytes) -> bytes:
    lines = [f'Content-Disposition: form-data; name="{name}"'.encode(), *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + value


async def usernames(pool) -> set[str]:
    return {r["username"] for r in await pool.fetch("select username from users")}


# --- multipart/form-data ---------------------------------------------------------------------


async def test_multipart_creates_a_user(api, pool) -> None:
    body = multipart(field("username", b"bob"), field("name", b"Bob B"))
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", body)
    assert (reply.status, reply.body["username"], reply.body["name"]) == (201, "bob", "Bob B")


async def test_multipart_as_aiohttp_writes_it(api, pool) -> None:
    form = aiohttp.FormData()
    form.add_field("username", "bob")
    form.add_field("name", io.BytesIO("Böb".encode()), filename="name.txt", content_type="text/plain")
    reply = await api.post("/users", token=ROOT_TOKEN, data=form)
    assert (reply.status, reply.body["username"], reply.body["name"]) == (201, "bob", "Böb")


async def test_multipart_preamble_epilogue_and_padding(api, pool) -> None:
    """Around the parts: a preamble, blanks after a delimiter, an epilogue; inside: a line that only starts like one."""
    body = b"preamble\r\n--xyz \t\r\n" + field("name", b"Bob\r\n--xyzz") + b"\r\n" + multipart(field("username", b"bob"))
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", body + b"epilogue")
    assert (reply.status, reply.body["username"], reply.body["name"]) == (201, "bob", "Bob\r\n--xyzz")


async def test_multipart_without_a_boundary_is_400(api, pool) -> None:
    body = multipart(field("username", b"bob"), field("name", b"Bob"))
    reply = await send(api, "POST", "/users", "multipart/form-data", body)
    assert (reply.status, reply.body) == (400, {"message": "400 Bad request - multipart body without a boundary"})
    assert "bob" not in await usernames(pool)


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"--other\r\n" + field("username", b"bob") + b"\r\n--other--\r\n",  # not the announced boundary
        b"--xyz\r\n" + field("username", b"bob") + b"\r\n",  # no closing boundary
    ],
)
async def test_malformed_multipart_is_400(api, pool, body) -> None:
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", body)
    assert (reply.status, reply.body) == (400, {"message": "400 Bad request - malformed multipart body"})


async def test_a_multipart_part_without_a_name_is_no_parameter(api, pool) -> None:
    """Nor is one named the RFC 2231 way, which RFC 7578 forbids (Rack ignores it too)."""
    nameless = b"Content-Disposition: form-data\r\n\r\nalice"
    encoded = b"Content-Disposition: form-data; name*=utf-8''username\r\n\r\nalice"
    body = multipart(nameless, field("username", b"bob"), encoded, field("name", b"Bob"))
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", body)
    assert (reply.status, reply.body["username"]) == (201, "bob")


async def test_a_multipart_file_part_is_read_as_text(api, pool) -> None:
    upload = b'Content-Disposition: form-data; name="name"; filename="name.txt"\r\nContent-Type: application/octet-stream'
    body = multipart(field("username", b"bob"), upload + b"\r\n\r\nBob from a file")
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", body)
    assert (reply.status, reply.body["name"]) == (201, "Bob from a file")


async def test_a_multipart_name_in_utf_8(api, pool) -> None:
    body = multipart(field("username", b"bob"), field("name", b"Bob"), field("n\u00e4me", b"x"))
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", body)
    assert (reply.status, reply.body["name"]) == (201, "Bob")


async def test_a_multipart_part_is_decoded_with_its_charset(api, pool) -> None:
    body = multipart(field("username", b"jose"), field("name", b"Jos\xe9", b"Content-Type: text/plain; charset=latin-1"))
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", body)
    assert (reply.status, reply.body["name"]) == (201, "José")


@pytest.mark.parametrize(
    "part, status, message",
    [
        (field("name", b"\xff\xfe"), 400, "400 Bad request - the part 'name' is not valid utf-8"),
        (b'Content-Disposition: form-data; name="n\xe4me"\r\n\r\nBob', 400,
         "400 Bad request - the multipart header is not valid utf-8"),
        (field("name", b"Bob", b"Content-Type: text/plain; charset=nonsense"), 415,
         "415 Unsupported Media Type - the charset nonsense is not supported"),
        (field("name", b"--in\r\n\r\nBob\r\n--in--", b"Content-Type: multipart/mixed; boundary=in"), 400,
         "400 Bad request - nested multipart parts are not supported"),
    ],
)
async def test_unreadable_multipart_parts(api, pool, part, status, message) -> None:
    body = multipart(field("username", b"bob"), part)
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", body)
    assert (reply.status, reply.body) == (status, {"message": message})
    assert "bob" not in await usernames(pool)


@pytest.mark.parametrize(
    "part",
    [
        field("name", b"Bob", b"X-Long: " + b"x" * MAX_PART_HEAD_BYTES),
        field("name", b"Bob", b"X-Params: a" + b"; p=1" * MAX_PART_HEAD_PARAMETERS),
    ],
)
async def test_multipart_part_headers_are_bounded(api, pool, part) -> None:
    """Python parses header parameters in quadratic time: big part headers would stall the event loop."""
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", multipart(field("username", b"bob"), part))
    assert (reply.status, reply.body) == (
        400, {"message": "400 Bad request - multipart headers too long or with too many parameters"}
    )
    assert "bob" not in await usernames(pool)


# --- application/x-www-form-urlencoded and charsets -------------------------------------------


@pytest.mark.parametrize("charset", ["latin-1", "ISO-8859-1", "windows-1252", '"latin1"'])
async def test_a_form_is_decoded_with_its_charset(api, pool, charset) -> None:
    reply = await send(api, "POST", "/users", f"{FORM}; charset={charset}", b"username=jose&name=Jos%E9+\xe9")
    assert (reply.status, reply.body["name"]) == (201, "José é")


@pytest.mark.parametrize("charset", ["nonsense", "utf-16", "UTF-32", "utf-7", "cp037", "base64", "rot13", "x" * 60])
@pytest.mark.parametrize("content_type", [FORM, JSON])
async def test_a_charset_that_is_unknown_or_not_ascii_compatible_is_415(api, pool, content_type, charset) -> None:
    body = b"username=bob&name=Bob" if content_type == FORM else b'{"username": "bob", "name": "Bob"}'
    reply = await send(api, "POST", "/users", f"{content_type}; charset={charset}", body)
    shown = charset.lower() if len(charset) < 40 else "of the request"
    assert (reply.status, reply.body) == (415, {"message": f"415 Unsupported Media Type - the charset {shown} is not supported"})
    assert "bob" not in await usernames(pool)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"username=bob&name=B\xffb", "the body is not valid utf-8"),
        (b"username=bob&name=B%FFb", "the body is not valid utf-8"),  # the bytes of an escape
        (b"username=bob&name=100%", "invalid %-encoding in the body"),
        (b"username=bob&name=%zz", "invalid %-encoding in the body"),
    ],
)
async def test_an_undecodable_form_is_400(api, pool, body, message) -> None:
    reply = await send(api, "POST", "/users", FORM, body)
    assert (reply.status, reply.body) == (400, {"message": f"400 Bad request - {message}"})
    assert "bob" not in await usernames(pool)


@pytest.mark.parametrize(
    "query, message",
    [("username=%FF", "the query string is not valid utf-8"), ("username=a%zz", "invalid %-encoding in the query string")],
)
async def test_an_undecodable_query_string_is_400(api, query, message) -> None:
    url = URL(f"{api.base}/api/v4/users?{query}", encoded=True)  # as sent: yarl would requote %zz
    async with api.session.get(url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}) as response:
        assert (response.status, await response.json()) == (400, {"message": f"400 Bad request - {message}"})


async def test_form_keys(api, world, pool) -> None:
    """A repeated key keeps its last value, ``key[]`` collects a list, ``a[b]`` is a parameter nobody reads."""
    bob = await world.user("bob")
    body = b"name=first&name=second&scopes[]=api&scopes[]=read_api&a[b]=c"
    reply = await send(api, "POST", f"/users/{bob['id']}/personal_access_tokens", FORM, body)
    assert (reply.status, reply.body["name"], reply.body["scopes"]) == (201, "second", ["api", "read_api"])


async def test_too_many_form_fields_is_413(api, pool) -> None:
    body = b"&".join(b"f%d=1" % i for i in range(MAX_FORM_FIELDS)) + b"&username=bob&name=Bob"
    reply = await send(api, "POST", "/users", FORM, body)
    assert (reply.status, reply.body) == (
        413, {"message": f"413 Request Entity Too Large - more than {MAX_FORM_FIELDS} form fields"}
    )
    parts = [field(f"f{i}", b"1") for i in range(MAX_FORM_FIELDS)] + [field("username", b"bob"), field("name", b"Bob")]
    reply = await send(api, "POST", "/users", "multipart/form-data; boundary=xyz", multipart(*parts))
    assert reply.status == 413
    assert "bob" not in await usernames(pool)


# --- JSON -------------------------------------------------------------------------------------


async def test_a_json_body_in_latin_1(api, pool) -> None:
    reply = await send(api, "POST", "/users", f"{JSON}; charset=latin-1", b'{"username": "jose", "name": "Jos\xe9"}')
    assert (reply.status, reply.body["name"]) == (201, "José")


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "bob", "name": "\\ud800"}',  # a lone surrogate: PostgreSQL could not store it
        b'{"username": "bob", "name": "B\xffb"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"username": "bob", "name": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2001,
    ],
)
async def test_a_json_body_orjson_refuses_is_400(api, pool, body) -> None:
    reply = await send(api, "POST", "/users", JSON, body)
    assert reply.status == 400 and reply.body["message"].startswith("400 Bad request - malformed JSON body"), reply.body
    assert "bob" not in await usernames(pool)


@pytest.mark.parametrize(
    "content_type, body",
    [
        (JSON, b'{"username": "bob", "name": "' + b"x" * CLIENT_MAX_SIZE + b'"}'),
        (FORM, b"username=bob&name=" + b"x" * CLIENT_MAX_SIZE),
        ("multipart/form-data; boundary=xyz", multipart(field("username", b"bob"), field("name", b"x" * CLIENT_MAX_SIZE))),
    ],
)
async def test_a_body_over_client_max_size_is_a_json_413(api, pool, content_type, body) -> None:
    reply = await send(api, "POST", "/users", content_type, body)
    assert (reply.status, reply.body) == (413, {"message": "413 Request Entity Too Large"})
    assert "bob" not in await usernames(pool)


# --- values that PostgreSQL would refuse ------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, error",
    [
        ("/users", {"username": "bob", "name": "B\x00b"}, "name is invalid"),
        ("/users", {"username": "bob", "name": "Bob", "email": "b\x00b@example.com"}, "email is invalid"),
        ("/projects", {"name": "app\x00"}, "name is invalid"),
        ("/projects", {"name": "app", "description": "\x00"}, "description is invalid"),
        ("/users/{bob}/personal_access_tokens", {"name": "t\x00", "scopes": ["api"]}, "name is invalid"),
        ("/users/{bob}/personal_access_tokens", {"name": "t", "scopes": ["api\x00"]}, "scopes is invalid"),
    ],
)
@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_nul_in_a_string_parameter_is_400(api, world, pool, path, body, error, encoding) -> None:
    bob = await world.user("bobby")
    path = path.replace("{bob}", str(bob["id"]))
    if encoding == "json":
        reply = await api.post(path, token=ROOT_TOKEN, json=body)
    else:
        flat = {(f"{k}[]" if isinstance(v, list) else k): (v[0] if isinstance(v, list) else v) for k, v in body.items()}
        reply = await api.post(path, token=ROOT_TOKEN, data=flat)
    assert (reply.status, reply.body) == (400, {"error": error})
    assert await usernames(pool) == {"root", "bobby"}
    assert await pool.fetchval("select count(*) from projects") == 0
    assert await pool.fetchval("select count(*) from personal_access_tokens where name <> 'test'") == 1  # root's


async def test_nul_in_a_query_parameter_is_400(api) -> None:
    reply = await api.get("/users?username=a%00", token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (400, {"error": "username is invalid"})


@pytest.mark.parametrize(
    "user_id",
    [2**63, -(2**63) - 1, "9223372036854775808", "-9223372036854775809", "9" * 5000, "\u0661", "1_0", "0x10", 1.0, True],
)
async def test_an_integer_parameter_beyond_bigint_or_not_ascii_digits_is_400(api, world, pool, user_id) -> None:
    project = await world.project()
    reply = await api.post(f"/projects/{project['id']}/members", token=ROOT_TOKEN, json={"user_id": user_id, "access_level": 30})
    assert (reply.status, reply.body) == (400, {"error": "user_id is invalid"})


@pytest.mark.parametrize("query", ["page=-9223372036854775809", "per_page=99999999999999999999", "page=%D9%A1"])
async def test_pagination_beyond_bigint_is_400(api, query) -> None:
    reply = await api.get(f"/projects?{query}", token=ROOT_TOKEN)
    assert reply.status == 400 and reply.body["error"].endswith("is invalid"), reply.body


async def test_integers_at_the_edges_of_bigint(api, world) -> None:
    project = await world.project()
    for user_id in (2**63 - 1, f" {-(2**63)} ", "+7"):
        reply = await api.post(f"/projects/{project['id']}/members", token=ROOT_TOKEN, json={"user_id": user_id, "access_level": 30})
        assert (reply.status, reply.body) == (404, {"message": "404 User Not Found"})


@pytest.mark.parametrize("expires_at", ["2024-02-30", "99999-01-01", "0000-01-01", "2024-13-01", 20240230])
async def test_an_impossible_date_is_400(api, world, pool, expires_at) -> None:
    bob = await world.user("bob")
    body = {"name": "t", "scopes": ["api"], "expires_at": expires_at}
    reply = await api.post(f"/users/{bob['id']}/personal_access_tokens", token=ROOT_TOKEN, json=body)
    assert (reply.status, reply.body) == (400, {"error": "expires_at is invalid"})


async def test_the_last_date_postgresql_and_python_share_is_accepted(api, world) -> None:
    bob = await world.user("bob")
    body = {"name": "t", "scopes": ["api"], "expires_at": "9999-12-31"}
    reply = await api.post(f"/users/{bob['id']}/personal_access_tokens", token=ROOT_TOKEN, json=body)
    assert (reply.status, reply.body["expires_at"]) == (201, "9999-12-31")


async def test_an_email_too_long_for_its_unique_index_is_400(api, pool) -> None:
    email = "b" * 3000 + "@example.com"
    reply = await api.post("/users", token=ROOT_TOKEN, json={"username": "bob", "name": "Bob", "email": email})
    assert (reply.status, reply.body) == (400, {"message": {"email": ["is too long (maximum is 255 characters)"]}})
    assert "bob" not in await usernames(pool)


async def test_a_project_path_too_long_for_its_unique_index_is_400(api, pool) -> None:
    path = "/".join(["g" * 200] * 20)
    reply = await api.post("/projects", token=ROOT_TOKEN, json={"path_with_namespace": path})
    assert (reply.status, reply.body) == (400, {"message": {"path": ["is too long (maximum is 1024 characters)"]}})
    assert await pool.fetchval("select count(*) from projects") == 0


async def test_a_project_path_segment_ending_in_a_newline_is_400(api, pool) -> None:
    reply = await api.post("/projects", token=ROOT_TOKEN, json={"path_with_namespace": "group\n/app"})
    assert (reply.status, reply.body) == (400, {"message": {"path": ["must be a namespaced path such as group/app"]}})
    assert await pool.fetchval("select count(*) from projects") == 0


@pytest.mark.parametrize("header", [b"PRIVATE-TOKEN: \xff\xfe", b"Authorization: Bearer glpat-\xe9\xff"])
async def test_a_token_that_is_not_utf_8_is_401(api, header) -> None:
    """HTTP header bytes are not necessarily UTF-8; aiohttp's client would not send these, so a raw socket does."""
    url = urlsplit(api.base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(b"GET /api/v4/user HTTP/1.1\r\nHost: errgate\r\n" + header + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), answer
    assert orjson.loads(body) == {"message": "401 Unauthorized"}
