"""orchestrate's import graph: cli.py only parses and dispatches, so nothing but __main__
imports it, and no module reaches itself through its imports (function-level ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrate"


def imports() -> dict[str, set[str]]:
    """module -> the orchestrate modules it imports, anywhere in its source."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "orchestrate":
                found |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("orchestrate."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("orchestrate.")}
        graph[path.stem] = found - {path.stem}
    return graph


def test_nothing_but_main_imports_the_cli():
    assert {m for m, deps in imports().items() if "cli" in deps} == {"__main__"}


def test_no_module_imports_itself_through_others():
    graph = imports()

    def reach(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen and m in graph:
                seen.add(m)
                todo += graph[m]
        return seen

    cycles = sorted(m for m in graph if m in reach(m))
    assert not cycles, f"import cycles through {cycles}"
