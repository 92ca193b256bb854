"""The hostile mode's cases: requests meant to hurt errgate, sent to a live server, and what it answered.

Each case returns ``{"answers": [...], ...}``: an HTTP status, or ``"timeout"``, ``"disconnected"``
or ``"closed"`` (closed without an answer), plus figures of its own. A case never asserts: it
reports what errgate did. Bodies are built by ``prepare`` before the measured window opens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import secrets
import time
import uuid
import zlib
from typing import TYPE_CHECKING, Any, Awaitable, Callable, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import orjson
from yarl import URL

from app.health import LIVENESS_PATH
from tests.ops.rawhttp import RawConnection

if TYPE_CHECKING:
    from tests.bench.hostile import Target

MiB = 1024 * 1024
REQUEST_TIMEOUT_SECONDS = 60.0
BOMB_DECODED_BYTES = 180 * MiB  # under ERRGATE_MAX_ENVELOPE_BYTES' default of 200 MiB
BOMBS = 8
TINY_ITEMS_BODY_BYTES = 400_000  # as sent, compressed
TINY_ITEMS = b'{}\n{"type":"event"}\n{}\n'
EVENT_BYTES = 340_000
FINGERPRINT_DEFAULTS = 10_000
FRAMES = 5_000
STALLED_LENGTH = 1_000_000
FORGED_HOST = "attacker.example"
LONG = "x" * 9000  # past aiohttp's 8190-byte limit on a request line or a header line

Answer = int | str


class Reply(NamedTuple):
    status: Answer
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    expected: str  # what errgate should answer, printed beside what it did
    run: Callable[[Target, Any], Awaitable[dict[str, Any]]]
    prepare: Callable[[], Any] = lambda: None


async def request(method: str, url: str | URL, *, timeout: float = REQUEST_TIMEOUT_SECONDS, **kwargs: Any) -> Reply:
    """One request on a connection of its own; a status, or what went wrong instead."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        try:
            async with session.request(method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs) as r:
                return Reply(r.status, dict(r.headers), await r.read())
        except asyncio.TimeoutError:
            return Reply("timeout", {}, b"")
        except aiohttp.ClientError:
            return Reply("disconnected", {}, b"")


def sentry_auth(target: Target) -> dict[str, str]:
    return {"X-Sentry-Auth": f"Sentry sentry_key={target.public_key}, sentry_version=7"}


def ingest_url(target: Target, endpoint: str = "envelope") -> str:
    return f"{target.url}/api/{target.project_id}/{endpoint}/"


def api_url(target: Target, path: str) -> str:
    return f"{target.url}/api/v4{path}"


def as_root(target: Target) -> dict[str, str]:
    return {"PRIVATE-TOKEN": target.root_token}


def _gzip(pieces: Callable[[], bytes], until: Callable[[int, int], bool]) -> tuple[bytes, int]:
    """gzip of ``pieces()`` repeated until ``until(compressed, decoded)``; the body and its decoded size."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out, compressed, decoded = [], 0, 0
    while not until(compressed, decoded):
        piece = pieces()
        out.append(compressor.compress(piece))
        compressed += len(out[-1])
        decoded += len(piece)
    out.append(compressor.flush())
    return b"".join(out), decoded


@functools.cache
def gzip_bomb() -> bytes:
    zeros = bytes(MiB)
    return _gzip(lambda: zeros, lambda _, decoded: decoded >= BOMB_DECODED_BYTES)[0]


def _raw_status(received: bytes) -> Answer:
    if not received.startswith(b"HTTP/"):
        return "closed"
    return int(received.split(b" ", 2)[1])


def _seconds(value: float) -> float:
    return round(value, 2)


# --- 1: many tiny items, no credential -------------------------------------------------------


@functools.cache
def tiny_items_body() -> tuple[bytes, int]:
    many = TINY_ITEMS * (MiB // len(TINY_ITEMS))
    return _gzip(lambda: many, lambda compressed, _: compressed >= TINY_ITEMS_BODY_BYTES)


async def no_credential(target: Target, prepared: tuple[bytes, int]) -> dict[str, Any]:
    return await _tiny_items(target, prepared, {})


async def tiny_items_with_key(target: Target, prepared: tuple[bytes, int]) -> dict[str, Any]:
    """The same body with a valid public key, which ships in every browser bundle."""
    return await _tiny_items(target, prepared, sentry_auth(target))


async def _tiny_items(target: Target, prepared: tuple[bytes, int], headers: dict[str, str]) -> dict[str, Any]:
    body, decoded = prepared
    reply = await request("POST", ingest_url(target), data=body, headers={"Content-Encoding": "gzip", **headers})
    return {"answers": [reply.status], "body_kb": len(body) // 1000, "decoded_mb": round(decoded / MiB, 1)}


# --- 2: a fingerprint of many {{ default }} over many frames ---------------------------------


def default_fingerprint_envelope() -> bytes:
    frames = [{"function": f"f{i}", "module": "app"} for i in range(FRAMES)]
    exception = {"type": "ValueError", "value": "", "stacktrace": {"frames": frames}}
    event = {"exception": {"values": [exception]}, "fingerprint": ["{{ default }}"] * FINGERPRINT_DEFAULTS}
    exception["value"] = "x" * max(0, EVENT_BYTES - len(orjson.dumps(event)))
    header = orjson.dumps({"event_id": uuid.uuid4().hex})
    return header + b'\n{"type":"event"}\n' + orjson.dumps(event)


async def default_fingerprint(target: Target, envelope: bytes) -> dict[str, Any]:
    reply = await request("POST", ingest_url(target), data=envelope, headers=sentry_auth(target))
    return {"answers": [reply.status], "body_kb": len(envelope) // 1000}


# --- 3: concurrent gzip bombs ----------------------------------------------------------------


async def gzip_bombs(target: Target, bomb: bytes) -> dict[str, Any]:
    headers = {**sentry_auth(target), "Content-Encoding": "gzip"}
    replies = await asyncio.gather(
        *(request("POST", ingest_url(target), data=bomb, headers=headers) for _ in range(BOMBS))
    )
    return {"answers": [r.status for r in replies], "body_kb": len(bomb) // 1000,
            "decoded_mb": BOMB_DECODED_BYTES // MiB}


# --- 4, 5: slow clients ----------------------------------------------------------------------


async def _until_closed(conn: RawConnection, limit: float) -> tuple[bytes, float | None]:
    """What the server sends until it closes the connection, and after how many seconds (None:
    still open after ``limit``)."""
    started = time.monotonic()
    try:
        received = await conn.read_all(limit)
    except TimeoutError:
        return b"", None
    return received, _seconds(time.monotonic() - started)


async def _trickle(conn: RawConnection, data: bytes, interval: float) -> None:
    try:
        for byte in data:
            await conn.send(bytes([byte]))
            await asyncio.sleep(interval)
    except ConnectionError:
        pass


async def slowloris(target: Target, _: None) -> dict[str, Any]:
    head = f"GET {LIVENESS_PATH} HTTP/1.1\r\nHost: errgate.test\r\nX-Padding: {'y' * 200}\r\n\r\n".encode()
    async with RawConnection(target.url) as conn:
        sender = asyncio.create_task(_trickle(conn, head, 1.0))
        received, closed_after = await _until_closed(conn, target.header_timeout + 10)
        sender.cancel()
    return {"answers": [_raw_status(received)], "closed_after_s": closed_after,
            "header_timeout_s": target.header_timeout}


async def stalled_body(target: Target, _: None) -> dict[str, Any]:
    path = urlsplit(ingest_url(target)).path
    head = (f"POST {path} HTTP/1.1\r\nHost: errgate.test\r\nContent-Length: {STALLED_LENGTH}\r\n"
            f"X-Sentry-Auth: Sentry sentry_key={target.public_key}\r\n\r\n").encode()
    async with RawConnection(target.url) as conn:
        await conn.send(head + b'{"event_i')
        received, closed_after = await _until_closed(conn, target.body_timeout + 10)
    return {"answers": [_raw_status(received)], "closed_after_s": closed_after,
            "body_timeout_s": target.body_timeout}


# --- 6: a token in requests aiohttp cannot parse ---------------------------------------------


async def token_in_bad_requests(target: Target, _: None) -> dict[str, Any]:
    token = target.root_token
    bad = (
        f"GET /api/v4/projects?private_token={token}&q={LONG} HTTP/1.1\r\nHost: e\r\n\r\n",
        f"GET /api/v4/user HTTP/1.1\r\nHost: e\r\nPRIVATE-TOKEN: {token}\x01\r\n\r\n",
    )
    answers: list[Answer] = []
    json_answers = token_in_answer = 0
    for raw in bad:
        async with RawConnection(target.url) as conn:
            await conn.send(raw.encode())
            try:
                answer = await conn.answer(timeout=10)
            except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                answers.append("closed")
                continue
        answers.append(answer.status)
        json_answers += answer.headers.get("content-type", "").startswith("application/json")
        token_in_answer += token.encode() in answer.raw
    await asyncio.sleep(0.2)  # the log line of the last request, if any, is written after its answer
    return {"answers": answers, "json_answers": json_answers, "token_in_answer": bool(token_in_answer),
            "token_in_log": token in target.log()}


# --- 7, 8, 9: identifiers, bodies and links --------------------------------------------------


async def path_ids(target: Target, _: None) -> dict[str, Any]:
    answers = []
    for written in ("%C2%B2", "9" * 5000, "%D9%A2"):
        url = URL(api_url(target, f"/projects/{written}"), encoded=True)
        answers.append((await request("GET", url, headers=as_root(target))).status)
    return {"answers": answers}


async def bad_bodies(target: Target, _: None) -> dict[str, Any]:
    answers = []
    for content_type in ("multipart/form-data", "application/x-www-form-urlencoded; charset=nonsense"):
        headers = {**as_root(target), "Content-Type": content_type}
        reply = await request("POST", api_url(target, "/users"), data=b"username=eve&name=Eve", headers=headers)
        answers.append(reply.status)
    return {"answers": answers}


async def link_header(target: Target, _: None) -> dict[str, Any]:
    url = api_url(target, f"/projects?private_token={target.root_token}&per_page=1")
    reply = await request("GET", url, headers={"Host": FORGED_HOST})
    link = reply.headers.get("Link", "")
    addresses = [part.split(">", 1)[0].lstrip(" <") for part in link.split(",") if part.strip()]
    return {
        "answers": [reply.status],
        "links": len(addresses),
        "link_uses_external_url": bool(addresses) and all(a.startswith(target.external_url) for a in addresses),
        "link_has_forged_host": FORGED_HOST in link,
        "link_has_private_token": "private_token" in link,
    }


# --- 10: other users' namespaces and the last Owner ------------------------------------------


async def _plain_user(target: Target) -> tuple[int, str]:
    """A user who is not an administrator, and a token of theirs (made by root)."""
    name = "plain" + secrets.token_hex(3)
    user = await request("POST", api_url(target, "/users"), json={"username": name, "name": name},
                         headers=as_root(target))
    user_id = orjson.loads(user.body)["id"]
    token = await request("POST", api_url(target, f"/users/{user_id}/personal_access_tokens"),
                          json={"name": "hostile", "scopes": ["api"]}, headers=as_root(target))
    return user_id, orjson.loads(token.body)["token"]


async def ownership(target: Target, _: None) -> dict[str, Any]:
    user_id, token = await _plain_user(target)
    mine = {"PRIVATE-TOKEN": token}
    elsewhere = await request("POST", api_url(target, "/projects"), json={"path_with_namespace": "root/x"},
                              headers=mine)
    own = await request("POST", api_url(target, "/projects"), json={"path": "mine"}, headers=mine)
    project_id = orjson.loads(own.body)["id"]
    demoted = await request("PUT", api_url(target, f"/projects/{project_id}/members/{user_id}"),
                            json={"access_level": 40}, headers=mine)
    return {"answers": [elsewhere.status, demoted.status], "own_project": own.status}


# --- 11: a changed ERRGATE_ROOT_TOKEN --------------------------------------------------------


async def root_token_change(target: Target, _: None) -> dict[str, Any]:
    old, new = target.root_token, "hostile-root-" + secrets.token_hex(12)
    started = time.monotonic()
    await target.restart(ERRGATE_ROOT_TOKEN=new)
    restart_s = _seconds(time.monotonic() - started)
    answers = []
    for token in (old, new):
        answers.append((await request("GET", api_url(target, "/user"), headers={"PRIVATE-TOKEN": token})).status)
    return {"answers": answers, "restart_s": restart_s}


# --- 12: a gzip bomb on /store/ --------------------------------------------------------------


async def store_bomb(target: Target, bomb: bytes) -> dict[str, Any]:
    headers = {**sentry_auth(target), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    reply = await request("POST", ingest_url(target, "store"), data=bomb, headers=headers)
    return {"answers": [reply.status], "body_kb": len(bomb) // 1000, "decoded_mb": BOMB_DECODED_BYTES // MiB}


# The restart comes last: the cases before it use the first root token.
CASES: tuple[Case, ...] = (
    Case("no-credential-tiny-items", "401, quickly, small RSS", no_credential, tiny_items_body),
    Case("tiny-items-with-key", "413 (too many items), quickly, small RSS", tiny_items_with_key, tiny_items_body),
    Case("default-fingerprint", "200, quickly", default_fingerprint, default_fingerprint_envelope),
    Case("gzip-bombs", "liveness stays fast; RSS comes back after", gzip_bombs, gzip_bomb),
    Case("slowloris", "closed after the header timeout", slowloris),
    Case("stalled-body", "408 or closed after the body timeout", stalled_body),
    Case("token-in-bad-request", "JSON 431 and 400; the token in no answer and not in the log", token_in_bad_requests),
    Case("path-ids", "404 each", path_ids),
    Case("bad-bodies", "400 and 415", bad_bodies),
    Case("link-header", "Link under ERRGATE_EXTERNAL_URL, without private_token", link_header),
    Case("ownership", "400 (namespace is not valid), then 403", ownership),
    Case("store-bomb", "413", store_bomb, gzip_bomb),
    Case("root-token-change", "401 for the old token, 200 for the new", root_token_change),
)
