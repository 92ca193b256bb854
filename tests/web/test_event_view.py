"""The event view model: real sentry-python events, frame order per platform, masking, and hostile payloads."""

from __future__ import annotations

import inspect
import re

import pytest
import sentry_sdk
from hypothesis import given, settings
from hypothesis import strategies as st

from app.web import event_view, stack_view
from app.web.event_view import build
from app.web.request_view import MASK, masked_url
from tests.web import failing_app
from tests.web.sentry_events import capture

SECRETS = ("header-secret", "cookie-secret", "key-secret", "query-secret")


@pytest.fixture(scope="module")
def checkout_event() -> dict:
    (event,) = capture(failing_app.report_checkout)
    return event


def _text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&#34;", '"').replace("&#39;", "'").replace("&lt;", "<").replace(
        "&gt;", ">"
    ).replace("&amp;", "&")


def _source_line(function: object, text: str) -> int:
    lines, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    return first + next(index for index, line in enumerate(lines) if text in line)


def test_a_chained_exception_reads_in_the_order_raised(checkout_event: dict) -> None:
    view = build(checkout_event)
    assert [(e.type, e.value) for e in view.exceptions] == [
        ("JSONDecodeError", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("RuntimeError", "checkout failed"),
    ]
    first, last = view.exceptions
    assert first.join == ""
    # sentry-python does not say whether "from" linked them: the join is neutral.
    assert last.join == stack_view.CHAINED
    assert last.mechanism == "generic, handled"


def test_python_frames_read_oldest_call_first_with_numbered_context_lines(checkout_event: dict) -> None:
    view = build(checkout_event)
    assert view.frames_order == stack_view.OLDEST_FIRST
    cause, primary = view.exceptions
    assert [f.function for f in primary.frames] == ["report_checkout", "checkout"]
    assert [f.function for f in cause.frames][:2] == ["checkout", "load_cart"]
    assert cause.frames[-1].filename.endswith("decoder.py")

    raising = primary.frames[-1]
    lineno = _source_line(failing_app.checkout, "raise RuntimeError(")
    assert raising.lineno == lineno and raising.filename == "tests/web/failing_app.py"
    assert raising.location == f"tests/web/failing_app.py:{lineno}"
    numbers = [line.number for line in raising.lines]
    assert numbers == list(range(lineno - 5, lineno + 6))
    (current,) = [line for line in raising.lines if line.current]
    assert current.number == lineno and _text_of(current.html).strip() == "raise RuntimeError("
    # Lexed together with the following lines: the string argument on the next line is a string.
    following = raising.lines[numbers.index(lineno + 1)]
    assert '<span class="s2">&#34;checkout failed&#34;</span>' in following.html


def test_in_app_frames_and_raising_frames_open_library_frames_folded(checkout_event: dict) -> None:
    cause, primary = build(checkout_event).exceptions
    assert all(frame.in_app and frame.open for frame in primary.frames)
    library = [frame for frame in cause.frames if not frame.in_app]
    assert [frame.function for frame in library] == ["loads", "decode", "raw_decode"]
    assert [frame.open for frame in library] == [False, False, True]  # the raising frame shows where it came from


def test_local_variables_are_a_table_of_reprs(checkout_event: dict) -> None:
    cause, _ = build(checkout_event).exceptions
    load_cart = next(frame for frame in cause.frames if frame.function == "load_cart")
    assert dict(load_cart.variables) == {
        "raw": "'{broken'",
        "cart_id": "7",
        "note": "\"<script>alert('cart')</script>\"",
    }
    assert load_cart.variables_note == ""


def test_sentry_python_trimming_locals_to_ten_is_noted() -> None:
    def many_locals() -> None:
        a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = 1
        raise LookupError(a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11)

    def report() -> None:
        try:
            many_locals()
        except LookupError:
            sentry_sdk.capture_exception()

    (event,) = capture(report)
    frame = build(event).exceptions[0].frames[-1]
    assert len(frame.variables) == stack_view.SDK_VARIABLE_LIMIT
    assert "at most 10 variables" in frame.variables_note


def test_variables_the_sdk_trimmed_per_its_meta_are_noted() -> None:
    # _meta counts exceptions and frames as sent, skipped values included.
    frame = {"vars": {"a": "1", "b": "2"}}
    meta = {"exception": {"values": {"1": {"stacktrace": {"frames": {"1": {"vars": {"": {"len": 30}}}}}}}}}
    payload = {"platform": "python", "exception": {"values": ["junk", {"stacktrace": {"frames": [frame, frame]}}]}, "_meta": meta}
    frames = build(payload).exceptions[0].frames
    assert [f.variables_note for f in frames] == ["", "2 of 30 variables sent by the SDK"]


def test_breadcrumbs_tags_user_contexts_and_facts(checkout_event: dict) -> None:
    view = build(checkout_event)
    (crumb,) = view.breadcrumbs
    assert (crumb.category, crumb.level, crumb.message, crumb.data) == ("cart", "info", "cart opened <b>", (("items", "3"),))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", crumb.timestamp)
    assert ("shop", "north") in view.tags
    assert dict(view.user) == {"id": "42", "email": "ada@example.com"}
    runtime, browser = view.contexts[:2]
    assert (runtime.name, runtime.title) == ("runtime", "Runtime") and runtime.summary.startswith("CPython 3.")
    assert (browser.title, browser.summary, browser.rows) == ("Browser", "Firefox 120.0", (("name", "Firefox"), ("version", "120.0")))
    assert (view.platform, view.level, view.environment, view.release) == ("python", "error", "staging", "shop@2.0")
    assert view.event_id == checkout_event["event_id"] and view.timestamp.endswith("Z")
    assert view.sdk.startswith("sentry.python ")
    assert view.message == "" and view.stacktrace == ()


def test_request_secrets_are_masked(checkout_event: dict) -> None:
    request = build(checkout_event).request
    assert request is not None
    assert (request.method, request.url) == ("POST", "https://shop.example/checkout")
    headers = dict(request.headers)
    assert headers["Content-Type"] == "application/json" and headers["User-Agent"] == "pytest"
    assert headers["Authorization"] == headers["Cookie"] == headers["X-Api-Key"] == MASK
    assert request.cookies == (("sessionid", MASK), ("theme", MASK))
    assert request.query == (("cart", "7"), ("access_token", MASK))
    assert dict(request.env) == {"REMOTE_ADDR": "127.0.0.1"}
    assert not any(secret in repr(build(checkout_event)) for secret in SECRETS)


@pytest.mark.parametrize(
    ("request_value", "expected_headers", "expected_cookies"),
    [
        ({"headers": [["Set-Cookie", "s=1"], ["X-Auth-Token", "t"], ["Accept", "*/*"]]}, (("Set-Cookie", MASK), ("X-Auth-Token", MASK), ("Accept", "*/*")), ()),
        ({"cookies": "a=1; b=2;"}, (), (("a", MASK), ("b", MASK))),
        ({"cookies": [["a", "1"]], "headers": "not headers"}, (), (("a", MASK),)),
    ],
)
def test_request_shapes_sdks_send_are_masked(request_value: dict, expected_headers: tuple, expected_cookies: tuple) -> None:
    request = build({"request": request_value}).request
    assert request is not None
    assert (request.headers, request.cookies) == (expected_headers, expected_cookies)


def test_a_password_and_secret_parameters_in_the_url_are_masked() -> None:
    assert masked_url("https://ada:pw@shop.example/a?x=1&api_key=k") == f"https://ada:{MASK}@shop.example/a?x=1&api_key={MASK}"
    assert masked_url("http://[::1/broken") == "http://[::1/broken"


def test_a_message_event_shows_its_message_and_attached_stack() -> None:
    (event,) = capture(lambda: sentry_sdk.capture_message("stock low: %d left"), attach_stacktrace=True)
    view = build(event)
    assert view.message == "stock low: %d left" and view.exceptions == ()
    assert view.stacktrace and view.stacktrace[-1].function == "<lambda>"


@pytest.mark.parametrize(
    "payload",
    [
        {"logentry": {"formatted": "formatted text", "message": "template %s"}},
        {"logentry": {"message": "formatted text", "params": ["x"]}},
        {"message": "formatted text"},
        {"message": {"formatted": "formatted text"}},
        {"logentry": 5, "message": "formatted text"},
    ],
)
def test_the_message_from_each_shape(payload: dict) -> None:
    assert build(payload).message == "formatted text"


def _javascript_event() -> dict:
    frame = {"filename": "https://shop.example/static/app.js?v=3", "function": "{f}", "lineno": 10, "colno": 4, "in_app": True}
    frames = [{**frame, "function": name} for name in ("main", "checkout", "pay")]
    return {"platform": "javascript", "exception": {"values": [{"type": "TypeError", "value": "x is undefined", "stacktrace": {"frames": frames}}]}}


def test_frames_of_other_platforms_read_newest_call_first() -> None:
    view = build(_javascript_event())
    assert view.frames_order == stack_view.NEWEST_FIRST
    frames = view.exceptions[0].frames
    assert [f.function for f in frames] == ["pay", "checkout", "main"]
    assert [f.open for f in frames] == [True, True, True]
    assert frames[0].location == "https://shop.example/static/app.js?v=3:10:4"


@pytest.mark.parametrize(
    ("source", "join"),
    [
        ("__cause__", stack_view.CAUSE),
        ("__context__", stack_view.CONTEXT),
        ("exceptions[0]", "The above exception is exceptions[0] of the following exception group:"),
        (None, stack_view.CHAINED),
    ],
)
def test_the_join_follows_the_mechanism_source(source: str | None, join: str) -> None:
    # As sentry-python numbers a chain: the exception handled last is 0, its cause 1 with parent 0.
    earlier = {"type": "KeyError", "mechanism": {"type": "chained", "source": source, "exception_id": 1, "parent_id": 0}}
    later = {"type": "ValueError", "mechanism": {"type": "generic", "exception_id": 0}}
    assert build({"exception": {"values": [earlier, later]}}).exceptions[1].join == join


def test_a_cause_of_another_exception_than_the_next_is_not_called_its_cause() -> None:
    cause = {"type": "KeyError", "mechanism": {"source": "__cause__", "exception_id": 2, "parent_id": 1}}
    other = {"type": "ValueError", "mechanism": {"exception_id": 3, "parent_id": 1}}
    assert build({"exception": [cause, other]}).exceptions[1].join == stack_view.CHAINED


def test_an_exception_group_from_the_real_sdk_names_its_members() -> None:
    def report() -> None:
        try:
            try:
                raise KeyError("inner")
            except KeyError as exc:
                raise ExceptionGroup("group", [ValueError("a"), TypeError("b")]) from exc
        except ExceptionGroup:
            sentry_sdk.capture_exception()

    (event,) = capture(report)
    chain = build(event).exceptions
    assert [(e.type, e.join) for e in chain] == [
        ("TypeError", ""),
        ("ValueError", "The above exception is exceptions[1] of an exception group below:"),
        ("KeyError", "The above exception is exceptions[0] of an exception group below:"),
        ("ExceptionGroup", stack_view.CAUSE),
    ]


def test_context_lines_without_a_context_line_or_a_line_number() -> None:
    frame = {"pre_context": ["a = 1"], "context_line": None, "post_context": ["b = 2"], "lineno": 10}
    lines = build({"exception": {"values": [{"stacktrace": {"frames": [frame]}}]}}).exceptions[0].frames[0].lines
    assert [(line.number, line.current) for line in lines] == [(9, False), (11, False)]
    frame = {"pre_context": ["a = 1"], "context_line": "b", "lineno": "x"}
    lines = build({"exception": {"values": [{"stacktrace": {"frames": [frame]}}]}}).exceptions[0].frames[0].lines
    assert [(line.number, line.current) for line in lines] == [(None, False), (None, True)]


def test_numeric_timestamps_read_as_utc() -> None:
    assert build({"timestamp": 1631015580.5}).timestamp == "2021-09-07T11:53:00.500000Z"
    assert build({"timestamp": "1631015580.50"}).timestamp == "2021-09-07T11:53:00.500000Z"
    assert build({"timestamp": "2021-09-07T11:53:00+02:00"}).timestamp == "2021-09-07T11:53:00+02:00"


def test_tags_as_a_list_of_pairs() -> None:
    tags = [["a", "1"], {"key": "b", "value": 2}, "junk", ["c"], ["d", None]]
    assert build({"tags": tags}).tags == (("a", "1"), ("b", "2"), ("d", ""))


def test_huge_values_are_cut() -> None:
    frames = [{"function": f"f{index}", "context_line": "x" * 100_000, "vars": {str(n): "v" for n in range(300)}} for index in range(600)]
    payload = {
        "platform": "python",
        "exception": {"values": [{"type": "E" * 10_000, "value": "v" * 1_000_000, "stacktrace": {"frames": frames}}] * 100},
        "breadcrumbs": [{"message": "m"}] * 5_000,
        "tags": {str(n): "t" for n in range(10_000)},
        "message": "m" * 1_000_000,
    }
    view = build(payload)
    assert len(view.exceptions) == stack_view.MAX_EXCEPTIONS
    exception = view.exceptions[-1]
    assert len(exception.type) == 200 and len(exception.value) == 10_000
    assert len(exception.frames) == stack_view.MAX_FRAMES and exception.frames[-1].function == "f599"
    assert exception.frames_note == "350 older frames not shown"
    # The frames an event shows go to the newest exceptions first.
    assert [len(e.frames) for e in view.exceptions[-5:]] == [0, 250, 250, 250, 250]
    assert view.exceptions[-5].frames_note == "600 frames not shown"
    frame = exception.frames[-1]
    assert len(frame.variables) == stack_view.MAX_VARIABLES and frame.variables_note == "200 of 300 variables shown"
    assert len(_text_of(frame.lines[0].html)) == stack_view.LINE_LIMIT
    assert len(view.breadcrumbs) == event_view.MAX_BREADCRUMBS and view.breadcrumbs_note == "4800 older breadcrumbs not shown"
    assert len(view.tags) == 200 and len(view.message) == event_view.MESSAGE_LIMIT


def test_highlighting_stops_at_the_budget_newest_exception_first() -> None:
    line = "value = compute(1)  " * 20
    frames = [{"filename": "a.py", "context_line": line, "pre_context": [line] * 30} for _ in range(10)]
    chain = build({"platform": "python", "exception": [{"stacktrace": {"frames": frames}}] * 2}).exceptions
    highlighted = [[frame.lines[0].html.startswith("<span") for frame in e.frames] for e in chain]
    # 4 frames of 31 lines of 400 characters fit: the 4 nearest the raise of the newest exception.
    assert highlighted == [[False] * 10, [False] * 6 + [True] * 4]
    assert all(_text_of(f.lines[-1].html) == line for e in chain for f in e.frames)


def test_deep_nesting_in_variables_and_tags_is_written_out_shallowly() -> None:
    deep: list = []
    node = deep
    for _ in range(1_000):
        node.append([])
        node = node[0]
    frame = {"vars": {"deep": deep}}
    view = build({"exception": [{"stacktrace": {"frames": [frame]}}], "tags": {"deep": deep}})
    assert view.exceptions[0].frames[0].variables == (("deep", "[[[[[[[[[…]]]]]]]]]"),)
    assert view.tags == (("deep", "[[[[[[[[[…]]]]]]]]]"),)


def test_values_json_cannot_hold_are_read_too() -> None:
    huge = 10**5000  # more digits than Python writes as text
    frame = {"vars": {7: huge, None: [huge]}, "lineno": huge, "function": huge}
    view = build({"tags": {huge: huge}, "contexts": {5: {"name": huge}}, "exception": [{"stacktrace": {"frames": [frame]}}]})
    assert view.tags == (("…", "…"),) and view.contexts[0].name == "5"
    assert view.exceptions[0].frames[0].variables == (("7", "…"), ("null", "[…]"))


KEYS = st.sampled_from(
    ["exception", "values", "stacktrace", "frames", "vars", "pre_context", "context_line", "post_context", "lineno", "in_app",
     "mechanism", "source", "parent_id", "exception_id", "breadcrumbs", "request", "headers", "cookies", "query_string", "url",
     "tags", "contexts", "user", "sdk", "logentry", "message", "threads", "timestamp", "platform", "_meta", "data", "key",
     "value", "filename", "frames_omitted", "len", ""]
) | st.text(max_size=5)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_value_builds_a_view(payload: object) -> None:
    build(payload)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=6))
def test_any_event_shaped_object_builds_a_view(payload: dict) -> None:
    build({"exception": {"values": [payload, {"stacktrace": {"frames": [payload]}}]}, "request": payload, **payload})
