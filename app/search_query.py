"""The errors list's query: ``status``, ``environment``, ``sort`` and a Sentry-style ``search`` parsed into an ErrorQuery.

``search`` mixes free text with terms: ``is:resolved`` (also ``unresolved``, ``ignored``,
``all``), ``environment:production``, ``release:1.2.3``, ``level:warning``. Values and free
text may be quoted (``release:"build 7"``, ``"connection refused"``). Each free-text word (or
quoted phrase) must occur, case-insensitively, in the error's name, description or actor. A
``key:value`` whose key is not a term is free text (``http://host`` searches for itself).

A term overrides the parameter of the same meaning: ``status=resolved&search=is:ignored``
lists the ignored errors. Pure: no I/O; a bad value raises ValueError with the message the API
answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STATUSES = ("unresolved", "resolved", "ignored")
ALL = "all"
DEFAULT_STATUS = "unresolved"
SORTS = ("last_seen", "first_seen", "frequency")
DEFAULT_SORT = "last_seen"
LEVELS = ("fatal", "error", "warning", "info", "debug")
MAX_TEXT_TERMS = 10
MAX_SEARCH_CHARS = 1000

# An optional ``key:`` then a value: quoted (an unclosed quote runs to the end) or up to the next space.
_TOKEN = re.compile(r'(?:([A-Za-z_]+):)?(?:"([^"]*)(?:"|$)|(\S+))')


@dataclass(frozen=True)
class ErrorQuery:
    status: str | None = DEFAULT_STATUS  # None: every status
    text: tuple[str, ...] = ()
    environment: str | None = None
    release: str | None = None
    level: str | None = None
    sort: str = DEFAULT_SORT


def parse_query(
    search: str | None, status: str | None = None, environment: str | None = None, sort: str | None = None
) -> ErrorQuery:
    """The query of the errors list from its parameters (None: not given); raises ValueError."""
    if sort is None:
        sort = DEFAULT_SORT
    elif sort not in SORTS:
        raise ValueError("sort does not have a valid value")
    values: dict[str, str | None] = {"status": _status(status if status is not None else DEFAULT_STATUS, "status")}
    values["environment"] = environment or None
    text: list[str] = []
    if search is not None:
        if len(search) > MAX_SEARCH_CHARS:
            raise ValueError(f"search is longer than {MAX_SEARCH_CHARS} characters")
        for key, value in _terms(search):
            if key is None:
                text.append(value)
            elif key == "is":
                values["status"] = _status(value.lower(), "search term is:")
            elif key == "level":
                if value.lower() not in LEVELS:
                    raise ValueError(f"search term level: must be one of {', '.join(LEVELS)}")
                values["level"] = value.lower()
            else:
                values[key] = value
    if len(text) > MAX_TEXT_TERMS:
        raise ValueError(f"search has more than {MAX_TEXT_TERMS} words to match")
    return ErrorQuery(
        status=values["status"], text=tuple(text), environment=values["environment"],
        release=values.get("release"), level=values.get("level"), sort=sort,
    )


_KEYS = ("is", "environment", "release", "level")


def _terms(search: str) -> list[tuple[str | None, str]]:
    """``(key, value)`` for each term and ``(None, text)`` for each word or phrase of free text."""
    terms: list[tuple[str | None, str]] = []
    for match in _TOKEN.finditer(search):
        key, quoted, bare = match.groups()
        value = quoted if quoted is not None else bare
        if key is not None and key.lower() in _KEYS:
            if not value:
                raise ValueError(f"search term {key.lower()}: needs a value")
            terms.append((key.lower(), value))
        elif key is not None:
            terms.append((None, f"{key}:{value}"))
        elif bare is not None and bare.endswith(":") and bare[:-1].lower() in _KEYS:
            raise ValueError(f"search term {bare.lower()} needs a value")
        elif value:
            terms.append((None, value))
    return terms


def _status(value: str, name: str) -> str | None:
    if value == ALL:
        return None
    if value not in STATUSES:
        if name == "status":
            raise ValueError("status does not have a valid value")
        raise ValueError(f"{name} must be one of {', '.join((*STATUSES, ALL))}")
    return value
