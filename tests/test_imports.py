"""Import structure: the pure modules load no database driver or web server, and app's modules
import one another without a cycle (imports under ``TYPE_CHECKING`` and inside functions count)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# Parsing, grouping and summarising an event, and building a DSN: no I/O, so no asyncpg and no aiohttp.web.
PURE_MODULES = (
    "app.api.pagination",
    "app.dsn",
    "app.ids",
    "app.ingest.body",
    "app.ingest.credentials",
    "app.ingest.envelope",
    "app.ingest.fields",
    "app.ingest.inflight",
    "app.ingest.grouping",
    "app.ingest.payload",
    "app.ingest.rejection",
    "app.ingest.summary",
    "app.search_query",
)
IMPURE = ("asyncpg", "aiohttp.web")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_loads_no_database_driver_or_web_server(module: str) -> None:
    script = f"import sys, {module}; print(' '.join(m for m in {IMPURE!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == [], f"importing {module} loads {result.stdout.strip()}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The app modules named by every import statement of ``tree``, wherever it stands."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in modules:
                    found.add(submodule)
                elif node.module in modules:
                    found.add(node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in APP.rglob("*.py")}
    modules = set(paths)
    return {name: _imported(ast.parse(path.read_text()), modules) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph[module]):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_app_modules_import_each_other_without_a_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_sees_type_checking_imports() -> None:
    assert "app.ingest.writer" in import_graph()["app.state"]
