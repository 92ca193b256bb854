"""The collector's answers when it cannot take an event now (429 and 503, with ``Retry-After``).

429 when the writer is behind or the worker holds as many decoded bytes as it may, 503 when the
database is unreachable; all carry the integer ``Retry-After`` that Sentry SDKs honour."""

from __future__ import annotations

from app.problems import HTTPProblem

RETRY_AFTER_OVERLOADED = 1
RETRY_AFTER_UNAVAILABLE = 5


def overloaded() -> HTTPProblem:
    return HTTPProblem.sentry(
        429, "too many events waiting to be stored", ["the writer is behind; retry later"],
        {"Retry-After": str(RETRY_AFTER_OVERLOADED)},
    )


def decoding_busy() -> HTTPProblem:
    return HTTPProblem.sentry(
        429, "too many request bodies being decoded", ["the decoded bytes in flight are at their limit; retry later"],
        {"Retry-After": str(RETRY_AFTER_OVERLOADED)},
    )


def unavailable() -> HTTPProblem:
    return HTTPProblem.sentry(
        503, "event storage is unavailable", ["the database cannot be reached"],
        {"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
    )
