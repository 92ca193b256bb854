"""Syntax highlighting of an event's source lines on the server, with Pygments, one HTML fragment per line.

The lines around a frame (pre_context, context_line, post_context) are lexed together so that a
construct spanning lines (a string, a call's arguments) is read right, then cut back into lines.
Each token becomes ``<span class="…">`` with Pygments' short class names (``k``, ``s2``…), styled
by :func:`token_css` under the ``.ev-code`` container: the page's Content-Security-Policy has no
'unsafe-inline', so nothing here writes a style attribute. Every piece of text goes through
markupsafe's ``escape``; the result is :class:`~markupsafe.Markup` because it is already escaped,
and that is the only place where event text is marked safe.
"""

from __future__ import annotations

import functools
import posixpath

from markupsafe import Markup, escape
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name, get_lexer_for_filename
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

STYLE = "default"  # Pygments' own light style: readable contrast, no background of its own
CONTAINER = ".ev-code"  # the element of _event.html that holds highlighted lines

# The event's platform names the language when the filename does not (a URL without an
# extension, "<string>", "[native code]"); see the platforms Sentry's protocol lists.
_PLATFORM_LEXERS = {
    "python": "python",
    "javascript": "javascript",
    "node": "javascript",
    "ruby": "ruby",
    "php": "php",
    "java": "java",
    "go": "go",
    "csharp": "csharp",
    "elixir": "elixir",
    "perl": "perl",
    "native": "c",
    "cocoa": "objective-c",
    "objc": "objective-c",
    "dart": "dart",
    "groovy": "groovy",
    "haskell": "haskell",
}
_MAX_NAME = 200  # characters of a filename looked at: only its last part matters


def highlight_lines(lines: list[str], filename: str = "", platform: str = "") -> list[Markup]:
    """One escaped HTML fragment per line of ``lines``, highlighted for the file's language.

    The lexer comes from the filename (its last path part, without a URL's query), else from the
    platform, else plain text. Newlines inside a line become spaces, so the count always matches.
    """
    clean = [line.replace("\r", " ").replace("\n", " ") for line in lines]
    if not clean:
        return []
    try:
        highlighted = _highlighted(clean, _lexer(_basename(filename), platform))
    except Exception:  # a lexer's own bug must not cost the page; the text is still shown
        highlighted = None
    if highlighted is None or len(highlighted) != len(clean):
        return plain_lines(clean)
    return highlighted


def plain_lines(lines: list[str]) -> list[Markup]:
    """The lines escaped, without highlighting (past the page's highlighting budget)."""
    return [escape(line) for line in lines]


def token_css() -> str:
    """The stylesheet rules for the token classes :func:`highlight_lines` writes, under :data:`CONTAINER`."""
    return "\n".join(HtmlFormatter(style=STYLE).get_token_style_defs(CONTAINER)) + "\n"


def _highlighted(lines: list[str], lexer: Lexer) -> list[Markup]:
    # Runs of one token class (a string's quotes and body) are joined into one span per line.
    out: list[list[tuple[str, str]]] = [[]]
    for token_type, value in lexer.get_tokens("\n".join(lines) + "\n"):
        css_class = _css_class(token_type)
        for index, part in enumerate(value.split("\n")):
            if index:
                out.append([])
            if part:
                line = out[-1]
                if line and line[-1][0] == css_class:
                    line[-1] = (css_class, line[-1][1] + part)
                else:
                    line.append((css_class, part))
    if out[-1] == []:
        out.pop()  # the newline added after the last line
    return [Markup("".join(_span(css_class, part) for css_class, part in line)) for line in out]


def _span(css_class: str, text: str) -> str:
    escaped = str(escape(text))
    return f'<span class="{css_class}">{escaped}</span>' if css_class else escaped


@functools.lru_cache(maxsize=1024)
def _css_class(token_type: tuple) -> str:  # a pygments.token type
    while token_type not in STANDARD_TYPES:
        token_type = token_type.parent
    return STANDARD_TYPES[token_type]


def _basename(filename: str) -> str:
    name = filename[-_MAX_NAME:].split("?", 1)[0].split("#", 1)[0]
    return posixpath.basename(name.replace("\\", "/"))


@functools.lru_cache(maxsize=512)
def _lexer(basename: str, platform: str) -> Lexer:
    # Lexers keep no state between get_tokens calls, so one per name serves every frame.
    # PHP frames hold code without the "<?php" opening tag.
    options = {"stripnl": False, "stripall": False, "ensurenl": True, "startinline": True}
    if basename:
        try:
            return get_lexer_for_filename(basename, **options)
        except ClassNotFound:
            pass
    name = _PLATFORM_LEXERS.get(platform)
    if name:
        try:
            return get_lexer_by_name(name, **options)
        except ClassNotFound:
            pass
    return TextLexer(**options)
