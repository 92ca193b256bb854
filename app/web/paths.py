"""The web page's URLs: route patterns (GitLab's where GitLab has the page) and the links templates build.

Every page of a project lives under ``/:namespace/:project/-/`` (the namespace may be nested:
``group/sub``), and errgate's own pages under ``/-/``: GitLab's convention, which no REST route
(``/api/…``) and no probe (``/-/liveness``) can match, and which no project path can take
(a path segment never is ``-``).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

HOME = "/"
SIGN_OUT = "/-/sign_out"
STATIC_PREFIX = "/-/static"
_PROJECT = "/{namespace:.+}/{project}/-"
ERROR_LIST = _PROJECT + "/error_tracking"
ERROR_STATUS = ERROR_LIST + "/{error_id:\\d+}"
ERROR_DETAILS = ERROR_STATUS + "/details"
EVENT_JSON = ERROR_DETAILS + "/events/{event_id}.json"
SETTINGS = ERROR_LIST + "/settings"
CLIENT_KEYS = SETTINGS + "/client_keys"
CLIENT_KEY_DELETE = CLIENT_KEYS + "/{key_id:\\d+}/delete"

PAGES = (HOME, SIGN_OUT, ERROR_LIST, ERROR_STATUS, ERROR_DETAILS, EVENT_JSON, SETTINGS, CLIENT_KEYS, CLIENT_KEY_DELETE)


def canonical(pattern: str) -> str:
    """A pattern as aiohttp spells its resource (``{namespace:.+}`` → ``{namespace}``): the
    label of its metrics and log lines, and how app.web.failures knows a page's request."""
    out, rest = [], pattern
    while "{" in rest:
        before, _, rest = rest.partition("{")
        name, _, rest = rest.partition("}")
        out.append(f"{before}{{{name.partition(':')[0]}}}")
    return "".join(out) + rest


PAGE_ROUTES = frozenset(canonical(p) for p in PAGES) | {STATIC_PREFIX}


def base_path(external_url: str) -> str:
    """The path errgate is served under (``ERRGATE_EXTERNAL_URL``'s, a proxy in front strips it), or ''."""
    return urlsplit(external_url).path.rstrip("/")


def project_url(base: str, path_with_namespace: str, tail: str = "error_tracking") -> str:
    return f"{base}/{quote(path_with_namespace)}/-/{tail}"


def with_query(url: str, params: dict[str, object] | None = None, **more: object) -> str:
    """``url`` with the query parameters of ``params`` and ``more``, those that are None or '' left out."""
    kept = {k: v for k, v in {**(params or {}), **more}.items() if v not in (None, "")}
    return f"{url}?{urlencode(kept)}" if kept else url


def safe_next(target: str | None) -> str | None:
    """A place to go after signing in: a path of this site only (no ``//host`` or ``/\\host``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return None
    return target
