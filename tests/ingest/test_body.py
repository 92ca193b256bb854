"""Request body decoding: every Content-Encoding, both size limits, bombs, corrupt and truncated data."""

from __future__ import annotations

import gzip
import io
import os
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from app.problems import HTTPProblem
from app.ingest.body import SUPPORTED_ENCODINGS, parse_content_encoding
from app.ingest.rejection import Rejection
from app.ingest.routes import as_problem
from tests.ingest.bodies import read_body
from tests.ingest.refusals import refused

KIB = 1024
MIB = 1024 * KIB
DATA = os.urandom(3000) * 40 + b"{" + b"x" * 200_000 + b"}\n"  # incompressible and compressible parts
UNLIMITED = dict(max_body_bytes=1 << 40, max_decoded_bytes=1 << 40)


class Chunks:
    """An async iterator over ``data`` in ``size``-byte chunks that counts how many were pulled."""

    def __init__(self, data: bytes, size: int = 64 * KIB) -> None:
        self.data = data
        self.size = size
        self.pulled = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        start = self.pulled * self.size
        if start >= len(self.data):
            raise StopAsyncIteration
        self.pulled += 1
        return self.data[start : start + self.size]

    @property
    def total(self) -> int:
        return -(-len(self.data) // self.size)


async def decode(data: bytes, encoding: str | None, size: int = 64 * KIB, **limits: int) -> bytes:
    return await read_body(Chunks(data, size), encoding, **{**UNLIMITED, **limits})


async def problem(data: bytes, encoding: str | None, size: int = 64 * KIB, **limits: int) -> HTTPProblem:
    with refused() as info:
        await decode(data, encoding, size, **limits)
    return info.value


def zstd_without_size(data: bytes) -> bytes:
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate (raw)": raw_deflate,
    "br": lambda data: brotli.compress(data, quality=4),
    "zstd": zstandard.ZstdCompressor().compress,
    "zstd (no content size)": zstd_without_size,
}


def header(name: str) -> str:
    return name.split(" ")[0]


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [7, 1000, 64 * KIB])
@pytest.mark.parametrize("name", list(ENCODERS))
async def test_round_trip(name: str, size: int) -> None:
    compressed = ENCODERS[name](DATA)
    assert await decode(compressed, header(name), size) == DATA


@pytest.mark.parametrize("name", list(ENCODERS))
async def test_round_trip_one_byte_chunks(name: str) -> None:
    small = b'{"type":"event"}\n' * 20
    assert await decode(ENCODERS[name](small), header(name), 1) == small


@pytest.mark.parametrize("encoding", [None, "", "  ", "identity", "IDENTITY", "UTF-8", "utf-8", " Utf-8 "])
async def test_no_encoding(encoding: str | None) -> None:
    assert await decode(DATA, encoding, 1000) == DATA


@pytest.mark.parametrize("encoding", ["GZIP", " gzip ", "X-Gzip", "Br", "ZSTD", "Deflate"])
async def test_encoding_names_are_case_insensitive_and_trimmed(encoding: str) -> None:
    name = encoding.strip().lower()
    assert await decode(ENCODERS[name](DATA), encoding) == DATA


async def test_stacked_encodings_are_undone_in_reverse() -> None:
    body = brotli.compress(gzip.compress(DATA))
    assert await decode(body, "gzip, br") == DATA
    assert await decode(zlib.compress(DATA), "identity, deflate") == DATA


def test_parse_content_encoding() -> None:
    assert parse_content_encoding(None) == ()
    assert parse_content_encoding(" UTF-8 ") == ()
    assert parse_content_encoding("x-gzip, identity, BR") == ("x-gzip", "br")
    assert {"gzip", "x-gzip", "deflate", "br", "zstd", "identity"} == SUPPORTED_ENCODINGS


async def test_gzip_with_several_members() -> None:
    assert await decode(gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:]), "gzip", 333) == DATA


async def test_zstd_with_several_frames() -> None:
    body = zstandard.ZstdCompressor().compress(DATA[:1000]) + zstd_without_size(DATA[1000:])
    assert await decode(body, "zstd", 333) == DATA


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", None])
async def test_empty_body_is_empty_whatever_the_encoding(encoding: str | None) -> None:
    assert await decode(b"", encoding) == b""


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    data=st.binary(max_size=3000),
    name=st.sampled_from(sorted(ENCODERS)),
    size=st.integers(min_value=1, max_value=700),
)
async def test_round_trip_property(data: bytes, name: str, size: int) -> None:
    assert await decode(ENCODERS[name](data), header(name), size) == data


# --- unsupported encodings -----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["compress", "lz4", "gzip;q=1", "utf-16", "br, snappy"])
async def test_unknown_encoding_is_415_naming_it(encoding: str) -> None:
    error = await problem(b"data", encoding)
    assert error.status == 415
    assert error.body["detail"] == "unsupported content encoding"
    unknown = encoding.split(", ")[-1]
    assert f"Content-Encoding '{unknown}' is not supported" in error.body["causes"][0]


async def test_too_many_stacked_encodings_is_415() -> None:
    error = await problem(b"data", "gzip, gzip, gzip, gzip")
    assert error.status == 415
    assert "stacks 4 codings" in error.body["causes"][0]


# --- corrupt and truncated data ------------------------------------------------------------


@pytest.mark.parametrize("name", ["gzip", "x-gzip", "deflate", "br", "zstd"])
async def test_corrupt_data_is_400_naming_the_encoding(name: str) -> None:
    error = await problem(b"this is not compressed at all, not even a little" * 10, name)
    assert error.status == 400
    assert error.body["detail"] == "invalid request body"
    assert error.body["causes"][0].startswith(f"the {name} data is corrupt")


@pytest.mark.parametrize("name", list(ENCODERS))
async def test_truncated_data_is_400(name: str) -> None:
    compressed = ENCODERS[name](DATA)
    error = await problem(compressed[: len(compressed) // 2], header(name), 1000)
    assert error.status == 400
    assert error.body["causes"] == [f"the {header(name)} data is truncated"]


@pytest.mark.parametrize("name", ["gzip", "deflate", "zstd"])
async def test_one_byte_of_compressed_data_is_truncated(name: str) -> None:
    error = await problem(ENCODERS[name](DATA)[:1], name)
    assert error.status == 400
    assert error.body["causes"] == [f"the {name} data is truncated"]


@pytest.mark.parametrize("name", ["gzip", "deflate"])
async def test_bytes_after_the_end_are_400(name: str) -> None:
    error = await problem(ENCODERS[name](DATA) + b"garbage", name)
    assert error.status == 400
    assert error.body["causes"] == [f"unexpected bytes after the end of the {name} data"]


@pytest.mark.parametrize("name", ["br", "zstd"])
async def test_bytes_after_the_end_are_400_br_zstd(name: str) -> None:
    error = await problem(ENCODERS[name](DATA) + b"garbage!", name)
    assert error.status == 400
    assert error.body["causes"][0].startswith(f"the {name} data is")


async def test_bit_flip_in_gzip_is_400() -> None:
    compressed = bytearray(gzip.compress(DATA))
    compressed[len(compressed) // 2] ^= 0xFF
    error = await problem(bytes(compressed), "gzip")
    assert error.status == 400
    assert "gzip data is corrupt" in error.body["causes"][0]


# --- limits --------------------------------------------------------------------------------


async def test_raw_limit_is_413_and_stops_reading() -> None:
    chunks = Chunks(DATA, 1000)
    with refused() as info:
        await read_body(chunks, None, max_body_bytes=5000, max_decoded_bytes=1 << 30)
    assert info.value.status == 413
    assert info.value.body == {
        "detail": "request body too large",
        "causes": ["the request body is larger than 5000 bytes"],
    }
    assert chunks.pulled == 6  # the chunk that crossed the limit was the last one read


async def test_raw_limit_counts_compressed_bytes() -> None:
    compressed = gzip.compress(DATA)
    assert await decode(compressed, "gzip", max_body_bytes=len(compressed)) == DATA
    error = await problem(compressed, "gzip", max_body_bytes=len(compressed) - 1)
    assert error.status == 413
    assert error.body["causes"] == [f"the request body is larger than {len(compressed) - 1} bytes"]


async def test_identity_body_over_decoded_limit_is_413() -> None:
    assert await decode(DATA, None, max_decoded_bytes=len(DATA)) == DATA
    error = await problem(DATA, None, max_decoded_bytes=len(DATA) - 1)
    assert error.status == 413
    assert error.body["causes"] == [f"the request body is larger than {len(DATA) - 1} bytes"]


@pytest.mark.parametrize("name", list(ENCODERS))
async def test_decoded_limit_is_exact(name: str) -> None:
    compressed = ENCODERS[name](DATA)
    assert await decode(compressed, header(name), max_decoded_bytes=len(DATA)) == DATA
    error = await problem(compressed, header(name), max_decoded_bytes=len(DATA) - 1)
    assert error.status == 413
    assert error.body == {
        "detail": "request body too large",
        "causes": [f"the {header(name)}-decoded request body is larger than {len(DATA) - 1} bytes"],
    }


async def test_gzip_bomb_of_one_megabyte_of_zeros() -> None:
    bomb = gzip.compress(bytes(MIB))
    error = await problem(bomb, "gzip", max_decoded_bytes=64 * KIB)
    assert error.status == 413
    assert error.body["causes"] == ["the gzip-decoded request body is larger than 65536 bytes"]


def gzip_bomb(mebibytes: int, prefix: bytes = b"") -> bytes:
    """A gzip stream of ``prefix`` then ``mebibytes`` MiB of zeros, about 1 KB per MiB, built without inflating it.

    After a full flush the compressor starts afresh, so every 1 MiB block compresses to the same
    bytes and can be repeated. It has no trailer: a reader that works must stop long before.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    first = compressor.compress(prefix + zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert block == compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + block * (mebibytes - 1)


def brotli_bomb(mebibytes: int) -> bytes:
    compressor = brotli.Compressor(quality=1)
    zeros = bytes(MIB)
    return b"".join(compressor.process(zeros) for _ in range(mebibytes)) + compressor.finish()


def zstd_bomb(mebibytes: int) -> bytes:
    compressor = zstandard.ZstdCompressor(level=1).compressobj()  # streaming: no content size
    zeros = bytes(MIB)
    return b"".join(compressor.compress(zeros) for _ in range(mebibytes)) + compressor.flush()


@pytest.mark.parametrize(
    ("name", "bomb", "limit"),
    [
        ("gzip", lambda: gzip_bomb(1024), 64 * KIB),  # ~1 MB inflating to 1 GiB
        ("gzip", lambda: gzip_bomb(1024), 8 * MIB),
        ("br", lambda: brotli_bomb(256), 64 * KIB),
        ("zstd", lambda: zstd_bomb(256), 64 * KIB),
        ("zstd", lambda: zstd_bomb(256), 8 * MIB),
    ],
)
async def test_bomb_is_stopped_quickly_with_memory_near_the_limit(
    name: str, bomb: Callable[[], bytes], limit: int
) -> None:
    body = bomb()
    chunks = Chunks(body, min(64 * KIB, len(body) // 16))  # br and zstd bombs are only a few KB
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with refused() as info:
            await read_body(chunks, name, max_body_bytes=1 << 30, max_decoded_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    assert info.value.status == 413
    assert info.value.body["causes"] == [f"the {name}-decoded request body is larger than {limit} bytes"]
    assert chunks.pulled < chunks.total  # reading stopped before the end of the body
    # The decoded body so far, one piece past the limit, one raw chunk, the decompressor's state;
    # a zstd piece can reach 4 MiB (zstd is fed input slices, not asked for bounded output).
    slack = 6 * MIB if name == "zstd" else 2 * MIB
    assert peak < limit + slack, peak
    assert elapsed < 5, elapsed


def zstd_with_window(window_log: int, data: bytes) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as writer:
        writer.write(data)  # streamed: the frame declares its window, not a content size
    return out.getvalue()


async def test_zstd_window_over_8_mib_is_400() -> None:
    # RFC 9659: zstd content codings use windows of at most 8 MB; a larger one is memory a
    # frame of a few bytes would make errgate allocate.
    assert await decode(zstd_with_window(23, DATA), "zstd") == DATA
    error = await problem(zstd_with_window(24, DATA), "zstd")
    assert error.status == 400
    assert error.body["causes"][0].startswith("the zstd data is corrupt")
    assert "too much memory" in error.body["causes"][0]


@st.composite
def damaged_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(ENCODERS)))
    body = bytearray(ENCODERS[name](draw(st.binary(max_size=500))))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(body)))
        kind = draw(st.sampled_from(["truncate", "flip", "insert"]))
        if kind == "truncate":
            del body[pos:]
        elif kind == "insert":
            body[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif pos < len(body):
            body[pos] ^= 1 << draw(st.integers(0, 7))
    return header(name), bytes(body)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(damaged_bodies() | st.tuples(st.sampled_from(["gzip", "deflate", "br", "zstd"]), st.binary(max_size=200)))
async def test_damaged_bodies_give_bytes_or_a_4xx(case: tuple[str, bytes]) -> None:
    encoding, body = case
    try:
        decoded = await decode(body, encoding, 97, max_decoded_bytes=4096)
    except Rejection as rejection:
        problem = as_problem(rejection)
        assert problem.status in (400, 413)
        assert problem.body["causes"]
    else:
        assert isinstance(decoded, bytes)
