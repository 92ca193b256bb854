"""The benchmark's corpus: envelopes of events captured from the real sentry-sdk, compressed."""

from __future__ import annotations

import gzip
import random
import uuid
from typing import Any

import brotli
import orjson

PLATFORMS = ("python", "javascript", "node", "java", "ruby")
DISTINCT_ERRORS = 1000
EXTRA_SIZES = (0, 0, 0, 512, 2048, 16384)  # most events are small, some carry big context


def parse_order(order_id: int) -> int:
    return int(f"order-{order_id}")


def load_user(user_id: int) -> dict[str, Any]:
    return {}["user-%d" % user_id]


def divide(total: int, parts: int) -> float:
    return total / parts


CRASHES = (lambda i: parse_order(i), lambda i: load_user(i), lambda i: divide(i, 0))


def _sdk_events(count: int) -> list[dict[str, Any]]:
    """Capture ``count`` real events from sentry-sdk (exceptions and messages) without sending them."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    captured: list[dict[str, Any]] = []

    class Keep(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            event = envelope.get_event()
            if event is not None:
                captured.append(orjson.loads(orjson.dumps(event)))

    sentry_sdk.init(dsn="http://key@localhost/1", transport=Keep, default_integrations=False, release="bench@1.0")
    for i in range(count):
        if i % 7 == 6:
            sentry_sdk.capture_message(f"payment {i} declined after {i % 5} retries", level="warning")
        else:
            _capture_crash(sentry_sdk, i)
    sentry_sdk.flush()
    sentry_sdk.get_client().close()
    return captured


def _capture_crash(sdk: Any, i: int) -> None:
    try:
        CRASHES[i % len(CRASHES)](i)
    except Exception:
        sdk.capture_exception()


def _variant(event: dict[str, Any], error_index: int, platform: str, extra_size: int) -> dict[str, Any]:
    """A distinct error per ``error_index`` (its in-app function renamed), on ``platform``, padded."""
    event = orjson.loads(orjson.dumps(event))
    event["platform"] = platform
    for exc in (event.get("exception") or {}).get("values", []):
        frames = (exc.get("stacktrace") or {}).get("frames", [])
        if frames:
            frames[-1]["function"] = f"{frames[-1].get('function')}_{error_index}"
            frames[-1]["in_app"] = True
    if "message" in event or "logentry" in event:
        event["fingerprint"] = ["{{ default }}", str(error_index)]
    if extra_size:
        event["extra"] = {"blob": "x" * extra_size}
    return event


def _envelope(event: dict[str, Any], dsn: str) -> bytes:
    event_id = uuid.uuid4().hex
    event["event_id"] = event_id
    payload = orjson.dumps(event)
    header = orjson.dumps({"event_id": event_id, "dsn": dsn, "sent_at": "2026-01-01T00:00:00Z"})
    item = orjson.dumps({"type": "event", "length": len(payload), "content_type": "application/json"})
    return header + b"\n" + item + b"\n" + payload + b"\n"


def build_corpus(total: int, dsn: str, seed: int = 7) -> list[tuple[bytes, str]]:
    """``total`` unique compressed envelopes: Zipf-like repeats over DISTINCT_ERRORS errors."""
    rng = random.Random(seed)
    base = _sdk_events(60)
    variants: dict[int, dict[str, Any]] = {}
    corpus = []
    for n in range(total):
        error_index = min(int(rng.paretovariate(0.8)) - 1, DISTINCT_ERRORS - 1)
        if error_index not in variants:
            variants[error_index] = _variant(
                base[error_index % len(base)], error_index, PLATFORMS[error_index % len(PLATFORMS)],
                EXTRA_SIZES[error_index % len(EXTRA_SIZES)],
            )
        raw = _envelope(dict(variants[error_index]), dsn)
        if n % 2:
            corpus.append((brotli.compress(raw, quality=4), "br"))
        else:
            corpus.append((gzip.compress(raw, compresslevel=6), "gzip"))
    return corpus
