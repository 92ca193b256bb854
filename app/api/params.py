"""Request parameters as GitLab's API (Grape) reads them (query string, JSON or form body, merged) and path ids.

Validation errors are collected and answered together as Grape does:
400 ``{"error": "active is missing, integrated is invalid"}``.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Iterable, TypeVar

import orjson
from aiohttp import web

from app.problems import HTTPProblem

T = TypeVar("T")

# dry-types' Params::Bool, which Grape uses to coerce booleans.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


async def read_params(request: web.Request) -> "Params":
    values: dict[str, Any] = {}
    _merge_multidict(values, request.query)
    if request.body_exists and request.method not in ("GET", "HEAD"):
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            # aiohttp parses forms itself, bounded by the application's client_max_size.
            _merge_multidict(values, await request.post())
        else:
            body = await request.read()  # bounded by client_max_size: 413 above 1 MiB
            if body.strip():
                values.update(_json_object(body))
    return Params(values)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPProblem.gitlab(400, f"400 Bad request - malformed JSON body: {exc}") from None
    if not isinstance(parsed, dict):
        raise HTTPProblem.gitlab(400, "400 Bad request - the JSON body must be an object")
    return parsed


def _merge_multidict(values: dict[str, Any], source: Any) -> None:
    for key in set(source.keys()):
        if key.endswith("[]"):
            values[key[:-2]] = [str(v) for v in source.getall(key)]
        else:
            value = source.getall(key)[-1]
            values[key] = value if isinstance(value, str) else str(value)


class Params:
    """Typed getters over merged parameters; call :meth:`done` to raise the collected errors."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.errors: list[str] = []

    def _present(self, name: str, required: bool) -> Any:
        if name not in self.values:
            if required:
                self.errors.append(f"{name} is missing")
            return None
        value = self.values[name]
        if value is None or (isinstance(value, str) and value.strip() == ""):
            self.errors.append(f"{name} is empty")
            return None
        return value

    def boolean(self, name: str, required: bool = False) -> bool | None:
        value = self._present(name, required)
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.errors.append(f"{name} is invalid")
        return None

    def integer(self, name: str, required: bool = False, choices: Iterable[int] | None = None) -> int | None:
        value = self._present(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.errors.append(f"{name} is invalid")
            return None
        try:
            number = int(value)
        except ValueError:
            self.errors.append(f"{name} is invalid")
            return None
        if choices is not None and number not in choices:
            self.errors.append(f"{name} does not have a valid value")
            return None
        return number

    def string(self, name: str, required: bool = False, choices: Iterable[str] | None = None) -> str | None:
        value = self._present(name, required)
        if value is None:
            return None
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
        if not isinstance(value, (str, int)) or isinstance(value, bool) or "\x00" in str(value):
            self.errors.append(f"{name} is invalid")
            return None
        text = str(value).strip()
        if choices is not None and text not in choices:
            self.errors.append(f"{name} does not have a valid value")
            return None
        return text

    def strings(self, name: str, required: bool = False, choices: Iterable[str] | None = None) -> list[str] | None:
        value = self._present(name, required)
        if value is None:
            return None
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() and "\x00" not in i for i in items):
            self.errors.append(f"{name} is invalid")
            return None
        items = [i.strip() for i in items]
        if choices is not None and not set(items) <= set(choices):
            self.errors.append(f"{name} does not have a valid value")
            return None
        return items

    def date(self, name: str) -> date | None:
        value = self._present(name, False)
        if value is None:
            return None
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.errors.append(f"{name} is invalid")
            return None

    def done(self) -> None:
        if self.errors:
            raise HTTPProblem.bad_params(", ".join(self.errors))


# PostgreSQL bigint, the type of every id column: a larger number cannot name a row.
BIGINT_MAX = 2**63 - 1


def parse_id(text: str) -> int | None:
    """``text`` as a row id, or None: ASCII digits only, within bigint.

    ``str.isdigit`` and ``int`` take other digits too ('²' is a digit that ``int`` refuses,
    '٢' is a two), and ``int`` refuses very long numbers; neither can be an id.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(BIGINT_MAX)):
        return None
    number = int(digits)
    return number if number <= BIGINT_MAX else None


def parse_ref(text: str) -> int | str:
    """What GitLab's ``:id`` names: the row id when ``text`` is one, else a path or username (``text`` itself)."""
    number = parse_id(text)
    return text if number is None else number


def path_id(request: web.Request, name: str, not_found: str) -> int:
    """A numeric id from the URL path; anything else is a 404 with GitLab's ``not_found`` message."""
    return found(parse_id(request.match_info[name]), not_found)


def found(value: T | None, not_found: str) -> T:
    """``value`` (an id, a row) when the path named one, else a 404 with GitLab's ``not_found`` message."""
    if value is None:
        raise HTTPProblem.gitlab(404, not_found)
    return value
