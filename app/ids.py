"""Row ids as they arrive in URLs and on the command line: ASCII digits within PostgreSQL's bigint."""

from __future__ import annotations

# PostgreSQL bigint, the type of every id and integer column: a larger number cannot name a row.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


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
