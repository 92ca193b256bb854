"""Every module of app/ opens with a one-line summary of what it owns."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
MODULES = sorted(APP.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(APP.parent)))
def test_module_opens_with_a_one_line_summary(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text()), clean=False)
    assert docstring, f"{path} has no module docstring"
    summary = docstring.strip().split("\n\n")[0]
    assert "\n" not in summary, f"{path}: the summary runs over more than one line: {summary!r}"
