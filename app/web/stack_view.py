"""An event's exception chain and stack frames, as the error page shows them.

Sentry's protocol sends ``exception.values`` oldest first (the last one is the exception that
reached the handler) and each stack's frames oldest call first (the raising frame last). The
chain is shown in that order, the order in which the exceptions were raised, joined by the
sentence Python prints when the SDK says how they are linked (``mechanism.source``). Frames are
shown as Python prints them, oldest call first, for Python events, and newest call first for
every other platform, as Sentry and Bugsink show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from app.web.highlight import highlight_lines, plain_lines
from app.web.payload_values import clip, integer, key, mapping, sequence, text, values_list

MAX_EXCEPTIONS = 50  # of one chain: the newest are kept
MAX_FRAMES = 250  # of one stack: those nearest the raising frame are kept
MAX_EVENT_FRAMES = 1_000  # of all the stacks of an event, given to the newest exception first
MAX_CONTEXT_LINES = 30  # before and after the current line, each
MAX_VARIABLES = 200  # of one frame
# sentry-python's serializer keeps this many items of a mapping (MAX_DATABAG_BREADTH) and drops
# a frame's further locals without a word in _meta.
SDK_VARIABLE_LIMIT = 10
LINE_LIMIT = 500  # characters of one source line
# Characters of source highlighted per event, the newest exception first: Pygments lexes about
# 5 µs per character (Python source, on a busy 2-core machine), plus about 45 µs per call, and a
# hostile event may carry a megabyte of "source". Lines past the budget are shown plain.
HIGHLIGHT_BUDGET = 50_000
_CALL_COST = 10  # a highlight call's fixed cost, in characters

CAUSE = "The above exception was the direct cause of the following exception:"
CONTEXT = "During handling of the above exception, another exception occurred:"
CHAINED = "The above exception is linked to the following exception:"
GROUP = "The above exception is {} of the following exception group:"
GROUP_BELOW = "The above exception is {} of an exception group below:"
OLDEST_FIRST = "oldest call first"
NEWEST_FIRST = "newest call first"


@dataclass(frozen=True)
class SourceLine:
    number: int | None
    label: str  # the number right-aligned to the frame's widest, so that the listing lines up as text
    html: Markup  # escaped and highlighted by app.web.highlight
    current: bool  # the line the frame was executing (context_line)


@dataclass(frozen=True)
class Frame:
    filename: str
    abs_path: str
    function: str
    module: str
    lineno: int | None
    colno: int | None
    in_app: bool
    open: bool  # unfolded at first: in-app frames and the raising frame
    lines: tuple[SourceLine, ...]
    variables: tuple[tuple[str, str], ...]  # name, repr text
    variables_note: str  # said when the SDK did not send every variable

    @property
    def location(self) -> str:
        """``file:line:column`` as far as known."""
        parts = [self.filename or self.abs_path or "?"]
        parts += [str(n) for n in (self.lineno, self.colno) if n is not None]
        return ":".join(parts)


@dataclass(frozen=True)
class ExceptionView:
    type: str
    value: str
    module: str
    mechanism: str  # e.g. "generic, unhandled"
    join: str  # the sentence shown before this exception; empty for the first
    frames: tuple[Frame, ...]  # in display order (see frames_order)
    frames_note: str  # said when frames were left out


class _Budget:
    """What one event may still spend: characters of source to highlight, frames to show."""

    def __init__(self) -> None:
        self.left = HIGHLIGHT_BUDGET
        self.frames_left = MAX_EVENT_FRAMES

    def lines(self, lines: list[str], filename: str, platform: str) -> list[Markup]:
        cost = sum(len(line) for line in lines) + _CALL_COST
        if cost > self.left:
            self.left = 0
            return plain_lines(lines)
        self.left -= cost
        return highlight_lines(lines, filename, platform)


def frames_order(platform: str) -> str:
    return OLDEST_FIRST if platform == "python" else NEWEST_FIRST


def exceptions(payload: dict, platform: str) -> tuple[ExceptionView, ...]:
    """The exception chain of ``payload`` in the order raised, each with its frames in display order."""
    # Numbered as sent: _meta counts in the sent list.
    values = [(number, value) for number, value in enumerate(values_list(payload.get("exception"))) if isinstance(value, dict)]
    values = values[-MAX_EXCEPTIONS:]
    meta = mapping(mapping(mapping(payload.get("_meta")).get("exception")).get("values"))
    budget = _Budget()
    chain = []
    for index in reversed(range(len(values))):  # the budget goes to the newest exception first
        number, value = values[index]
        frames, note = stack(value.get("stacktrace"), platform, budget, mapping(meta.get(str(number))))
        chain.append(
            ExceptionView(
                type=text(value.get("type"), 200) or "Error",
                value=text(value.get("value"), 10_000),
                module=text(value.get("module"), 200),
                mechanism=_mechanism(value.get("mechanism")),
                join=_join(values[index - 1][1], value) if index else "",
                frames=frames,
                frames_note=note,
            )
        )
    return tuple(reversed(chain))


def thread_stack(payload: dict, platform: str) -> tuple[Frame, ...]:
    """The stack a message event carries on its current (or crashed) thread, when the SDK attached one."""
    threads = [thread for thread in values_list(payload.get("threads")) if isinstance(thread, dict)]
    for thread in sorted(threads, key=lambda thread: not (thread.get("crashed") or thread.get("current"))):
        frames, _ = stack(thread.get("stacktrace"), platform, _Budget(), {})
        if frames:
            return frames
    return ()


def stack(stacktrace: Any, platform: str, budget: _Budget, meta: dict) -> tuple[tuple[Frame, ...], str]:
    """The frames of one stack trace in display order, and a note on those left out.

    The raising frame (the last one sent) is open even when it is library code: it says where
    the exception came from.
    """
    sent = sequence(mapping(stacktrace).get("frames"))
    kept = sent[len(sent) - min(len(sent), MAX_FRAMES, budget.frames_left) :]
    budget.frames_left -= len(kept)
    frames_meta = mapping(mapping(meta.get("stacktrace")).get("frames"))
    first = len(sent) - len(kept)  # the index of kept[0] in what was sent, which _meta counts in
    frames = [  # newest first: the highlighting budget goes to the frames nearest the raise
        _frame(frame, platform, budget, index == len(kept) - 1, mapping(frames_meta.get(str(first + index))))
        for index, frame in reversed(list(enumerate(kept)))
        if isinstance(frame, dict)
    ]
    notes = []
    if len(sent) > len(kept):
        notes.append(f"{len(sent) - len(kept)} {'older ' if kept else ''}frames not shown")
    omitted = sequence(mapping(stacktrace).get("frames_omitted"))
    if len(omitted) == 2 and all(integer(n) is not None for n in omitted):
        notes.append(f"the SDK left out frames {integer(omitted[0])} to {integer(omitted[1])}")
    if frames_order(platform) == OLDEST_FIRST:
        frames.reverse()
    return tuple(frames), "; ".join(notes)


def _frame(frame: dict, platform: str, budget: _Budget, raising: bool, meta: dict) -> Frame:
    in_app = frame.get("in_app") is True
    filename = text(frame.get("filename"), 500)
    abs_path = text(frame.get("abs_path"), 500)
    frame_platform = text(frame.get("platform"), 50) if isinstance(frame.get("platform"), str) else platform
    variables, note = _variables(frame.get("vars"), mapping(meta.get("vars")), frame_platform)
    return Frame(
        filename=filename,
        abs_path=abs_path,
        function=text(frame.get("function"), 500),
        module=text(frame.get("module") or frame.get("package"), 500),
        lineno=integer(frame.get("lineno")),
        colno=integer(frame.get("colno")),
        in_app=in_app,
        open=in_app or raising,
        lines=_source(frame, filename or abs_path, frame_platform, budget),
        variables=variables,
        variables_note=note,
    )


def _source(frame: dict, filename: str, platform: str, budget: _Budget) -> tuple[SourceLine, ...]:
    pre = [_line(line) for line in sequence(frame.get("pre_context"))[-MAX_CONTEXT_LINES:]]
    post = [_line(line) for line in sequence(frame.get("post_context"))[:MAX_CONTEXT_LINES]]
    current = frame.get("context_line")
    has_current = isinstance(current, str)
    lines = pre + ([_line(current)] if has_current else []) + post
    if not lines:
        return ()
    lineno = integer(frame.get("lineno"))
    numbers: list[int | None]
    if lineno is None:
        numbers = [None] * len(lines)
    else:
        numbers = list(range(lineno - len(pre), lineno)) + ([lineno] if has_current else []) + list(
            range(lineno + 1, lineno + 1 + len(post))
        )
    current_index = len(pre) if has_current else -1
    width = max((len(str(number)) for number in numbers if number is not None), default=0)
    return tuple(
        SourceLine(number, ("" if number is None else str(number)).rjust(width), html, index == current_index)
        for index, (number, html) in enumerate(zip(numbers, budget.lines(lines, filename, platform)))
    )


def _line(value: Any) -> str:
    return clip(value, LINE_LIMIT) if isinstance(value, str) else ""


def _variables(value: Any, meta: dict, platform: str) -> tuple[tuple[tuple[str, str], ...], str]:
    if not isinstance(value, dict):
        return (), ""
    rows = tuple((key(name), _variable(item)) for name, item in list(value.items())[:MAX_VARIABLES])
    sent = integer(mapping(meta.get("")).get("len"))
    if len(value) > len(rows):
        return rows, f"{len(rows)} of {len(value)} variables shown"
    if sent is not None and sent > len(rows):
        return rows, f"{len(rows)} of {sent} variables sent by the SDK"
    if platform == "python" and len(rows) == SDK_VARIABLE_LIMIT:
        return rows, f"sentry-python sends at most {SDK_VARIABLE_LIMIT} variables of a frame: there may be more"
    return rows, ""


def _variable(value: Any) -> str:
    # sentry-python sends each local as its repr() already; other values are shown as JSON.
    return clip(value) if isinstance(value, str) else text(value)


def _mechanism(value: Any) -> str:
    mechanism = mapping(value)
    parts = [text(mechanism.get("type"), 100)]
    handled = mechanism.get("handled")
    if isinstance(handled, bool):
        parts.append("handled" if handled else "unhandled")
    return ", ".join(part for part in parts if part)


def _join(previous: dict, current: dict) -> str:
    """The sentence between two exceptions of a chain, from how the earlier one is linked to its parent.

    sentry-python says so in ``mechanism.source`` when it numbers the chain (``exception_id``,
    ``parent_id``: exception groups and their causes): ``__cause__`` for ``raise … from …``,
    ``__context__`` for an exception raised while handling another, ``exceptions[i]`` for a
    member of a group. Without it the link is not known and the join is neutral.
    """
    earlier, later = mapping(previous.get("mechanism")), mapping(current.get("mechanism"))
    parent, own = integer(earlier.get("parent_id")), integer(later.get("exception_id"))
    source = earlier.get("source")
    if isinstance(source, str) and source.startswith("exceptions["):
        member = clip(source, 40)
        return GROUP.format(member) if parent == own else GROUP_BELOW.format(member)
    if parent is not None and own is not None and parent != own:
        return CHAINED  # not its parent: the chain goes on below
    if source == "__cause__":
        return CAUSE
    if source == "__context__":
        return CONTEXT
    return CHAINED
