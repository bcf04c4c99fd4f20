"""The layers of DESIGN §2a hold, and no package imports, through any chain, one that imports it back.

Imports inside functions count: import-linter and grimp read every import statement of a module, not only the
ones at its top. A plain pytest run fails on a layer violation or a cycle, as `make test` does.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def test_the_import_contracts_in_pyproject_are_kept():
    # From the checkout's root: lint-imports reads pyproject.toml there and imports publicmesh from there.
    out = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of a small directed graph, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            components.append(sorted([*component, node]))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def package_cycles(graph: grimp.ImportGraph, root: str) -> list[list[str]]:
    """Cycles among the children of each package (a child standing for all it contains).

    A cycle counts when it involves a subpackage, or lies between the root's own children (its packages and
    top-level modules are the layers' units); imports back and forth between two modules of one package do not.
    """
    cycles = []
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        children = graph.find_children(package)
        prefix = package + "."

        def sibling(module: str) -> str | None:
            return prefix + module[len(prefix) :].split(".")[0] if module.startswith(prefix) else None

        edges: dict[str, set[str]] = {child: set() for child in children}
        for child in children:
            for imported in graph.find_modules_directly_imported_by(child, as_package=True):
                target = sibling(imported)
                if target and target != child:
                    edges[child].add(target)
        for component in _strongly_connected(edges):
            if len(component) > 1 and (package == root or any(graph.find_children(m) for m in component)):
                cycles.append(component)
    return cycles


def test_no_package_imports_one_that_imports_it_back():
    graph = grimp.build_graph("publicmesh", cache_dir=None)
    assert package_cycles(graph, "publicmesh") == []


def test_a_cycle_made_by_an_import_inside_a_function_is_found(tmp_path, monkeypatch):
    files = {
        "probe_cycles/__init__.py": "",
        "probe_cycles/low/__init__.py": "",
        "probe_cycles/low/base.py": "def helper():\n    from probe_cycles.high import top\n    return top\n",
        "probe_cycles/high/__init__.py": "",
        "probe_cycles/high/top.py": "from probe_cycles.low import base\n",
        "probe_cycles/high/a.py": "from probe_cycles.high import b\n",
        "probe_cycles/high/b.py": "def later():\n    from probe_cycles.high import a\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("probe_cycles", cache_dir=None)
    # low ↔ high is found although low's import is inside a function; high.a ↔ high.b are two modules of one
    # package, not packages.
    assert package_cycles(graph, "probe_cycles") == [["probe_cycles.high", "probe_cycles.low"]]
