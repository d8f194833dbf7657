"""The modules of the migrate package import each other without a cycle.

Every import statement counts, also one inside a function or under `if TYPE_CHECKING:`: a
function-local import is how a cycle hides (source -> artifacts -> source once did) until an
import order changes and it fails at run time. Parsed with `ast`, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "migrate"


def module_names(package_dir: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (subpackages included)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement in `module` may load."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from . import x, from ..y import z
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # `from p import x` loads p, and p.x too when x is a module rather than a name in p.
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]


def import_graph(package_dir: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, anywhere in its code."""
    modules = module_names(package_dir, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):  # walks into functions, classes, if/try blocks
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(node, name, path.name == "__init__.py"):
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for child in sorted(graph.get(node, ())):
            if child in on_path:
                return path[path.index(child) :] + [child]
            if child not in done:
                found = visit(child)
                if found:
                    return found
        on_path.discard(path.pop())
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            found = visit(start)
            if found:
                return found
    return None


def test_migrate_has_no_import_cycle():
    graph = import_graph(PACKAGE_DIR, "migrate")
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in the migrate package: " + " -> ".join(cycle or [])


def test_the_graph_is_the_real_one():
    """Guards the test above against parsing nothing: known edges are there, the old cycle is not."""
    graph = import_graph(PACKAGE_DIR, "migrate")
    assert {
        "migrate.cli",
        "migrate.source",
        "migrate.artifacts",
        "migrate.s3",
        "migrate.identifiers",
        "migrate.planning",
        "migrate.progress",
        "migrate.__main__",
    } <= set(graph)
    assert {"migrate.planning", "migrate.s3", "migrate.artifacts", "migrate.source"} <= graph["migrate.cli"]
    assert graph["migrate.__main__"] == {"migrate.cli"}
    assert {"migrate.s3", "migrate.identifiers"} <= graph["migrate.source"]
    assert "migrate.artifacts" not in graph["migrate.source"]
    assert "migrate.source" not in graph["migrate.artifacts"]


def test_a_cycle_through_a_function_local_import_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from .sub.c import g\n    return g\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("import os\n\n\ndef g():\n    from .. import a\n    return a\n")
    graph = import_graph(package, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg", "pkg.b"},
        "pkg.b": {"pkg.sub.c"},
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg", "pkg.a"},
    }
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    (package / "sub" / "c.py").write_text("def g():\n    return 1\n")
    assert find_cycle(import_graph(package, "pkg")) is None
