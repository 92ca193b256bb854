"""Reading a body in two steps: a bounded first line (the envelope header), then the rest."""

from __future__ import annotations

import gzip
import os

import pytest

from app.ingest.body import BodyReader
from tests.ingest.refusals import refused
from tests.ingest.test_body import ENCODERS, KIB, MIB, UNLIMITED, Chunks, gzip_bomb, header

LIMIT = 64 * KIB
STEP = 64 * KIB  # the decoded bytes of one decompression call
HEAD = b'{"dsn":"https://key@errgate.test/api/v4/error_tracking/collector/1"}'
BODY = HEAD + b"\n" + os.urandom(3000) * 40 + b"\n" + b"x" * 200_000


def reader(data: bytes, encoding: str | None, size: int = 64 * KIB, **limits: int) -> tuple[BodyReader, Chunks]:
    chunks = Chunks(data, size)
    return BodyReader(chunks, encoding, **{**UNLIMITED, **limits}), chunks


@pytest.mark.parametrize("size", [1, 1000, 64 * KIB])
@pytest.mark.parametrize("name", list(ENCODERS))
async def test_first_line_then_the_whole_body(name: str, size: int) -> None:
    body, _ = reader(ENCODERS[name](BODY), header(name), size)
    assert await body.read_prefix(LIMIT) == HEAD
    assert not body.rest_started
    assert await body.read_rest() == BODY
    assert body.rest_started
    assert body.decoded == len(BODY)


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_only_the_first_line_is_decoded(encoding: str | None) -> None:
    data = BODY + os.urandom(MIB)
    body, chunks = reader(gzip.compress(data) if encoding else data, encoding)
    assert await body.read_prefix(LIMIT) == HEAD
    assert chunks.pulled == 1
    assert body.decoded <= STEP


async def test_a_bomb_after_the_first_line_is_not_inflated() -> None:
    body, chunks = reader(gzip_bomb(1024, HEAD + b"\n"), "gzip")
    assert await body.read_prefix(LIMIT) == HEAD
    assert chunks.pulled == 1
    assert body.decoded <= STEP


async def test_a_first_line_longer_than_the_limit_is_none() -> None:
    body, chunks = reader(gzip_bomb(1024), "gzip")  # no newline at all
    assert await body.read_prefix(LIMIT) is None
    assert body.decoded <= LIMIT + STEP
    assert chunks.pulled == 1
    # A newline found past the limit is too far too.
    data = b"x" * (LIMIT + 1) + b"\n{}"
    assert await reader(data, None, 1000)[0].read_prefix(LIMIT) is None
    assert await reader(data, None, 1000)[0].read_prefix(LIMIT + 1) == data[: LIMIT + 1]


async def test_a_body_without_newline_is_its_own_first_line() -> None:
    for encoding, data in ((None, HEAD), ("gzip", gzip.compress(HEAD))):
        body, _ = reader(data, encoding, 7)
        assert await body.read_prefix(LIMIT) == HEAD
        assert await body.read_rest() == HEAD


@pytest.mark.parametrize("encoding", [None, "gzip", "br", "zstd"])
async def test_empty_body(encoding: str | None) -> None:
    body, _ = reader(b"", encoding)
    assert await body.read_prefix(LIMIT) == b""
    assert await body.read_rest() == b""
    assert body.decoded == 0


async def test_any_separator() -> None:
    body, _ = reader(b"abc\r\ndef\r\n", None, 3)
    assert await body.read_prefix(100, b"\r\n") == b"abc"
    assert await body.read_rest() == b"abc\r\ndef\r\n"


async def test_nothing_is_read_before_the_first_call() -> None:
    body, chunks = reader(gzip.compress(BODY), "compress")  # an encoding it would refuse
    assert (chunks.pulled, body.decoded, body.rest_started) == (0, 0, False)
    with refused() as info:
        await body.read_prefix(LIMIT)
    assert info.value.status == 415


async def test_the_limits_still_apply_to_the_rest() -> None:
    body, _ = reader(gzip_bomb(64, HEAD + b"\n"), "gzip", max_decoded_bytes=MIB)
    assert await body.read_prefix(LIMIT) == HEAD
    with refused() as info:
        await body.read_rest()
    assert info.value.status == 413
    assert body.decoded <= MIB + STEP


async def test_a_truncated_body_is_400_once_read_to_its_end() -> None:
    data = gzip.compress(BODY)[:-20]
    body, _ = reader(data, "gzip")
    assert await body.read_prefix(LIMIT) == HEAD
    with refused() as info:
        await body.read_rest()
    assert info.value.status == 400
    # ...and when the first line is all there is, the prefix already reaches the end.
    body, _ = reader(gzip.compress(HEAD)[:-4], "gzip")
    with refused() as info:
        await body.read_prefix(LIMIT)
    assert info.value.status == 400
