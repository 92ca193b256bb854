"""``read_body``: a whole request body through :class:`~app.ingest.body.BodyReader`, as the collector reads it."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from app.ingest.body import BodyReader


async def read_body(chunks: AsyncIterable[bytes], content_encoding: str | None, **limits: Any) -> bytes:
    """The decoded body (``limits``: BodyReader's keyword arguments); the buffer is released afterwards."""
    reader = BodyReader(chunks, content_encoding, **limits)
    try:
        return await reader.read_rest()
    finally:
        reader.close()
