"""The one error the collector's parsers raise, and how a client's value is quoted in its causes.

Parsing needs no web framework: the collector's route turns a :class:`Rejection` into Relay's
``{"detail": ..., "causes": [...]}`` answer.
"""

from __future__ import annotations


class Rejection(Exception):
    """A request the collector refuses: the HTTP status, Relay's ``detail`` and its ``causes``."""

    def __init__(self, status: int, detail: str, causes: list[str] | None = None) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail
        self.causes = causes or []


def shown(value: object, *, max_chars: int = 64, tail: str = "...") -> str:
    """``repr(value)`` for a cause; when longer than ``max_chars``, its first ``max_chars - 4``
    characters and ``tail``, so that a huge value cannot make a huge answer."""
    text = repr(value)
    return text if len(text) <= max_chars else text[: max_chars - 4] + tail
