"""Bounded work per event: grouping and the summary read only what Relay keeps, whatever the shape.

Each adversarial shape is judged by counters of the work done -- items read from the event's
lists, computations of the default grouping, characters handed to regexes, calls of per-value
helpers -- with a generous CPU-time bound as a backstop. The counting lists fail as soon as
their budget is spent, so unbounded code fails in moments instead of running for minutes.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import orjson
import pytest

from app.ingest import fields, grouping, payload, summary
from app.ingest.fields import MAX_EXCEPTIONS, MAX_FRAMES, MAX_MESSAGE_CHARS
from app.ingest.grouping import (
    MAX_FINGERPRINT_ENTRIES,
    MAX_GROUPED_PATH_CHARS,
    MAX_GROUPED_SYMBOL_CHARS,
    fingerprint_for,
)
from app.ingest.payload import MAX_DEPTH, load_event, pack_event
from app.ingest.rejection import Rejection
from app.ingest.summary import EventSummary, summarize_event
from tests.ingest_http.helpers import (
    TrackedProject,
    assert_accepted,
    collector_url,
    counts,
    event_envelope,
    new_event_id,
    post_envelope,
    sentry_auth,
    tracked_project,
)

MIB = 1024 * 1024
#: The backstop: far above what any of these events costs, far below what unbounded work costs.
CPU_SECONDS = 0.2
#: Characters all regexes together may be handed for one event: every text is cut first.
REGEX_CHARS = 4 * MAX_MESSAGE_CHARS
RECEIVED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class OverBudget(AssertionError):
    """More work than the caps allow."""


class CountedList(list):
    """A list that counts the items it hands out (iterated, indexed or sliced) and fails once
    more than ``budget`` were read."""

    def __init__(self, items: list[Any], budget: int) -> None:
        super().__init__(items)
        self.read = 0
        self.budget = budget

    def _count(self, items: int) -> None:
        self.read += items
        if self.read > self.budget:
            raise OverBudget(f"read {self.read} items of {len(self)}, more than {self.budget}")

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            self._count(1)
            yield item

    def __reversed__(self) -> Iterator[Any]:
        for item in super().__reversed__():
            self._count(1)
            yield item

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        self._count(len(item) if isinstance(index, slice) else 1)
        return item


class RegexTally:
    """The characters handed to regexes: in all, and the most in one call."""

    def __init__(self) -> None:
        self.total = 0
        self.largest = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        self.largest = max(self.largest, len(text))


class CountingPattern:
    """A compiled regex that tallies the text of every call before running it."""

    def __init__(self, pattern: re.Pattern[str], tally: RegexTally) -> None:
        self.pattern = pattern
        self.tally = tally

    def sub(self, repl: Any, string: str, *args: Any, **kwargs: Any) -> str:
        self.tally.add(string)
        return self.pattern.sub(repl, string, *args, **kwargs)

    def search(self, string: str, *args: Any) -> re.Match[str] | None:
        self.tally.add(string)
        return self.pattern.search(string, *args)

    def match(self, string: str, *args: Any) -> re.Match[str] | None:
        self.tally.add(string)
        return self.pattern.match(string, *args)

    def fullmatch(self, string: str, *args: Any) -> re.Match[str] | None:
        self.tally.add(string)
        return self.pattern.fullmatch(string, *args)


class CountingHash:
    """sha256 that counts the bytes it hashes and fails beyond ``budget``."""

    def __init__(self, data: bytes, budget: int, hashed: list[int]) -> None:
        self.hash = hashlib.sha256()
        self.budget = budget
        self.hashed = hashed
        self.update(data)

    def update(self, data: bytes) -> None:
        self.hashed[0] += len(data)
        if self.hashed[0] > self.budget:
            raise OverBudget(f"hashed {self.hashed[0]} bytes, more than {self.budget}")
        self.hash.update(data)

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


@pytest.fixture
def regexes(monkeypatch: pytest.MonkeyPatch) -> RegexTally:
    """Every compiled regex of the grouping, summary and fields modules, tallied."""
    tally = RegexTally()
    for module in (grouping, summary, fields):
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                monkeypatch.setattr(module, name, CountingPattern(value, tally))
    return tally


def spy(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Count the calls of ``module.name``; the returned list holds the count."""
    calls = [0]
    real: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def group_and_summarise(event: dict[str, Any]) -> tuple[str, EventSummary, float]:
    """What the collector does with an event, and the CPU seconds it took."""
    started = time.process_time()
    fingerprint = fingerprint_for(event)
    event_summary = summarize_event(event, fingerprint=fingerprint, received_at=RECEIVED_AT)
    return fingerprint, event_summary, time.process_time() - started


def frame(index: int) -> dict[str, Any]:
    return {"function": f"step_{index}", "module": f"app.steps.s{index}", "lineno": index, "in_app": True}


def exception_event(frames: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"exception": {"values": [{"type": "ValueError", "value": "boom", "stacktrace": {"frames": frames}}]}, **fields}


# --- the event of the report: 10,000 `{{ default }}` entries, 5,000 frames ------------------------


def test_ten_thousand_default_entries_compute_the_default_grouping_once(monkeypatch: pytest.MonkeyPatch) -> None:
    all_frames = [frame(index) for index in range(5_000)]
    frames = CountedList(all_frames, budget=2 * MAX_FRAMES)
    entries = CountedList(["{{ default }}"] * 10_000, budget=MAX_FINGERPRINT_ENTRIES)
    defaults = spy(monkeypatch, grouping, "default_components")

    fingerprint, event_summary, cpu = group_and_summarise(exception_event(frames, fingerprint=entries))

    assert defaults[0] == 1
    assert entries.read == MAX_FINGERPRINT_ENTRIES
    assert frames.read <= 2 * MAX_FRAMES  # grouping once, the summary's culprit once
    capped = exception_event(all_frames[-MAX_FRAMES:], fingerprint=["{{ default }}"] * MAX_FINGERPRINT_ENTRIES)
    assert fingerprint == fingerprint_for(capped)
    assert event_summary.actor == "step_4999(app.steps.s4999)"
    assert cpu < CPU_SECONDS


def test_long_frames_under_many_default_entries_hash_what_the_caps_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every frame as long as grouping reads it, under as many `{{ default }}` as it counts:
    # at most one (length-prefixed) module and function per frame, per entry.
    budget = MAX_FINGERPRINT_ENTRIES * MAX_FRAMES * 2 * (MAX_GROUPED_SYMBOL_CHARS + 8) + 4096
    hashed = [0]
    monkeypatch.setattr(grouping, "hashlib", SimpleNamespace(sha256=lambda data: CountingHash(data, budget, hashed)))
    frames = [{"module": "m" * 1000, "function": "f" * 1000, "in_app": True}] * 1000
    fingerprint, _, cpu = group_and_summarise(exception_event(frames, fingerprint=["{{ default }}"] * 1000))
    assert hashed[0] <= budget
    assert cpu < CPU_SECONDS
    monkeypatch.undo()
    capped = [{"module": "m" * MAX_GROUPED_SYMBOL_CHARS, "function": "f" * MAX_GROUPED_SYMBOL_CHARS, "in_app": True}]
    assert fingerprint == fingerprint_for(
        exception_event(capped * MAX_FRAMES, fingerprint=["{{ default }}"] * MAX_FINGERPRINT_ENTRIES)
    )


# --- frames, exceptions, breadcrumbs -------------------------------------------------------------


def where_frames_are(place: str, frames: list[dict[str, Any]]) -> dict[str, Any]:
    if place == "exception":
        return exception_event(frames)
    if place == "event stacktrace":
        return {"exception": {"values": [{"type": "ValueError"}]}, "stacktrace": {"frames": frames}}
    threads = [{"id": 1}, {"id": 2, "crashed": True, "stacktrace": {"frames": frames}}]
    return {"exception": {"values": [{"type": "ValueError"}]}, "threads": {"values": threads}}


@pytest.mark.parametrize("place", ["exception", "event stacktrace", "crashed thread"])
def test_a_hundred_thousand_frames_are_read_as_their_last_250(place: str) -> None:
    all_frames = [frame(index) for index in range(100_000)]
    frames = CountedList(all_frames, budget=2 * MAX_FRAMES)
    fingerprint, event_summary, cpu = group_and_summarise(where_frames_are(place, frames))
    assert frames.read <= 2 * MAX_FRAMES
    assert fingerprint == fingerprint_for(where_frames_are(place, all_frames[-MAX_FRAMES:]))
    assert event_summary.actor == "step_99999(app.steps.s99999)"
    assert cpu < CPU_SECONDS


def test_a_thousand_chained_exceptions_are_read_as_their_last_25() -> None:
    chain = [{"type": f"Error{index}", "value": "boom", "stacktrace": {"frames": [frame(index)]}} for index in range(1_000)]
    values = CountedList(chain, budget=4 * MAX_EXCEPTIONS)  # the primary exception, read up to four times
    fingerprint, event_summary, cpu = group_and_summarise({"exception": {"values": values}})
    assert values.read <= 4 * MAX_EXCEPTIONS
    assert fingerprint == fingerprint_for({"exception": {"values": chain[-MAX_EXCEPTIONS:]}})
    assert (event_summary.name, event_summary.actor) == ("Error999", "step_999(app.steps.s999)")
    assert cpu < CPU_SECONDS


def test_ten_thousand_breadcrumbs_are_not_read() -> None:
    crumbs = CountedList([{"category": "http", "message": f"GET /items/{index}"} for index in range(10_000)], budget=0)
    event = exception_event([frame(1)], breadcrumbs={"values": crumbs})
    fingerprint, _, cpu = group_and_summarise(event)
    assert crumbs.read == 0
    assert fingerprint == fingerprint_for(exception_event([frame(1)]))
    assert cpu < CPU_SECONDS


# --- texts that make regexes work hard ------------------------------------------------------------

ADVERSARIAL_TEXTS = {
    "a@ x100,000": "a@" * 100_000,
    "1. x100,000": "1." * 100_000,
    ": x100,000": ":" * 100_000,
    "0 x1,000,000": "0" * 1_000_000,
    "-0 x100,000": "-0" * 100_000,
    "1:: then 1: x100,000": "1::" + "1:" * 100_000 + "x",
    "0x1 x100,000": "0x1 " * 100_000,
}


def with_text(place: str, text: str) -> dict[str, Any]:
    """An event carrying ``text`` in one place that grouping or the summary reads."""
    frames: dict[str, dict[str, Any]] = {
        "frame filename": {"filename": "/srv/" + text, "function": "f"},
        "frame abs_path": {"abs_path": "https://cdn.example.com/" + text, "function": "f"},
        "frame function": {"module": "m", "function": "0x" + text},
        "frame module": {"module": text, "function": "f"},
    }
    if place in frames:
        return exception_event([frames[place]])
    return {
        "exception value": {"exception": {"values": [{"type": "E", "value": text}]}},
        "exception value, no type": {"exception": {"values": [{"value": text}]}},
        "exception type": {"exception": {"values": [{"type": text, "value": "v"}]}},
        "message": {"message": text},
        "log template": {"logentry": {"message": text + " %s", "params": ["p"]}},
        "log params": {"logentry": {"message": "%s" * 4, "params": [text] * 4}},
        "transaction": {"message": "m", "transaction": text},
    }[place]


PLACES = [
    "frame filename", "frame abs_path", "frame function", "frame module", "exception value",
    "exception value, no type", "exception type", "message", "log template", "log params", "transaction",
]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("text", ADVERSARIAL_TEXTS.values(), ids=ADVERSARIAL_TEXTS.keys())
def test_regexes_read_only_the_first_characters_of_a_long_text(place: str, text: str, regexes: RegexTally) -> None:
    _, _, cpu = group_and_summarise(with_text(place, text))
    assert regexes.largest <= MAX_MESSAGE_CHARS
    assert regexes.total <= REGEX_CHARS
    assert cpu < CPU_SECONDS


# --- the caps, at their edges: inside they count, beyond they do not ---------------------------


def test_frames_count_up_to_the_250th_most_recent() -> None:
    frames = [frame(index) for index in range(MAX_FRAMES + 1)]  # the first (oldest) is one too many
    base = fingerprint_for(exception_event(frames))
    assert fingerprint_for(exception_event([frames[0], frame(-1), *frames[2:]])) != base
    assert fingerprint_for(exception_event([frame(-1), *frames[1:]])) == base


def test_exceptions_count_up_to_the_25th_most_recent() -> None:
    lone = {"type": "KeyError", "value": "x"}
    assert fingerprint_for({"exception": {"values": [lone] + [None] * (MAX_EXCEPTIONS - 1)}}) == fingerprint_for(
        {"exception": {"values": [lone]}}
    )
    assert fingerprint_for({"exception": {"values": [lone] + [None] * MAX_EXCEPTIONS}}) == fingerprint_for({})


def test_fingerprint_entries_count_up_to_the_32nd() -> None:
    entries = [f"part-{index}" for index in range(MAX_FINGERPRINT_ENTRIES + 1)]
    base = fingerprint_for({"fingerprint": entries})
    assert fingerprint_for({"fingerprint": entries[:-2] + ["other", entries[-1]]}) != base
    assert fingerprint_for({"fingerprint": entries[:-1] + ["other"]}) == base


@pytest.mark.parametrize(
    ("key", "limit"),
    [("filename", MAX_GROUPED_PATH_CHARS), ("abs_path", MAX_GROUPED_PATH_CHARS),
     ("function", MAX_GROUPED_SYMBOL_CHARS), ("module", MAX_GROUPED_SYMBOL_CHARS)],
)
def test_frame_texts_count_up_to_relays_limits(key: str, limit: int) -> None:
    def fingerprint_with(text: str) -> str:
        return fingerprint_for(exception_event([{"function": "f"} | {key: text}]))

    kept = "a" * (limit - 1)
    assert fingerprint_with(kept + "b") != fingerprint_with(kept + "c")
    assert fingerprint_with(kept + "b" + "x") == fingerprint_with(kept + "b" + "y")


def test_exception_type_counts_up_to_relays_limit() -> None:
    def fingerprint_with(kind: str) -> str:
        return fingerprint_for({"exception": {"values": [{"type": kind, "value": "v"}]}})

    kept = "E" * (MAX_GROUPED_SYMBOL_CHARS - 1)
    assert fingerprint_with(kept + "1") != fingerprint_with(kept + "2")
    assert fingerprint_with(kept + "1x") == fingerprint_with(kept + "1y")


def test_formatted_message_is_cut_like_one_that_was_sent() -> None:
    event = {"logentry": {"message": "%s" * 3, "params": ["a" * MAX_MESSAGE_CHARS] * 3}}
    assert summarize_event(event, fingerprint="f", received_at=RECEIVED_AT).description == "a" * 1024
    assert len(summary.format_log_entry(fields.log_entry(event))) == MAX_MESSAGE_CHARS


# --- through the payload: load, group, summarise, store -------------------------------------------


def collect(body: bytes) -> float:
    """The CPU seconds of everything the collector does with one event item's payload."""
    started = time.process_time()
    event = load_event(body, max_bytes=MIB)
    fingerprint = fingerprint_for(event)
    summarize_event(event, fingerprint=fingerprint, received_at=RECEIVED_AT)
    pack_event(event)
    return time.process_time() - started


def test_one_mebibyte_string() -> None:
    text = "é" * ((MIB - 200) // 2)
    for place in ("exception value", "message", "frame filename", "frame module"):
        body = orjson.dumps(with_text(place, text))
        assert MIB - 300 < len(body) <= MIB
        assert collect(body) < CPU_SECONDS


def test_deep_nesting_within_orjsons_limit_is_refused_quickly() -> None:
    body = b'{"a":' + b"[" * 1_000 + b"]" * 1_000 + b"}"
    started = time.process_time()
    with pytest.raises(Rejection) as refused:
        load_event(body, max_bytes=MIB)
    assert refused.value.causes == [f"event payload nests deeper than {MAX_DEPTH} levels"]
    assert time.process_time() - started < CPU_SECONDS


def test_many_deep_nests_cost_about_what_parsing_them_costs() -> None:
    nest: Any = 1
    for _ in range(MAX_DEPTH - 2):
        nest = [nest]
    body = orjson.dumps({"extra": [nest] * 3_000})  # about 380,000 lists, 128 levels deep
    assert len(body) <= MIB

    def parse_and_dump() -> float:
        started = time.process_time()
        orjson.dumps(orjson.loads(body))
        return time.process_time() - started

    # Relative to the parse that no event escapes, so that a busy machine does not fail it.
    assert min(collect(body) for _ in range(3)) < 4 * min(parse_and_dump() for _ in range(3))


def test_a_nul_among_many_values_is_replaced_without_walking_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    walks = spy(monkeypatch, payload, "_replaced")
    body = orjson.dumps({"extra": {"n": list(range(100_000)), "nul": "a\x00b"}})
    assert collect(body) < CPU_SECONDS
    assert walks[0] == 0
    assert orjson.loads(pack_event(load_event(body, max_bytes=MIB)))["extra"]["nul"] == "a\ufffdb"


@pytest.mark.parametrize("oddity", [b"NaN", b'"\\ud800"'], ids=["NaN", "lone surrogate"])
def test_the_lenient_parser_spends_no_python_call_per_value(oddity: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = [spy(monkeypatch, payload, name) for name in ("_replaced", "_int", "_float")]
    body = b'{"extra":{"n":[' + b"12345," * 100_000 + oddity + b"]}}"
    assert collect(body) < CPU_SECONDS
    assert [count[0] for count in calls] == [0, 0, 0]


# --- end to end: the event of the report through the collector ----------------------------------


@pytest.fixture
async def tracked(api: Any, world: Any) -> TrackedProject:
    return await tracked_project(api, world)


async def test_the_reported_event_is_answered_quickly_and_groups_like_its_capped_self(
    server: Any, http: Any, pool: Any, tracked: TrackedProject
) -> None:
    all_frames = [{"function": f"f{index}", "lineno": index} for index in range(5_000)]
    reported = {"event_id": new_event_id(), "fingerprint": ["{{ default }}"] * 10_000,
                "exception": {"values": [{"type": "RuntimeError", "stacktrace": {"frames": all_frames}}]}}
    capped = {"event_id": new_event_id(), "fingerprint": ["{{ default }}"] * MAX_FINGERPRINT_ENTRIES,
              "exception": {"values": [{"type": "RuntimeError", "stacktrace": {"frames": all_frames[-MAX_FRAMES:]}}]}}
    body = event_envelope(reported)
    assert 300_000 < len(body) < 400_000
    url, headers = collector_url(server.url, tracked.project_id), sentry_auth(tracked.public_key)

    started, cpu_started = time.perf_counter(), time.process_time()
    status, answer, _ = await post_envelope(http, url, body, headers)
    assert time.perf_counter() - started < 5.0
    assert time.process_time() - cpu_started < 1.0  # client, server and the database driver together
    assert_accepted(status, answer, reported["event_id"])

    status, answer, _ = await post_envelope(http, url, event_envelope(capped), headers)
    assert_accepted(status, answer, capped["event_id"])
    assert await counts(pool, tracked.project_id) == (1, 2)
