"""Request bodies of the ingest endpoints: Content-Encoding and bounded streaming decompression.

This module owns the first two size limits of the ingest path: the raw bytes a client may send
(``max_body_bytes``) and the bytes those decode to (``max_decoded_bytes``). The body is read as a
stream and decoded in pieces of about 64 KiB, so reading stops as soon as either limit is crossed
and memory stays near the limit: a 1 KB gzip bomb that would inflate to gigabytes is answered 413
after inflating one piece past the limit. It knows gzip/x-gzip, deflate (zlib-wrapped or raw), br,
zstd and identity; ``""`` and ``UTF-8`` (sent by old Android SDKs) mean no encoding.

:class:`BodyReader` reads a body in two steps, a bounded first line then the rest, so that an
envelope can be authenticated from its header before the rest is decoded.

Decoding a large body does not hold up the worker's other requests: past :data:`OFFLOAD_AFTER`
decoded bytes, it goes on in a thread in slices of :data:`SLICE_BYTES`, and every slice is
counted against the caller's budget (``reserve``) as soon as it is decoded.
"""

from __future__ import annotations

import asyncio
import functools
import io
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import brotli
import zstandard

from app.ingest.rejection import Rejection, shown

if not hasattr(brotli.Decompressor, "can_accept_more_data"):
    # Bounded br decoding needs process(output_buffer_limit=...), new in brotli 1.2.
    raise ImportError("app.ingest.body needs brotli >= 1.2")

SUPPORTED_ENCODINGS: frozenset[str] = frozenset({"gzip", "x-gzip", "deflate", "br", "zstd", "identity"})

# Tokens that mean "not encoded": RFC 9110's identity, an empty header (sentry-ruby), and the
# charset the old Android SDK put in Content-Encoding.
_NO_ENCODING = frozenset({"", "identity", "utf-8"})
# Stacked encodings cost one decompressor each; real clients send one.
MAX_STACKED_ENCODINGS = 3

_STEP = 64 * 1024  # decoded bytes produced per decompression call (brotli may overshoot by half)

# zstd: python-zstandard's decompressobj has no output limit, so input is fed in slices small
# enough to bound the output. A zstd block decodes to at most 128 KiB and the smallest block that
# does (an RLE block) is 4 bytes, so one input byte yields at most 32 KiB.
_ZSTD_MAX_RATIO = 32 * 1024
_ZSTD_STEP_BUDGET = 4 * 1024 * 1024  # worst-case output of one slice: 4 MiB (+ one pending block)
_ZSTD_MIN_SLICE = 16
# RFC 9659: a zstd content coding uses a window of at most 8 MB, and a decoder may refuse more. The
# library's own limit is 128 MiB, which a frame of a few bytes could make a request allocate.
_ZSTD_MAX_WINDOW = 8 * 1024 * 1024

# Handing a slice to a thread costs tens of microseconds and most events are a few KB, so a body
# is decoded on the event loop up to OFFLOAD_AFTER bytes, then in a thread: zlib, brotli and
# zstandard release the GIL while they decode, and the loop only waits for each slice.
OFFLOAD_AFTER = 256 * 1024
SLICE_BYTES = 1024 * 1024  # about a millisecond of inflating

Reserve = Callable[[int], None]
"""Counts decoded bytes against a budget as they are decoded; raises to refuse them."""
Offload = Callable[..., Awaitable[Any]]
"""``offload(function, *args)`` runs ``function(*args)`` in a thread: :func:`asyncio.to_thread`'s shape."""


# Clients send a handful of distinct values: each is parsed once (a refused one every time).
@functools.lru_cache(maxsize=64)
def parse_content_encoding(value: str | None) -> tuple[str, ...]:
    """The codings of a Content-Encoding header in the order they were applied (lowercased).

    Tokens meaning "no encoding" are dropped, so ``()`` means the body is sent as is.
    Raises 415 for an unknown coding or more than :data:`MAX_STACKED_ENCODINGS`.
    """
    if value is None:
        return ()
    codings: list[str] = []
    for token in value.split(","):
        name = token.strip().lower()
        if name in _NO_ENCODING:
            continue
        if name not in SUPPORTED_ENCODINGS:
            coding = shown(token.strip(), tail="...'")
            supported = ", ".join(sorted(SUPPORTED_ENCODINGS))
            raise Rejection(
                415,
                "unsupported content encoding",
                [f"Content-Encoding {coding} is not supported (supported: {supported})"],
            )
        codings.append(name)
    if len(codings) > MAX_STACKED_ENCODINGS:
        raise Rejection(
            415,
            "unsupported content encoding",
            [f"Content-Encoding stacks {len(codings)} codings; at most {MAX_STACKED_ENCODINGS} are accepted"],
        )
    return tuple(codings)


class BodyReader:
    """One request body decoded as it is read, in two steps if wanted: a bounded prefix
    (:meth:`read_prefix`, e.g. the envelope header line), then the rest (:meth:`read_rest`).

    413 as soon as more than ``max_body_bytes`` arrive or more than ``max_decoded_bytes`` are
    decoded (no further chunk is read); 415 for an unknown encoding; 400 for corrupt or truncated
    compressed data. An empty body is ``b""`` whatever the encoding. Decoded bytes are counted
    with ``reserve`` as they are decoded (a slice at most after); whatever it raises ends the reading.

    Nothing is read or decoded before the first call, so a request refused on its headers costs
    nothing, and one refused on its prefix costs the prefix. ``decoded`` counts the bytes decoded
    so far and ``rest_started`` tells whether :meth:`read_rest` was called. :meth:`close` frees
    the decoded bytes; the owner calls it when the request ends, whatever the outcome.
    """

    __slots__ = (
        "_chunks", "_content_encoding", "_max_body_bytes", "_max_decoded_bytes", "_reserve", "_offload",
        "_decoders", "_raw_limit", "_received", "_pending", "_body", "decoded", "rest_started",
    )

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        content_encoding: str | None,
        *,
        max_body_bytes: int,
        max_decoded_bytes: int,
        reserve: Reserve = lambda size: None,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self._chunks = chunks
        self._content_encoding = content_encoding
        self._max_body_bytes = max_body_bytes
        self._max_decoded_bytes = max_decoded_bytes
        self._reserve = reserve
        self._offload = offload
        self._decoders: list[_Decoder] | None = None  # None until the first read
        self._raw_limit = 0
        self._received = 0
        self._pending: Iterator[bytes] = iter(())  # decoded pieces of a chunk read_prefix stopped inside
        self._body = io.BytesIO()  # getvalue() hands over its buffer without a copy
        self.decoded = 0
        self.rest_started = False

    async def read_prefix(self, limit: int, until: bytes = b"\n") -> bytes | None:
        """The decoded bytes before the first ``until`` (the whole body when it has none), or None
        when more than ``limit`` decoded bytes come before it.

        Reading stops at the piece holding ``until`` or crossing ``limit``, so at most ``limit``
        plus one decoding step (about 64 KiB) is decoded, on the event loop. Each piece is searched
        once as it arrives (with the bytes before it that ``until`` could straddle), and only the
        prefix is copied out; the bytes decoded stay for :meth:`read_rest`.
        """
        body = self._body
        chunks = self._start()
        straddle = len(until) - 1
        tail = b""  # the last ``straddle`` bytes written
        while True:
            piece = next(self._pending, None)
            if piece is None:
                chunk = await anext(chunks, None)
                if chunk is None:
                    self._finish()
                    return body.getvalue()
                self._pending = self._feed(chunk)
                continue
            window = tail + piece
            at = window.find(until)
            end = body.tell() - len(tail) + at
            self._reserve(len(piece))
            body.write(piece)
            self.decoded += len(piece)
            if at >= 0:
                return bytes(body.getbuffer()[:end]) if end <= limit else None
            if body.tell() > limit:
                return None
            tail = window[len(window) - straddle :] if straddle else b""

    async def read_rest(self) -> bytes:
        """The whole decoded body: what :meth:`read_prefix` decoded, then the rest.

        Past :data:`OFFLOAD_AFTER` decoded bytes, compressed input is decoded in a thread, a
        slice of :data:`SLICE_BYTES` at a time, each counted with ``reserve`` once decoded.
        """
        self.rest_started = True
        chunks = self._start()
        body = self._body
        try:
            await self._write_all(self._pending)
            async for chunk in chunks:
                await self._write_all(self._feed(chunk))
        finally:
            self.decoded = body.tell()
        self._finish()
        return body.getvalue()

    async def _write_all(self, pieces: Iterator[bytes]) -> None:
        body, reserve = self._body, self._reserve
        if not self._decoders:  # sent as is: nothing to decode, so nothing to hand to a thread
            for piece in pieces:
                reserve(len(piece))
                body.write(piece)
            return
        inline = OFFLOAD_AFTER - body.tell()
        if inline > 0:
            written = _write(pieces, body, inline)
            reserve(written)
            if written < inline:
                return  # the whole chunk is decoded
        while written := await self._offload(_write, pieces, body, SLICE_BYTES):
            reserve(written)

    def close(self) -> None:
        """Free the decoded bytes (the value :meth:`read_rest` returned keeps its own reference).

        A failure's traceback keeps the reading frames alive, and aiohttp keeps a client's
        disconnection error on the request's stream, in a reference cycle that only a full
        collection frees: closing frees the buffer now.
        """
        if not self._body.closed:
            self.decoded = self._body.tell()
            self._body.close()

    def _start(self) -> AsyncIterator[bytes]:
        if self._decoders is None:
            codings = parse_content_encoding(self._content_encoding)
            # The last coding applied is the first to undo.
            self._decoders = [_new_decoder(name, self._max_decoded_bytes) for name in reversed(codings)]
            # Without an encoding the raw bytes are the decoded bytes, so both limits apply to them.
            self._raw_limit = self._max_body_bytes if codings else min(self._max_body_bytes, self._max_decoded_bytes)
            self._chunks = aiter(self._chunks)
        return self._chunks  # type: ignore[return-value]

    def _feed(self, chunk: bytes) -> Iterator[bytes]:
        """The decoded pieces of one raw chunk, lazily."""
        if not chunk:
            return iter(())
        self._received += len(chunk)
        if self._received > self._raw_limit:
            raise Rejection(
                413, "request body too large", [f"the request body is larger than {self._raw_limit} bytes"]
            )
        if not self._decoders:
            return iter((chunk,))
        if len(self._decoders) == 1:  # what clients send: no generator around the decoder's own
            return self._decoders[0].feed(chunk)
        return _decode(self._decoders, 0, chunk)

    def _finish(self) -> None:
        # An empty body is b"" whatever the encoding (the decoders would call it truncated).
        if self._received:
            for decoder in self._decoders or ():
                decoder.finish()


def _write(pieces: Iterator[bytes], body: io.BytesIO, size: int) -> int:
    """Write the next pieces of ``pieces`` to ``body`` until ``size`` bytes or more are written, or
    they run out; returns how many were written."""
    written = 0
    for piece in pieces:
        written += body.write(piece)
        if written >= size:
            break
    return written


def _decode(decoders: Sequence[_Decoder], index: int, data: bytes) -> Iterator[bytes]:
    """Push ``data`` through ``decoders[index:]``; lazily, so each stage holds one piece at a time."""
    if index == len(decoders):
        yield data
        return
    for piece in decoders[index].feed(data):
        yield from _decode(decoders, index + 1, piece)


def _new_decoder(name: str, limit: int) -> _Decoder:
    if name == "br":
        return _BrotliDecoder(name, limit)
    if name == "zstd":
        return _ZstdDecoder(name, limit)
    return _ZlibDecoder(name, limit)


def _decoded_too_large(name: str, limit: int) -> Rejection:
    return Rejection(
        413, "request body too large", [f"the {name}-decoded request body is larger than {limit} bytes"]
    )


class _Decoder:
    """One decoding stage: ``feed`` yields output in bounded pieces, ``finish`` checks the end."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self._limit = limit
        self._produced = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def _emit(self, out: bytes) -> bytes:
        self._produced += len(out)
        if self._produced > self._limit:
            raise _decoded_too_large(self.name, self._limit)
        return out

    def _corrupt(self, reason: str) -> Rejection:
        return Rejection(400, "invalid request body", [f"the {self.name} data is corrupt: {reason}"])

    def _truncated(self) -> Rejection:
        return Rejection(400, "invalid request body", [f"the {self.name} data is truncated"])

    def _trailing(self) -> Rejection:
        return Rejection(
            400, "invalid request body", [f"unexpected bytes after the end of the {self.name} data"]
        )


class _ZlibDecoder(_Decoder):
    """gzip, x-gzip and deflate. gzip accepts several members (as gunzip does)."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(name, limit)
        self._gzip = name != "deflate"
        self._inflater: zlib._Decompress | None = None  # None between streams
        self._head = b""  # the first byte of a stream, kept until the second arrives
        self._streams = 0  # streams completed

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._inflater is None:
                data = self._head + data
                if len(data) < 2:  # choosing the wrapper needs two bytes
                    self._head = data
                    return
                self._head = b""
                self._inflater = self._start_stream(data)
            inflater = self._inflater
            try:
                out = inflater.decompress(data, _STEP)
            except zlib.error as exc:
                raise self._corrupt(str(exc)) from None
            data = inflater.unconsumed_tail
            if out:
                yield self._emit(out)
            if inflater.eof:
                data = inflater.unused_data
                self._inflater = None
                self._streams += 1
                if not data:
                    return
            elif not data and len(out) < _STEP:
                # All input consumed and the output buffer was not filled: nothing is pending.
                return

    def _start_stream(self, data: bytes) -> zlib._Decompress:
        if self._streams and not (self._gzip and data[:2] == b"\x1f\x8b"):
            raise self._trailing()
        if self._gzip:
            return zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip header, or a zlib one (lenient)
        # HTTP deflate is zlib-wrapped (RFC 9110), but some clients send raw deflate.
        return zlib.decompressobj(zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS)

    def finish(self) -> None:
        if self._inflater is not None or self._head or not self._streams:
            raise self._truncated()


def _is_zlib_header(data: bytes) -> bool:
    """RFC 1950 header: method 8, window <= 32 KiB, check bits, no preset dictionary.

    A raw deflate stream can start with such two bytes only if its first block is a stored block
    whose length happens to fit; real clients do not produce that.
    """
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0 and not flg & 0x20


class _BrotliDecoder(_Decoder):
    """br, with brotli >= 1.2's output_buffer_limit."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(name, limit)
        self._decompressor = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        decompressor = self._decompressor
        if decompressor.is_finished():
            raise self._trailing()
        while True:
            try:
                out = decompressor.process(data, output_buffer_limit=_STEP)
            except brotli.error as exc:
                raise self._corrupt(str(exc)) from None
            data = b""
            if out:
                yield self._emit(out)
                if decompressor.is_finished():  # the stream's end, all its output taken: no call to drain
                    return
            # can_accept_more_data() turns true while output may still be pending, so drain
            # until a call produces nothing.
            elif decompressor.can_accept_more_data() or decompressor.is_finished():
                return

    def finish(self) -> None:
        if not self._decompressor.is_finished():
            raise self._truncated()


class _ZstdDecoder(_Decoder):
    """zstd, with or without the content size in the frame; concatenated frames are decoded in turn."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(name, limit)
        self._context = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
        self._frame: zstandard.ZstdDecompressionObj | None = None  # None between frames
        self._frames = 0  # frames completed

    def feed(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            if self._frame is None:
                self._frame = self._context.decompressobj()
            budget = min(self._limit - self._produced, _ZSTD_STEP_BUDGET)
            size = max(_ZSTD_MIN_SLICE, budget // _ZSTD_MAX_RATIO)
            piece = view[pos : pos + size]
            pos += len(piece)
            try:
                out = self._frame.decompress(piece)
            except zstandard.ZstdError as exc:
                raise self._corrupt(str(exc)) from None
            if out:
                yield self._emit(out)
            if self._frame.eof:
                pos -= len(self._frame.unused_data)  # the next frame starts inside this slice
                self._frame = None
                self._frames += 1

    def finish(self) -> None:
        if self._frame is not None or not self._frames:
            raise self._truncated()
