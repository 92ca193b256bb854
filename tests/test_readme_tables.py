"""The README against the code: its Configuration table against ``app.config``, the paths and links it names against the tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import TABLE, Setting

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def section(title: str) -> str:
    """The text under the README's ``## title`` heading, up to the next one."""
    text = README.read_text(encoding="utf-8")
    heading = f"\n## {title}\n"
    assert heading in text, f"README has no section {title!r}"
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, cells stripped."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    assert len(lines) > 2, "no table found"
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def documented_default(row: Setting) -> str:
    if row.shown is not None:
        return row.shown
    if row.default is None:
        return "unset"
    value = row.default
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def test_configuration_table_is_the_settings_table() -> None:
    documented = [tuple(cells) for cells in table_rows(section("Configuration"))]
    declared = [(f"`{row.variable}`", documented_default(row), row.meaning) for row in TABLE]
    expected = "\n".join(f"| {' | '.join(cells)} |" for cells in declared)
    assert documented == declared, f"the README's Configuration rows should read:\n{expected}"


def test_table_rows_are_read_cell_by_cell() -> None:
    text = "intro\n\n| a | b |\n|---|---|\n| `X` | one |\n| `Y` | two words |\n\nafter | not a row\n"
    assert table_rows(text) == [["`X`", "one"], ["`Y`", "two words"]]


def module_paths() -> list[str]:
    """Every backticked path in the second column of the README's "Where things are" table."""
    paths = []
    for cells in table_rows(section("Where things are")):
        paths += cells[1].split("`")[1::2]
    return paths


def test_where_things_are_names_some_modules() -> None:
    assert len(module_paths()) >= 10


@pytest.mark.parametrize("path", module_paths())
def test_where_things_are_names_paths_that_exist(path: str) -> None:
    matches = list(ROOT.glob(path))
    assert matches, f"README's 'Where things are' names {path}, which does not exist"


def test_relative_links_lead_to_files() -> None:
    links = re.findall(r"\]\(([^)#:]+)\)", README.read_text(encoding="utf-8"))
    assert links, "no relative link found"
    assert [link for link in links if not (ROOT / link).exists()] == []
