"""The collector's answer to a parser's refusal, for tests that call the parsers directly."""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest

from app.problems import HTTPProblem
from app.ingest.rejection import Rejection
from app.ingest.routes import as_problem


class Refusal:
    """Filled when the block raised: the HTTP answer the collector gives for that rejection."""

    value: HTTPProblem


@contextlib.contextmanager
def refused() -> Iterator[Refusal]:
    """``pytest.raises(Rejection)`` whose ``.value`` is the collector's answer to the rejection."""
    refusal = Refusal()
    with pytest.raises(Rejection) as info:
        yield refusal
    refusal.value = as_problem(info.value)
