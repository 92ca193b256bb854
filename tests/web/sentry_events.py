"""Events made by the real sentry-python SDK, kept in memory and read back in errgate's stored form."""

from __future__ import annotations

from typing import Any, Callable

import orjson
import sentry_sdk
from sentry_sdk.integrations.stdlib import StdlibIntegration
from sentry_sdk.scrubber import EventScrubber
from sentry_sdk.transport import Transport

from app.ingest.payload import load_event, pack_event

REQUEST = {
    "method": "POST",
    "url": "https://shop.example/checkout",
    "query_string": "cart=7&access_token=query-secret",
    "headers": {
        "Content-Type": "application/json",
        "Authorization": "Bearer header-secret",
        "Cookie": "sessionid=cookie-secret; theme=dark",
        "X-Api-Key": "key-secret",
        "User-Agent": "pytest",
    },
    "cookies": {"sessionid": "cookie-secret", "theme": "dark"},
    "env": {"REMOTE_ADDR": "127.0.0.1"},
}


class MemoryTransport(Transport):
    """Keeps the event payloads the SDK would have sent."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.events: list[dict] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.events.extend(item.payload.json for item in envelope.items if item.type == "event")


def capture(actions: Callable[[], Any], **options: Any) -> list[dict]:
    """The events ``actions()`` reports through a fresh client, each as errgate stores and reads it back.

    The client scrubs nothing (``event_scrubber`` with an empty denylist), as an SDK configured
    to send everything would: masking secrets is then errgate's own work.
    """
    client = sentry_sdk.Client(
        "http://public@errgate.test/1",
        transport=MemoryTransport,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[StdlibIntegration()],  # it adds the runtime context
        enable_backpressure_handling=False,
        include_local_variables=True,
        event_scrubber=EventScrubber(denylist=[], send_default_pii=True),
        release="shop@2.0",
        environment="staging",
        **options,
    )
    transport = client.transport
    assert isinstance(transport, MemoryTransport)
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            scope.add_event_processor(lambda event, hint: {**event, "request": REQUEST})
            actions()
        client.flush(timeout=10)
    finally:
        client.close(timeout=10)
    return [orjson.loads(pack_event(load_event(orjson.dumps(event), max_bytes=1 << 20))) for event in transport.events]
