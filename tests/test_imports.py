"""phonrec's import graph: no cycles, and the command layer ``phonrec.cli`` on top.

The graph is read from the source, not from a running interpreter: every ``phonrec/**/*.py`` is
parsed with :mod:`ast` and every import statement anywhere in it counts (module level, inside
functions, methods, classes and ``if`` blocks alike), so a lazy import that dodges a cycle is
still an edge. Each statement maps to the modules it runs:

* ``import phonrec.a.b`` / ``from phonrec.a.b import name``: ``phonrec.a.b``; ``from phonrec.a
  import b`` where ``phonrec/a/b.py`` (or ``phonrec/a/b/``) exists: ``phonrec.a.b`` (and
  ``phonrec.a``, whose ``__init__`` runs first). Relative forms (``from . import x``,
  ``from ..a import y``) resolve against the importing module's package.
* Importing ``phonrec.a.b.c`` first runs ``phonrec/a/__init__.py`` and ``phonrec/a/b/__init__.py``,
  so those parent packages are edges too, except the importer's own enclosing packages (they
  were started before the importer itself could run). The root ``phonrec/__init__.py`` is no
  edge: its only imports of phonrec modules are the lazy ``import_module`` calls of the public
  face in ``__getattr__`` (strings, not import statements;
  :func:`test_root_package_imports_no_phonrec_module_eagerly` checks this), so running it never
  loads another module.

A cycle is a strongly connected component of more than one module (or a module importing itself),
reported with one cycle through it spelt out (``phonrec.a -> phonrec.b -> phonrec.a``).
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "phonrec"

Graph = dict[str, set[str]]


# --- reading the graph ---------------------------------------------------------------------------


def module_names(package_dir: Path, package: str = "phonrec") -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package_dir``."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_modules(module: str, path: Path, modules: dict[str, Path], package: str = "phonrec") -> set[str]:
    """The modules of ``package`` that running ``module`` (its file ``path``) may import, by the rules
    of the module docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own_package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    named: set[str] = set()  # the modules the statements name
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = own_package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:  # a submodule, or a name defined by the module ``base``
                named.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    named = {m for m in named if m in modules and m != package}
    enclosing = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    parents = {".".join(m.split(".")[:i]) for m in named for i in range(2, m.count(".") + 1)}
    return (named | (parents - enclosing)) - {module}


def import_graph(package_dir: Path = PACKAGE_ROOT, package: str = "phonrec") -> Graph:
    """Module -> the modules it imports (see the module docstring), for every module of the package."""
    modules = module_names(package_dir, package)
    return {m: imported_modules(m, p, modules, package) for m, p in modules.items()}


# --- finding cycles ------------------------------------------------------------------------------


def strongly_connected_components(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit); each component's members sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                out.append(sorted(comp))
    return out


def cycle_through(graph: Graph, component: list[str]) -> list[str]:
    """One cycle inside ``component`` from its first member back to it (shortest, by BFS)."""
    start = component[0]
    members = set(component)
    prev: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, ())):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in prev:
                prev[child] = node
                queue.append(child)
    raise ValueError(f"no cycle through {component}")


def find_cycles(graph: Graph) -> list[list[str]]:
    """One spelt-out cycle per strongly connected component that has one (sorted by first module)."""
    cycles = []
    for comp in strongly_connected_components(graph):
        if len(comp) > 1 or comp[0] in graph.get(comp[0], ()):
            cycles.append(cycle_through(graph, comp))
    return sorted(cycles)


# --- the finder on hand-made graphs and packages -------------------------------------------------


def test_find_cycles_on_hand_made_graphs():
    acyclic = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert strongly_connected_components(acyclic) == [["c"], ["b"], ["a"], ["d"]]
    assert find_cycles(acyclic) == []
    cyclic = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"g"}, "g": {"f", "a"}}
    assert find_cycles(cyclic) == [["a", "b", "c", "a"], ["e", "e"], ["f", "g", "f"]]
    chain = {str(i): {str(i + 1)} for i in range(5000)} | {"5000": {"0"}}  # deep: no recursion limit
    assert len(find_cycles(chain)[0]) == 5002


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root / "pkg"


def test_graph_reads_lazy_relative_and_parent_package_imports(tmp_path: Path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "from importlib import import_module\n",
            "pkg/base.py": "import numpy\n",
            "pkg/sub/__init__.py": "from pkg.sub.one import f\n",
            "pkg/sub/one.py": "from pkg.base import x\nfrom . import two\n",
            "pkg/sub/two.py": "def g():\n    from ..top import h\n",
            "pkg/top.py": "import pkg.sub.two\nfrom pkg import base\n",
        },
    )
    graph = import_graph(pkg, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.base": set(),
        "pkg.sub": {"pkg.sub.one"},
        "pkg.sub.one": {"pkg.base", "pkg.sub.two"},  # `from . import two`: pkg.sub is its own package
        "pkg.sub.two": {"pkg.top"},  # the import inside a function counts
        "pkg.top": {"pkg.sub", "pkg.sub.two", "pkg.base"},  # importing pkg.sub.two runs pkg/sub/__init__
    }
    assert find_cycles(graph) == [["pkg.sub", "pkg.sub.one", "pkg.sub.two", "pkg.top", "pkg.sub"]]


# --- phonrec itself ------------------------------------------------------------------------------


def test_root_package_imports_no_phonrec_module_eagerly():
    tree = ast.parse((PACKAGE_ROOT / "__init__.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "phonrec" for a in node.names), ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and (node.module or "").split(".")[0] != "phonrec", ast.unparse(node)


def test_phonrec_has_no_import_cycles():
    graph = import_graph()
    assert "phonrec.align" in graph and graph["phonrec.spans"] == set()
    cycles = find_cycles(graph)
    members = {c[0]: [m for comp in strongly_connected_components(graph) if c[0] in comp for m in comp] for c in cycles}
    assert not cycles, "import cycles:\n" + "\n".join(
        f"{' -> '.join(c)}  (all modules of this cycle's component: {', '.join(members[c[0]])})" for c in cycles
    )


def test_only_the_command_layer_imports_it():
    offenders = [
        f"{m} imports {t}"
        for m, targets in sorted(import_graph().items())
        if not (m == "phonrec.cli" or m.startswith("phonrec.cli."))
        for t in sorted(targets)
        if t == "phonrec.cli" or t.startswith("phonrec.cli.")
    ]
    assert not offenders, "phonrec.cli is the top layer:\n" + "\n".join(offenders)


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
