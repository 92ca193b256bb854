"""Tests for app.ingest.grouping: Sentry's grouping order, normalisation, and robustness to garbage."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ingest.grouping import (
    GROUPING_VERSION,
    fingerprint_for,
    grouping_components,
    normalise_filename,
    normalise_text,
)

# --- realistic payloads (shaped like sentry-python 2.x sends them) ----------------------------


def python_frame(
    module: str,
    function: str,
    *,
    lineno: int = 10,
    in_app: bool = True,
    context_line: str | None = "    do_something()",
) -> dict[str, Any]:
    """A stack frame as sentry-python serialises it."""
    relative = module.replace(".", "/") + ".py"
    prefix = "/srv/shop/" if in_app else "/venv/lib/python3.11/site-packages/"
    return {
        "filename": relative,
        "abs_path": prefix + relative,
        "function": function,
        "module": module,
        "lineno": lineno,
        "pre_context": ["", "def wrapper():"],
        "context_line": context_line,
        "post_context": ["", ""],
        "in_app": in_app,
        "vars": {"request": "<Request POST /api/orders >", "order_id": "1234"},
    }


def python_frames() -> list[dict[str, Any]]:
    """aiohttp calling into the app's view, which crashes in a service function (oldest first)."""
    return [
        python_frame("aiohttp.web_protocol", "_handle_request", lineno=452, in_app=False),
        python_frame("aiohttp.web_app", "_handle", lineno=543, in_app=False),
        python_frame("shop.views", "create_order", lineno=87),
        python_frame("shop.services.orders", "reserve_stock", lineno=31),
    ]


def python_event(
    *,
    exc_type: str = "KeyError",
    value: str = "'order_id'",
    frames: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An error event as sentry-python 2.x sends it from an aiohttp handler."""
    return {
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
        "timestamp": "2024-05-01T12:00:00.123456Z",
        "platform": "python",
        "level": "error",
        "server_name": "web-1",
        "release": "shop@1.4.2",
        "environment": "production",
        "transaction": "/api/orders/{order_id}",
        "transaction_info": {"source": "route"},
        "sdk": {"name": "sentry.python.aiohttp", "version": "2.3.1"},
        "contexts": {"runtime": {"name": "CPython", "version": "3.11.7"}},
        "breadcrumbs": {"values": []},
        "extra": {"sys.argv": ["app.py"]},
        "exception": {
            "values": [
                {
                    "type": exc_type,
                    "value": value,
                    "module": None,
                    "mechanism": {"type": "aiohttp", "handled": False},
                    "stacktrace": {"frames": python_frames() if frames is None else frames},
                }
            ]
        },
    }


def without_stacktrace(event: dict[str, Any]) -> dict[str, Any]:
    del event["exception"]["values"][-1]["stacktrace"]
    return event


def message_event(message: object, **extra: Any) -> dict[str, Any]:
    """A capture_message / logging event: no exception."""
    return {"platform": "python", "level": "warning", "logger": "shop.orders", "message": message, **extra}


def frames_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    return event["exception"]["values"][-1]["stacktrace"]["frames"]


# --- basics --------------------------------------------------------------------------------


def test_fingerprint_is_a_32_char_hex_digest() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", fingerprint_for(python_event()))


def test_fingerprint_encoding_is_pinned() -> None:
    """Stored errors are keyed on this digest: changing its encoding would split every group."""
    event = {"message": "disk full", "fingerprint": ["db", "écriture"]}
    components = grouping_components(event)
    encoded = GROUPING_VERSION.encode() + b"".join(
        b"%d:%s" % (len(c.encode()), c.encode()) for c in components
    )
    assert fingerprint_for(event) == hashlib.sha256(encoded).hexdigest()[:32]
    assert components == ["fp:db", "fp:écriture"]


def test_fingerprint_is_stable_for_identical_payloads() -> None:
    assert fingerprint_for(python_event()) == fingerprint_for(python_event())


def test_fingerprint_does_not_mutate_the_event() -> None:
    event = python_event()
    before = copy.deepcopy(event)
    fingerprint_for(event)
    assert event == before


# --- custom fingerprint --------------------------------------------------------------------


def test_custom_fingerprint_takes_precedence_over_the_stack_trace() -> None:
    first = python_event(frames=[python_frame("shop.views", "create_order")])
    second = python_event(exc_type="ValueError", frames=[python_frame("shop.billing", "charge")])
    first["fingerprint"] = second["fingerprint"] = ["checkout-failure"]
    assert fingerprint_for(first) == fingerprint_for(second)


def test_custom_fingerprints_with_different_values_differ() -> None:
    first, second = python_event(), python_event()
    first["fingerprint"], second["fingerprint"] = ["a"], ["b"]
    assert fingerprint_for(first) != fingerprint_for(second)


def test_custom_fingerprint_entries_are_stringified() -> None:
    first, second = python_event(), python_event()
    first["fingerprint"], second["fingerprint"] = ["db", 42, 1.0, True], ["db", "42", "1", "True"]
    assert fingerprint_for(first) == fingerprint_for(second)


@pytest.mark.parametrize("fingerprint", [[], None, "not-a-list", [None], [{"a": 1}, ["x"]], 7])
def test_empty_or_invalid_custom_fingerprint_falls_back_to_default_grouping(fingerprint: object) -> None:
    event = python_event()
    event["fingerprint"] = fingerprint
    assert fingerprint_for(event) == fingerprint_for(python_event())


def test_default_placeholder_alone_groups_like_no_fingerprint() -> None:
    event = python_event()
    event["fingerprint"] = ["{{ default }}"]
    assert fingerprint_for(event) == fingerprint_for(python_event())


def test_default_placeholder_mixes_the_default_grouping_in() -> None:
    mixed, only_value, default = python_event(), python_event(), python_event()
    mixed["fingerprint"] = ["{{ default }}", "x"]
    only_value["fingerprint"] = ["x"]
    assert fingerprint_for(mixed) != fingerprint_for(default)
    assert fingerprint_for(mixed) != fingerprint_for(only_value)


@pytest.mark.parametrize("placeholder", ["{{default}}", "{{  default  }}", " {{ default }} ", "{{ DEFAULT }}"])
def test_default_placeholder_accepts_any_spacing(placeholder: str) -> None:
    spaced, canonical = python_event(), python_event()
    spaced["fingerprint"] = [placeholder, "x"]
    canonical["fingerprint"] = ["{{ default }}", "x"]
    assert fingerprint_for(spaced) == fingerprint_for(canonical)


def test_default_placeholder_follows_the_crash_site() -> None:
    first = python_event(frames=[python_frame("shop.views", "create_order")])
    second = python_event(frames=[python_frame("shop.views", "cancel_order")])
    first["fingerprint"] = second["fingerprint"] = ["{{ default }}", "x"]
    assert fingerprint_for(first) != fingerprint_for(second)


def test_entry_order_of_a_custom_fingerprint_matters() -> None:
    first, second = python_event(), python_event()
    first["fingerprint"], second["fingerprint"] = ["a", "b"], ["b", "a"]
    assert fingerprint_for(first) != fingerprint_for(second)


def test_entries_are_not_ambiguous_when_concatenated() -> None:
    first, second = python_event(), python_event()
    first["fingerprint"], second["fingerprint"] = ["ab", "c"], ["a", "bc"]
    assert fingerprint_for(first) != fingerprint_for(second)


# --- stack trace grouping ------------------------------------------------------------------


def test_same_crash_site_with_different_exception_values_groups_together() -> None:
    first = python_event(exc_type="TimeoutError", value="timeout after 30s for order 1234")
    second = python_event(exc_type="TimeoutError", value="upstream gone away")
    assert fingerprint_for(first) == fingerprint_for(second)


def test_different_crashing_function_makes_a_different_group() -> None:
    event = python_event()
    frames_of(event)[-1]["function"] = "release_stock"
    assert fingerprint_for(event) != fingerprint_for(python_event())


def test_different_crashing_module_makes_a_different_group() -> None:
    event = python_event()
    frames_of(event)[-1]["module"] = "shop.services.inventory"
    assert fingerprint_for(event) != fingerprint_for(python_event())


def test_exception_type_is_part_of_the_stack_trace_group() -> None:
    assert fingerprint_for(python_event(exc_type="ValueError")) != fingerprint_for(python_event())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lineno", 999),
        ("colno", 7),
        ("context_line", "    totally different line"),
        ("context_line", None),
        ("pre_context", []),
        ("vars", {"order_id": "5678"}),
        ("abs_path", "/srv/releases/20240502/shop/services/orders.py"),
    ],
)
def test_line_numbers_source_context_and_vars_do_not_change_the_group(field: str, value: object) -> None:
    event = python_event()
    for frame in frames_of(event):
        frame[field] = value
    assert fingerprint_for(event) == fingerprint_for(python_event())


def test_changing_a_library_frame_does_not_change_the_group_when_app_frames_exist() -> None:
    event = python_event()
    frames_of(event)[0]["function"] = "_handle_request_v2"
    frames_of(event)[1]["module"] = "aiohttp.web_app_new"
    frames_of(event).insert(0, python_frame("asyncio.events", "_run", in_app=False))
    assert fingerprint_for(event) == fingerprint_for(python_event())


def test_changing_an_in_app_frame_changes_the_group() -> None:
    event = python_event()
    frames_of(event)[2]["function"] = "create_order_v2"
    assert fingerprint_for(event) != fingerprint_for(python_event())


def test_adding_an_in_app_frame_changes_the_group() -> None:
    event = python_event()
    frames_of(event).append(python_frame("shop.services.stock", "decrement"))
    assert fingerprint_for(event) != fingerprint_for(python_event())


def test_all_frames_count_when_none_is_in_app() -> None:
    def library_only_event(function: str) -> dict[str, Any]:
        return python_event(
            frames=[
                python_frame("aiohttp.web_protocol", "_handle_request", in_app=False),
                python_frame("aiohttp.web_app", function, in_app=False),
            ]
        )

    assert fingerprint_for(library_only_event("_handle")) == fingerprint_for(library_only_event("_handle"))
    assert fingerprint_for(library_only_event("_handle")) != fingerprint_for(library_only_event("_dispatch"))


def test_frames_with_in_app_missing_count_as_not_in_app() -> None:
    event = python_event()
    for frame in frames_of(event)[:2]:
        del frame["in_app"]
    frames_of(event)[0]["function"] = "something_else"
    assert fingerprint_for(event) == fingerprint_for(python_event())


def test_platform_is_not_part_of_the_group() -> None:
    event = python_event()
    event["platform"] = "other"
    assert fingerprint_for(event) == fingerprint_for(python_event())


def test_frame_without_module_is_grouped_by_normalised_filename() -> None:
    def browser_event(url: str, lineno: int) -> dict[str, Any]:
        frame = {"filename": url, "abs_path": url, "function": "onSubmit", "lineno": lineno, "colno": 12, "in_app": True}
        return {"platform": "javascript", "exception": {"values": [{"type": "TypeError", "value": "x is undefined", "stacktrace": {"frames": [frame]}}]}}

    old_build = browser_event("https://shop.example.com/static/js/main.3f2a1b9c.js?v=1", 1)
    new_build = browser_event("https://cdn.example.com/static/js/main.9e8d7c6b.js", 2)
    other_file = browser_event("https://shop.example.com/static/js/checkout.3f2a1b9c.js", 1)
    assert fingerprint_for(old_build) == fingerprint_for(new_build)
    assert fingerprint_for(old_build) != fingerprint_for(other_file)


def test_frames_with_neither_location_nor_function_are_skipped() -> None:
    event = python_event()
    frames_of(event).append({"lineno": 3, "in_app": True, "context_line": "x"})
    assert fingerprint_for(event) == fingerprint_for(python_event())


def test_stack_without_any_contributing_frame_falls_back_to_type_and_value() -> None:
    empty_frames = python_event(frames=[{"lineno": 1, "in_app": True}], value="boom 1")
    no_stack = without_stacktrace(python_event(value="boom 2"))
    assert fingerprint_for(empty_frames) == fingerprint_for(no_stack)


def test_crashed_thread_stack_is_used_when_the_exception_has_none() -> None:
    def native_event(function: str) -> dict[str, Any]:
        event = without_stacktrace(python_event(exc_type="SIGSEGV", value="Segfault at 0x0"))
        event["threads"] = {
            "values": [
                {"id": 1, "crashed": False, "stacktrace": {"frames": [python_frame("app.idle", "wait")]}},
                {"id": 2, "crashed": True, "stacktrace": {"frames": [python_frame("app.render", function)]}},
            ]
        }
        return event

    assert fingerprint_for(native_event("draw")) == fingerprint_for(native_event("draw"))
    assert fingerprint_for(native_event("draw")) != fingerprint_for(native_event("paint"))
    without_threads = without_stacktrace(python_event(exc_type="SIGSEGV", value="Segfault at 0x0"))
    assert fingerprint_for(native_event("draw")) != fingerprint_for(without_threads)


def test_event_level_stacktrace_is_used_when_the_exception_has_none() -> None:
    def event_with_top_level_stack(function: str) -> dict[str, Any]:
        event = without_stacktrace(python_event())
        event["stacktrace"] = {"frames": [python_frame("shop.jobs", function)]}
        return event

    assert fingerprint_for(event_with_top_level_stack("a")) != fingerprint_for(event_with_top_level_stack("b"))


# --- exception shape -----------------------------------------------------------------------


def test_bare_list_exception_groups_like_values_container() -> None:
    event = python_event()
    event["exception"] = event["exception"]["values"]
    assert fingerprint_for(event) == fingerprint_for(python_event())


def test_primary_exception_is_the_last_one() -> None:
    def chained(cause_function: str, primary_function: str) -> dict[str, Any]:
        cause = python_event(exc_type="ConnectionError", frames=[python_frame("shop.db", cause_function)])
        primary = python_event(exc_type="OrderFailed", frames=[python_frame("shop.orders", primary_function)])
        event = python_event()
        event["exception"]["values"] = [cause["exception"]["values"][0], primary["exception"]["values"][0]]
        return event

    assert fingerprint_for(chained("connect", "place")) == fingerprint_for(chained("reconnect", "place"))
    assert fingerprint_for(chained("connect", "place")) != fingerprint_for(chained("connect", "cancel"))


def test_null_exception_values_are_ignored() -> None:
    event = python_event()
    event["exception"]["values"] = [None, *event["exception"]["values"], None]
    assert fingerprint_for(event) == fingerprint_for(python_event())


# --- exception type and value --------------------------------------------------------------


def test_same_bug_with_different_numbers_in_the_value_groups_together() -> None:
    first = without_stacktrace(python_event(exc_type="TimeoutError", value="timeout after 30s for id 1234"))
    second = without_stacktrace(python_event(exc_type="TimeoutError", value="timeout after 45s for id 99"))
    assert fingerprint_for(first) == fingerprint_for(second)


def test_value_groups_include_the_type() -> None:
    first = without_stacktrace(python_event(exc_type="TimeoutError", value="gone"))
    second = without_stacktrace(python_event(exc_type="ConnectionError", value="gone"))
    assert fingerprint_for(first) != fingerprint_for(second)


def test_different_values_without_stack_make_different_groups() -> None:
    first = without_stacktrace(python_event(value="'order_id'"))
    second = without_stacktrace(python_event(value="'customer_id'"))
    assert fingerprint_for(first) != fingerprint_for(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("timeout after 30s for id 1234", "timeout after 45s for id 99"),
        ("object at 0x7f3a2c1b9d50", "object at 0x7f0011223344"),
        ("row 123e4567-e89b-12d3-a456-426614174000 missing", "row 0F8FAD5B-D9CB-469F-A165-70867728950E missing"),
        ("cannot reach 10.0.0.12:5432", "cannot reach 192.168.1.1:6543"),
        ("cannot reach [2001:db8::1]", "cannot reach [fe80::1ff:fe23:4567:890a]"),
        ("no user alice@example.com", "no user bob.smith+test@mail.example.org"),
        ("expired at 2024-05-01T12:00:00.123Z", "expired at 2023-01-31 08:15:00+02:00"),
        ("commit 3f2a1b9c4d5e6f70 not found", "commit 9e8d7c6b5a4f3e21 not found"),
        ("price 12.50 exceeds 10", "price 7.25 exceeds 1000"),
    ],
)
def test_value_normalisation_masks_volatile_tokens(first: str, second: str) -> None:
    assert normalise_text(first) == normalise_text(second)
    first_event = without_stacktrace(python_event(exc_type="Error", value=first))
    second_event = without_stacktrace(python_event(exc_type="Error", value=second))
    assert fingerprint_for(first_event) == fingerprint_for(second_event)


def test_only_the_start_of_a_long_value_is_grouped_on() -> None:
    first = without_stacktrace(python_event(value="payload " + "x" * 2000 + "tail one"))
    second = without_stacktrace(python_event(value="payload " + "x" * 2000 + "tail two"))
    assert fingerprint_for(first) == fingerprint_for(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("KeyError: 'order_id'", "KeyError: 'customer_id'"),
        ("std::vector out of range", "std::map out of range"),
        ("connection refused", "connection reset"),
    ],
)
def test_value_normalisation_keeps_words(first: str, second: str) -> None:
    assert normalise_text(first) != normalise_text(second)


def test_normalise_text_masks_each_kind_of_token() -> None:
    text = (
        "id 42 at 0xdeadbeef uuid 123e4567-e89b-12d3-a456-426614174000 ip 10.0.0.1 "
        "mail a@b.io on 2021-09-07T12:00:00Z hash deadbeef1234"
    )
    assert normalise_text(text) == "id <n> at <hex> uuid <uuid> ip <ip> mail <email> on <date> hash <hex>"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("shop/views.py", "shop/views.py"),
        ("/home/deploy/releases/42/shop/views.py", "shop/views.py"),
        ("/venv/lib/python3.11/site-packages/aiohttp/web_app.py", "aiohttp/web_app.py"),
        ("C:\\Users\\ci\\project\\app\\main.py", "app/main.py"),
        ("https://cdn.example.com/static/js/main.3f2a1b9c.js?v=3#L1", "static/js/main.js"),
        ("webpack:///./src/components/Cart.tsx", "src/components/Cart.tsx"),
        ("app:///index.android.bundle", "index.android.bundle"),
        ("/app/node_modules/react-dom/cjs/react-dom.production.min.js", "react-dom/cjs/react-dom.production.js"),
        ("chunk-3f2a1b9c.min.js", "chunk.js"),
    ],
)
def test_normalise_filename(filename: str, expected: str) -> None:
    assert normalise_filename(filename) == expected


# --- message events ------------------------------------------------------------------------


def test_message_string_groups_by_normalised_text() -> None:
    first = message_event("Order 1234 took 2.5s")
    second = message_event("Order 99 took 17s")
    assert fingerprint_for(first) == fingerprint_for(second)
    assert fingerprint_for(first) != fingerprint_for(message_event("Payment 1234 took 2.5s"))


def test_message_object_groups_by_template_not_formatted() -> None:
    first = message_event({"message": "User %s failed to log in", "params": ["alice"], "formatted": "User alice failed to log in"})
    second = message_event({"message": "User %s failed to log in", "params": ["bob"], "formatted": "User bob failed to log in"})
    assert fingerprint_for(first) == fingerprint_for(second)


def test_message_object_without_template_uses_formatted() -> None:
    first = message_event({"formatted": "Disk 3 at 91%"})
    second = message_event({"formatted": "Disk 7 at 95%"})
    assert fingerprint_for(first) == fingerprint_for(second)
    assert fingerprint_for(first) == fingerprint_for(message_event("Disk 1 at 50%"))


def test_logentry_and_message_are_equivalent() -> None:
    as_logentry = {"logentry": {"message": "Cache miss for %s", "params": ["k"]}}
    as_message = {"message": {"message": "Cache miss for %s", "params": ["other"]}}
    assert fingerprint_for(as_logentry) == fingerprint_for(as_message)


def test_logentry_wins_over_message() -> None:
    both = {"logentry": {"message": "from logentry"}, "message": "from message"}
    assert fingerprint_for(both) == fingerprint_for({"logentry": {"message": "from logentry"}})


def test_message_event_ignores_level_and_logger() -> None:
    first = message_event("Something odd", level="info", logger="a")
    second = message_event("Something odd", level="error", logger="b")
    assert fingerprint_for(first) == fingerprint_for(second)


def test_message_and_exception_value_with_the_same_text_differ() -> None:
    exception_only = {"exception": [{"value": "boom"}]}
    assert fingerprint_for(exception_only) != fingerprint_for(message_event("boom"))


def test_exception_takes_precedence_over_message() -> None:
    first = python_event()
    first["message"] = "first"
    second = python_event()
    second["message"] = "second"
    assert fingerprint_for(first) == fingerprint_for(second)


@pytest.mark.parametrize(
    "event",
    [{}, {"level": "info"}, {"logger": "x", "platform": "go"}, {"exception": {"values": []}}, {"message": ""}, {"message": {}}],
)
def test_events_with_nothing_to_group_on_share_one_group(event: dict[str, Any]) -> None:
    assert fingerprint_for(event) == fingerprint_for({})


def test_custom_fingerprint_differs_from_a_message_with_the_same_text() -> None:
    assert fingerprint_for({"fingerprint": ["boom"]}) != fingerprint_for({"message": "boom"})


# --- garbage ------------------------------------------------------------------------------

#: Ordinary text, plus text built from the hazards seen in the wild: NUL, lone surrogates, placeholders.
_ANY_TEXT = st.text(max_size=40) | st.lists(
    st.characters(categories=["Cs"]) | st.sampled_from(["\x00", "a", "1", "%s", "%%", "{{ default }}", "😀", "\n"]),
    max_size=10,
).map("".join)
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | _ANY_TEXT
)
JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_ANY_TEXT, children, max_size=4),
    max_leaves=8,
)

_EXCEPTION = ("exception", "values", 0)
_FRAME = (*_EXCEPTION, "stacktrace", "frames", 3)
#: Every field grouping or summarising reads, as a path into python_event().
FIELD_PATHS: list[tuple[str | int, ...]] = [
    ("fingerprint",),
    ("exception",),
    ("exception", "values"),
    _EXCEPTION,
    (*_EXCEPTION, "type"),
    (*_EXCEPTION, "value"),
    (*_EXCEPTION, "mechanism"),
    (*_EXCEPTION, "stacktrace"),
    (*_EXCEPTION, "stacktrace", "frames"),
    (*_EXCEPTION, "stacktrace", "frames", 0),
    _FRAME,
    (*_FRAME, "module"),
    (*_FRAME, "function"),
    (*_FRAME, "filename"),
    (*_FRAME, "abs_path"),
    (*_FRAME, "in_app"),
    (*_FRAME, "lineno"),
    ("stacktrace",),
    ("threads",),
    ("message",),
    ("logentry",),
    ("transaction",),
    ("platform",),
    ("level",),
    ("environment",),
    ("release",),
    ("timestamp",),
]


def replace_at(event: dict[str, Any], path: tuple[str | int, ...], value: object) -> None:
    """Set ``value`` at ``path`` when the path still exists (earlier replacements may have removed it)."""
    target: Any = event
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(target, dict) or (isinstance(target, list) and isinstance(path[-1], int) and path[-1] < len(target)):
        target[path[-1]] = value


@st.composite
def garbled_events(draw: st.DrawFn) -> dict[str, Any]:
    """A realistic event with some of its fields replaced by arbitrary JSON-like values."""
    event = python_event()
    event["fingerprint"] = ["{{ default }}", "x"]
    event["threads"] = {"values": [{"crashed": True, "stacktrace": {"frames": python_frames()}}]}
    event["stacktrace"] = {"frames": python_frames()}
    event["logentry"] = {"message": "failed %s", "params": ["x"]}
    paths = draw(st.lists(st.sampled_from(FIELD_PATHS), min_size=1, max_size=6, unique=True))
    for path in paths:
        replace_at(event, path, draw(JSON_VALUES))
    return event


GARBAGE_SETTINGS = settings(derandomize=True, deadline=None, database=None, max_examples=100)


@GARBAGE_SETTINGS
@given(garbled_events())
def test_garbled_fields_never_raise(event: dict[str, Any]) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", fingerprint_for(event))


@GARBAGE_SETTINGS
@given(st.dictionaries(st.sampled_from([path[0] for path in FIELD_PATHS]) | _ANY_TEXT, JSON_VALUES, max_size=8))
def test_arbitrary_json_objects_never_raise(event: dict[str, Any]) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", fingerprint_for(event))


@GARBAGE_SETTINGS
@given(JSON_VALUES)
def test_non_object_events_never_raise(event: Any) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", fingerprint_for(event))


@GARBAGE_SETTINGS
@given(_ANY_TEXT)
def test_normalisers_accept_any_text(text: str) -> None:
    assert isinstance(normalise_text(text), str)
    assert isinstance(normalise_filename(text), str)
