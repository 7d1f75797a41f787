"""orchestrate's layout: subpackages by concern (core/, data/, training/, endpoint/,
audit/, local/, monitor/, review/, access/); cli.py only parses and dispatches, so nothing but
__main__ imports it; no module reaches itself through its imports (function-level ones too), nor
does a concern through another; core/ imports no other concern; and every module stays small."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrate"
CONCERNS = {"core", "data", "training", "endpoint", "audit", "local", "monitor", "review", "access"}


def name(path: Path) -> str:
    """``orchestrate/audit/join.py`` -> ``orchestrate.audit.join``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the orchestrate modules it imports, anywhere in its source."""
    modules = {name(p) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("orchestrate"):
                for a in node.names:  # `from orchestrate.audit import join` names a module
                    found.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("orchestrate")}
        graph[name(path)] = found - {name(path)}
    return graph


def test_commands_live_in_subpackages_by_concern():
    top = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    assert top == {"__init__.py", "__main__.py", "cli.py"} | CONCERNS
    for concern in CONCERNS - {"core"}:
        assert (PACKAGE / concern / "commands.py").is_file() or concern == "local", concern


def test_nothing_but_main_imports_the_cli():
    assert {m for m, deps in imports().items() if "orchestrate.cli" in deps} == {"orchestrate.__main__"}


def test_core_imports_no_other_concern():
    graph = imports()
    outside = {m: sorted(d for d in deps if not d.startswith("orchestrate.core"))
               for m, deps in graph.items() if m.startswith("orchestrate.core")}
    assert not any(outside.values()), outside


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


def test_the_concerns_import_each_other_without_a_cycle():
    """A concern folder never reaches itself through another (e.g. training -> local -> training):
    the folders read as layers, core at the bottom."""
    graph: dict[str, set[str]] = {}
    for module, deps in imports().items():
        parts = module.split(".")
        if len(parts) > 2 and parts[1] in CONCERNS:
            graph.setdefault(parts[1], set()).update(
                d.split(".")[1] for d in deps if len(d.split(".")) > 1 and d.split(".")[1] in CONCERNS)
    for concern in graph:
        graph[concern].discard(concern)

    def reach(start: str) -> set[str]:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            c = todo.pop()
            if c not in seen:
                seen.add(c)
                todo += graph.get(c, ())
        return seen

    assert not sorted(c for c in graph if c in reach(c)), graph


def test_no_module_is_over_300_lines():
    long = {name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


def test_the_cli_imports_where_the_training_image_runs_it_without_a_web_server_or_scikit_learn():
    """The monitor's scheduled job and compose's client run `python -m orchestrate` in the training
    image, which has no gunicorn or Flask (the serving image's) and no scikit-learn. Fails if a
    module the CLI imports reached bincounter.serving.handler (whose error table imports gunicorn)
    or sklearn at module level, as orchestrate.review.pool once did."""
    import subprocess
    import sys

    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('gunicorn', 'flask', 'sklearn'):\n"
            "            raise ImportError('not in the training image: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import orchestrate.cli\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr[-2000:]
