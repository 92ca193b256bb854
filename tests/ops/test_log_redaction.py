"""Nothing secret in logs, nothing raw in answers: requests aiohttp cannot parse, and 500s, with a token and a key in them.

aiohttp's parser messages quote the raw request line or header; its default answer echoes
them and its server logger writes them. Every such request is sent here to a real
``errgate serve`` carrying a known token and a known client key; every answer must be JSON with
the right status, and neither secret may appear in any answer or in anything errgate wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import secrets
from typing import Iterator

import orjson
import pytest
from aiohttp import web

from app.logs import KEYWORDS, REDACTED, JsonFormatter, redact
from app.server import create_app, make_runner
from tests.conftest import serving, url_of
from tests.conftest import test_settings as settings_for
from tests.ops.conftest import ProcessFactory
from tests.ops.rawhttp import Answer, RawConnection

# Neither looks like errgate's own tokens (glpat-..., glet_...): only where they stand gives them away.
TOKEN = "tok" + secrets.token_hex(10)
KEY = secrets.token_hex(16)
LONG = "x" * 9000  # past aiohttp's 8190-byte limit on a request line or header line

BAD_REQUESTS: dict[str, tuple[list[bytes], int]] = {
    "URL too long": (
        [f"GET /api/v4/projects?private_token={TOKEN}&q={LONG} HTTP/1.1\r\nHost: e\r\n\r\n".encode()], 431,
    ),
    "control character in the token header": (
        [f"GET /api/v4/user HTTP/1.1\r\nHost: e\r\nPRIVATE-TOKEN: {TOKEN}\x01\r\n\r\n".encode()], 400,
    ),
    "NUL in the authorization header": (
        [f"GET /api/v4/user HTTP/1.1\r\nHost: e\r\nAuthorization: Bearer {TOKEN}\x00\r\n\r\n".encode()], 400,
    ),
    "header too long": (
        [f"POST /api/1/envelope/ HTTP/1.1\r\nHost: e\r\nX-Sentry-Auth: Sentry sentry_key={KEY},{LONG}\r\n\r\n".encode()],
        431,
    ),
    "too many headers": (
        [(f"GET /api/v4/user?private_token={TOKEN} HTTP/1.1\r\nHost: e\r\n"
          + "".join(f"X-Filler-{i}: {TOKEN}\r\n" for i in range(200)) + "\r\n").encode()], 431,
    ),
    "bad method": ([f"G(T /api/v4/user?private_token={TOKEN} HTTP/1.1\r\nHost: e\r\n\r\n".encode()], 400),
    "bad HTTP version": ([f"GET /api/v4/user?private_token={TOKEN} HTTP/9.Q\r\nHost: e\r\n\r\n".encode()], 400),
    "client key on a bad request": (
        [f"GET /api/1/store/?sentry_key={KEY} HTTP/1.1\r\nHost: e\r\nX-Sentry-Auth: Sentry sentry_key={KEY}\r\n"
         f"Content-Length: 1\r\nContent-Length: 2\r\n\r\n".encode()], 400,
    ),
    "invalid chunked encoding": (
        [f"POST /api/v4/projects?private_token={TOKEN} HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n"
         f"zz\r\n{TOKEN}\r\n0\r\n\r\n".encode()], 400,
    ),
    "invalid chunk after the head": (
        [f"POST /api/v4/projects HTTP/1.1\r\nHost: e\r\nPRIVATE-TOKEN: {TOKEN}\r\nContent-Type: application/json\r\n"
         f"Transfer-Encoding: chunked\r\n\r\n".encode(),
         f"2\r\n{{}}\r\n{TOKEN}\r\n0\r\n\r\n".encode()], 400,
    ),
}

STATUS_MESSAGES = {
    400: "400 Bad Request", 417: "417 Expectation Failed", 431: "431 Request Header Fields Too Large",
    500: "500 Internal Server Error",
}


def assert_json_problem(answer: Answer, status: int) -> None:
    assert answer.status == status, answer.raw
    assert answer.json() == {"message": STATUS_MESSAGES[status]}, answer.raw
    assert answer.headers.get("x-content-type-options") == "nosniff", answer.raw
    assert TOKEN.encode() not in answer.raw and KEY.encode() not in answer.raw, answer.raw


async def send(url: str, pieces: list[bytes], *, then_closed: bool = False) -> Answer:
    """Send the pieces of a request and read its answer (after which errgate must close the connection)."""
    async with RawConnection(url) as conn:
        for index, piece in enumerate(pieces):
            if index:
                await asyncio.sleep(0.2)  # so that errgate reads the head alone first
            await conn.send(piece)
        answer = await conn.answer()
        if then_closed:
            assert await conn.closed(5.0), answer.raw
        return answer


def log_lines(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


async def test_unparsable_requests_answer_json_and_log_no_secret(errgate_process: ProcessFactory) -> None:
    # TOKEN is root's token there, so that the request with a bad chunk gets as far as reading its body.
    async with errgate_process(ERRGATE_LOG_LEVEL="debug", ERRGATE_ROOT_TOKEN=TOKEN) as proc:
        for pieces, status in BAD_REQUESTS.values():
            answer = await send(proc.url, pieces, then_closed=True)
            assert_json_problem(answer, status)
        proc.terminate()
        assert await proc.wait(10) == 0
    text = proc.log()
    assert TOKEN not in text and KEY not in text
    lines = log_lines(text)  # and every line is still JSON
    refused = [line for line in lines if line["message"] == "unparsable request"]
    assert len(refused) == len(BAD_REQUESTS), refused
    assert {line["error"] for line in refused} >= {"LineTooLong", "BadHttpMessage", "BadHttpMethod"}
    assert all(set(line) == {"time", "level", "logger", "message", "error", "status"} for line in refused), refused


async def test_an_unknown_expect_header_is_answered_in_json_without_echo(errgate_process: ProcessFactory) -> None:
    async with errgate_process() as proc:
        request = (f"POST /api/v4/projects HTTP/1.1\r\nHost: e\r\nExpect: {TOKEN}\r\nContent-Length: 2\r\n\r\n{{}}")
        assert_json_problem(await send(proc.url, [request.encode()]), 417)


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """What errgate's JSON handler writes, in memory (errgate serve writes the same to stderr)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


async def _fail_with_the_url(request: web.Request) -> web.Response:
    raise RuntimeError(f"failed while handling {request.url} with {dict(request.headers)!r}")


async def test_a_500_logs_the_traceback_without_the_token(database_url: str) -> None:
    """errgate's error middleware logs the traceback of an unexpected exception: redacted."""
    app = create_app(settings_for(database_url))
    app.router.add_get("/fail", _fail_with_the_url)
    with captured_logs() as logs:
        async with serving(app) as runner:
            request = f"GET /fail?private_token={TOKEN} HTTP/1.1\r\nHost: e\r\nX-Sentry-Auth: Sentry sentry_key={KEY}\r\n\r\n"
            answer = await send(url_of(runner), [request.encode()])
    assert_json_problem(answer, 500)
    text = logs.getvalue()
    assert TOKEN not in text and KEY not in text
    failures = [line for line in log_lines(text) if line["message"] == "unhandled error"]
    assert len(failures) == 1 and f"private_token={REDACTED}" in str(failures[0]["exception"]), failures


async def test_a_500_outside_the_middlewares_is_json_and_redacted() -> None:
    """aiohttp's own 500 (an exception no middleware caught) answers JSON and logs redacted."""
    app = web.Application()
    app.router.add_get("/fail", _fail_with_the_url)
    with captured_logs() as logs:
        runner = make_runner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            request = f"GET /fail?private_token={TOKEN} HTTP/1.1\r\nHost: e\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            answer = await send(url_of(runner), [request.encode()])
        finally:
            await runner.cleanup()
    assert_json_problem(answer, 500)
    text = logs.getvalue()
    assert TOKEN not in text
    assert any(line["logger"] == "errgate.http" and "exception" in line for line in log_lines(text)), text


# --- redact() --------------------------------------------------------------------------------

SECRET = "s3cr3tvalue"


@pytest.mark.parametrize(
    "text",
    [
        f"GET /api/v4/user?private_token={SECRET}&page=2 HTTP/1.1",
        f"/?access_token={SECRET}",
        f"bytearray(b'/api/1/store/?sentry_key={SECRET}&sentry_version=7...')",
        f"b'PRIVATE-TOKEN: {SECRET}\\x01'",
        f"b'X-Sentry-Auth: Sentry sentry_key={SECRET}, sentry_version=7\\r\\nHost: e'",
        f"Authorization: Bearer {SECRET}\r\nHost: e",
        f"<CIMultiDictProxy('Host': 'e', 'Authorization': 'Basic {SECRET}==', 'Cookie': 'session={SECRET}')>",
        f'{{"private-token": "{SECRET}"}}',
        f"Set-Cookie: id={SECRET}; Path=/",
        f"sentry_secret={SECRET}",
        f"password={SECRET}",
        f"token glpat-{SECRET} and key glet_{SECRET}",
        f"SENTRY_DSN=https://{SECRET}@errgate.example/api/v4/error_tracking/collector/1",
        f"postgresql://errgate:{SECRET}@db/errgate",
    ],
)
def test_redact_masks_secrets_wherever_they_stand(text: str) -> None:
    redacted = redact(text)
    assert SECRET not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "text",
    ["request", "errgate listening", "/api/v4/projects/{id}/error_tracking/client_keys", "basic checks passed"],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_every_secret_pattern_is_found_by_its_keyword() -> None:
    """Lines without a keyword skip the patterns: each pattern must contain one."""
    samples = ["private_token=x", "access-token=x", "job_token: x", "sentry_key=x", "X-Sentry-Auth: x",
               "Authorization: x", "Cookie: x", "glpat-x", "glet_x", "Bearer x", "Basic x", "http://u@h", "password=x"]
    for sample in samples:
        assert any(word in sample.lower() for word in KEYWORDS), sample
        assert redact(sample) != sample, sample


def test_the_formatter_redacts_message_arguments_extras_and_tracebacks() -> None:
    try:
        raise ValueError(f"bad request line b'GET /?private_token={SECRET} HTTP/1.1'")
    except ValueError as exc:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling %s", (f"/?sentry_key={SECRET}",),
            (type(exc), exc, exc.__traceback__),
        )
    record.headers = {"PRIVATE-TOKEN": SECRET, "Accept": "*/*"}
    record.url = f"http://h/?private_token={SECRET}"
    line = JsonFormatter().format(record)
    entry = orjson.loads(line)
    assert SECRET not in line
    assert entry["message"] == f"Error handling /?sentry_key={REDACTED}"
    assert entry["headers"] == {"PRIVATE-TOKEN": REDACTED, "Accept": "*/*"}
    assert "ValueError" in entry["exception"]
