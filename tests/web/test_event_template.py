"""The _event.html macro rendered with autoescape: frames, context lines, tables, masking, and hostile text kept as text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from hypothesis import given, settings

from app.web.event_view import build
from tests.web import failing_app
from tests.web.sentry_events import capture
from tests.web.test_event_view import JSON, SECRETS, _source_line

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "web" / "templates"
ENVIRONMENT = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)
PAGE = ENVIRONMENT.from_string('{% from "_event.html" import event %}<main>{{ event(view) }}</main>')
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"
MARKUP = {
    "main", "div", "dl", "dt", "dd", "section", "h3", "h4", "p", "pre", "code", "span", "ol", "ul", "li", "details",
    "summary", "table", "caption", "thead", "tbody", "tr", "th", "td", "time",
}


class Elements(HTMLParser):
    """The elements of a page as (tag, attributes), and its text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def render(payload: object) -> str:
    return PAGE.render(view=build(payload))


@pytest.fixture(scope="module")
def checkout_page() -> str:
    (event,) = capture(failing_app.report_checkout)
    return render(event)


def _frame_details(html: str) -> list[str]:
    return re.findall(r"<details class=\"ev-frame [^\"]+\"[^>]*>.*?</details>", html, re.S)


def test_frames_are_details_open_in_app_folded_in_libraries(checkout_page: str) -> None:
    frames = _frame_details(checkout_page)
    assert len(frames) == 7
    opening = [re.match(r"<details class=\"ev-frame ([^\"]+)\"( open)?>", frame).groups() for frame in frames]  # type: ignore[union-attr]
    assert opening == [
        ("ev-in-app", " open"), ("ev-in-app", " open"),  # checkout, load_cart
        ("ev-library", None), ("ev-library", None), ("ev-library", " open"),  # json: loads, decode, raw_decode (raising)
        ("ev-in-app", " open"), ("ev-in-app", " open"),  # report_checkout, checkout
    ]
    assert checkout_page.count('<span class="ev-badge">in app</span>') == 4
    assert "<script" not in ENVIRONMENT.loader.get_source(ENVIRONMENT, "_event.html")[0]  # type: ignore[union-attr]


def test_context_lines_have_numbers_and_the_raising_line_is_marked(checkout_page: str) -> None:
    lineno = _source_line(failing_app.checkout, "raise RuntimeError(")
    raising = _frame_details(checkout_page)[-1]
    assert f'<span class="ev-at">line {lineno}</span>' in raising
    numbers = [int(n) for n in re.findall(r'<span class="ev-lineno">(\d+)</span>', raising)]
    assert numbers == list(range(lineno - 5, lineno + 6))
    (current,) = re.findall(r'<span class="ev-line ev-current" aria-current="true"><span class="ev-lineno">(\d+)</span> (.*?)\n', raising)
    assert current[0] == str(lineno) and '<span class="k">raise</span>' in current[1]


def test_source_lines_read_as_a_listing_without_the_stylesheet() -> None:
    frame = {"lineno": 10, "pre_context": ["a = 1", "b = 2"], "context_line": "c  =  3", "post_context": ["d"]}
    html = render({"platform": "python", "exception": [{"stacktrace": {"frames": [frame]}}]})
    (listing,) = re.findall(r'<pre class="ev-code"><code>(.*?)</code></pre>', html, re.S)
    assert re.sub(r"<[^>]+>", "", listing) == " 8 a = 1\n 9 b = 2\n10 c  =  3\n11 d\n"


def test_variables_breadcrumbs_request_user_tags_and_contexts(checkout_page: str) -> None:
    text = " ".join(" ".join(Elements(checkout_page).text).split())
    assert "cart_id 7" in text and "note \"<script>alert('cart')</script>\"" in text
    assert "Exceptions, in the order raised" in text and "The above exception is linked to the following exception:" in text
    assert "cart info cart opened <b> items : 3" in text
    assert "POST https://shop.example/checkout" in text and "Authorization ********" in text and "sessionid ********" in text
    assert "email ada@example.com" in text and "shop north" in text and "Browser Firefox 120.0" in text
    assert "Runtime CPython 3." in text and "SDK sentry.python" in text
    assert not any(secret in checkout_page for secret in SECRETS)


def test_a_message_event_renders_its_message() -> None:
    html = render({"message": {"formatted": HOSTILE}, "platform": "python", "level": "warning"})
    assert '<section class="ev-section ev-message">' in html and "<h3>Exception" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _hostile_event() -> dict:
    """HOSTILE in every string an event can hold, keys included."""
    frame = {
        "filename": HOSTILE, "abs_path": HOSTILE, "function": HOSTILE, "module": HOSTILE, "lineno": 3, "colno": 1, "in_app": True,
        "pre_context": [HOSTILE], "context_line": HOSTILE, "post_context": [HOSTILE], "vars": {HOSTILE: HOSTILE, "nested": {HOSTILE: [HOSTILE]}},
    }
    rows = {HOSTILE: HOSTILE}
    return {
        "event_id": HOSTILE, "timestamp": HOSTILE, "platform": HOSTILE, "level": HOSTILE, "environment": HOSTILE, "release": HOSTILE,
        "transaction": HOSTILE, "server_name": HOSTILE, "logger": HOSTILE, "logentry": {"formatted": HOSTILE},
        "exception": {"values": [
            {"type": HOSTILE, "value": HOSTILE, "module": HOSTILE, "mechanism": {"type": HOSTILE, "handled": False},
             "stacktrace": {"frames": [frame, {**frame, "filename": "x.py", "in_app": False}, {**frame, "filename": "x.html"}]}},
        ] * 2},
        "breadcrumbs": {"values": [{"timestamp": HOSTILE, "category": HOSTILE, "level": HOSTILE, "message": HOSTILE, "data": rows}]},
        "request": {"method": HOSTILE, "url": HOSTILE, "query_string": HOSTILE, "headers": rows, "cookies": HOSTILE, "env": rows},
        "user": rows, "tags": [[HOSTILE, HOSTILE]], "contexts": {HOSTILE: {"name": HOSTILE, "version": HOSTILE, HOSTILE: HOSTILE}},
        "extra": rows, "sdk": {"name": HOSTILE, "version": HOSTILE},
    }


@pytest.mark.parametrize("payload", [_hostile_event(), {**_hostile_event(), "platform": "python"}])
def test_script_and_event_handlers_in_every_field_render_as_text(payload: dict) -> None:
    html = render(payload)
    page = Elements(html)
    assert {tag for tag, _ in page.elements} <= MARKUP
    attributes = {name for _, attrs in page.elements for name in attrs}
    assert attributes <= {"class", "open", "scope", "title", "aria-current"}
    titles = [attrs["title"] for _, attrs in page.elements if "title" in attrs]
    assert titles and all(title == HOSTILE for title in titles)  # an attribute value, quoted and escaped
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;") >= 40


def test_only_the_highlighted_source_is_trusted_markup() -> None:
    source = (TEMPLATES / "_event.html").read_text()
    assert "|safe" not in source.replace(" ", "") and "autoescape" not in source.replace("Autoescape", "")


def test_values_json_cannot_hold_render_too() -> None:
    huge = 10**5000
    frame = {"vars": {7: huge}, "lineno": huge, "colno": 1e300, "function": huge, "pre_context": ["a"], "context_line": "b"}
    html = render({"tags": {huge: huge}, "contexts": {5: {"name": huge}}, "exception": [{"stacktrace": {"frames": [frame]}}]})
    assert '<span class="ev-at">' not in html and '<span class="ev-lineno"></span>' in html


@settings(max_examples=100, deadline=None)
@given(JSON)
def test_any_payload_renders(payload: object) -> None:
    html = render({"exception": [payload, {"stacktrace": {"frames": [payload]}}], "request": payload, "contexts": {"x": payload}})
    assert html.startswith("<main>") and html.endswith("</main>")
