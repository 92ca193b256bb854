"""Headers errgate puts on every answer: ``X-Content-Type-Options``, a versionless ``Server``, ``Cache-Control``.

They are set in ``on_response_prepare``, which aiohttp runs for every response of an application
just before its headers go out: handlers' answers, the error middleware's, 404 and 405 of unknown
routes, the collector's and ``/metrics``. ``Server`` names errgate without a version, so a scanner
learns nothing about the Python or aiohttp release; it is aiohttp's default, replaced once at
install, so it also reaches the answers no application sees: those the connection layer makes
for requests it cannot parse or that fail before the middlewares (app/protocol.py), which set
``X-Content-Type-Options`` themselves.

``Cache-Control: no-store`` goes on the answers that carry a secret, so that no browser or proxy
keeps a copy:

- ``POST /api/v4/users/:user_id/personal_access_tokens``: the new token;
- ``GET`` and ``POST /api/v4/projects/:id/error_tracking/client_keys``: public keys and their DSNs,
  which are the collector's credentials.

Error Tracking settings, users and members carry no secret.
"""

from __future__ import annotations

from aiohttp import web, web_response

from app.observe import route_pattern

SERVER = "errgate"

# (method, route pattern as aiohttp spells it)
SECRET_ROUTES = frozenset(
    {
        ("POST", "/api/v4/users/{user_id}/personal_access_tokens"),
        ("GET", "/api/v4/projects/{id}/error_tracking/client_keys"),
        ("POST", "/api/v4/projects/{id}/error_tracking/client_keys"),
    }
)


async def _on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    # ``Server`` needs no setting here: aiohttp fills it in from SERVER_SOFTWARE (see install).
    response.headers["X-Content-Type-Options"] = "nosniff"
    if (request.method, route_pattern(request)) in SECRET_ROUTES:
        response.headers["Cache-Control"] = "no-store"


def install(app: web.Application) -> None:
    """Put errgate's headers on every answer of ``app``."""
    # aiohttp fills in ``Server`` from this module global when nobody set one: the only way to
    # reach the answers to unparseable requests, which no application's signal sees.
    web_response.SERVER_SOFTWARE = SERVER
    app.on_response_prepare.append(_on_response_prepare)
