"""A raw HTTP/1.1 client on a TCP socket, for what no HTTP library sends: slow, stalled or malformed requests."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from urllib.parse import urlsplit

import orjson


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lowercased
    body: bytes
    raw: bytes  # the whole answer as received, status line and headers included

    def json(self) -> object:
        assert self.headers.get("content-type", "").startswith("application/json"), self.raw
        return orjson.loads(self.body)


def post_head(path: str, length: int, **headers: str) -> bytes:
    """A POST's request line and headers (``X_Sentry_Auth=`` is ``X-Sentry-Auth``), its body to follow."""
    lines = [f"POST {path} HTTP/1.1", "Host: errgate.test", f"Content-Length: {length}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawConnection:
    """``async with RawConnection(url) as conn:`` then :meth:`send`, :meth:`trickle`, :meth:`answer`, :meth:`closed`."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def __aenter__(self) -> "RawConnection":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def trickle(self, data: bytes, interval: float, limit: float) -> float:
        """Send ``data`` one byte every ``interval`` seconds until it is all sent or the server
        closes; returns the seconds it took. Fails when still sending after ``limit`` seconds."""
        started = time.monotonic()
        try:
            for byte in data:
                if self.reader.at_eof():
                    break
                assert time.monotonic() - started < limit, f"still sending after {limit} s"
                await self.send(bytes([byte]))
                await asyncio.sleep(interval)
        except ConnectionError:
            pass
        return time.monotonic() - started

    async def answer(self, timeout: float = 5.0) -> Answer:
        """One answer: status line, headers and a Content-Length body."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", "0"))), timeout)
        return Answer(status, headers, body, head + body)

    async def closed(self, timeout: float) -> bool:
        """Whether the server closes the connection within ``timeout`` seconds (what it still sends is dropped)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except ConnectionError:
            pass
        except TimeoutError:
            return False
        return True

    async def read_all(self, timeout: float) -> bytes:
        """Everything the server sends until it closes the connection (fails after ``timeout`` seconds)."""
        received = b""
        try:
            async with asyncio.timeout(timeout):
                while chunk := await self.reader.read(65536):
                    received += chunk
        except ConnectionError:
            pass
        return received
