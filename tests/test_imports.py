"""The engine's import graph: no module imports one that (through others) imports it back.

The graph is read from the source (ast), so a cycle fails here even where Python's import order
happens to let it load. Imports at module level count (under `if`, `try`/`except`, `match` and in
class bodies too; also under `if TYPE_CHECKING:`, which errs on the safe side); an import inside a
function runs when the function is called and breaks no load order, but a cycle through one still
ties two modules together, so each such back-edge must be one of DEFERRED, with its reason, and
must still close a cycle. (`import a.b` also runs a's __init__; such package edges are left out,
as Python always loads a package before its modules.)
"""

import ast
from importlib.util import resolve_name
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "engine"

# (importer, imported): imports inside a function that close a cycle, and why they are there
DEFERRED = {
    ("engine.train", "engine.backends"): "train() hands the run to the backend the config names",
    ("engine.backends.torch_backend", "engine.backends.torch_layers"): "autograd for layers the dense path lacks",
    ("engine.data", "engine.tabular"): "load_dataset() reaches the tables, which build on Dataset",
    ("engine.config", "engine.tabular"): "an uploaded CSV's dataset name is checked when it is restored",
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.Module, deferred: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements run when the module loads (and, with `deferred`, those inside functions too)."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not deferred:
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        todo += [child for child in ast.iter_child_nodes(node)
                 if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case))]
    return found


def import_graph(root: Path, deferred: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (`from p import m` names module p.m where that is one)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = []
        for node in imports(ast.parse(path.read_text()), deferred):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            else:  # `from . import a` and `from .b import c` resolved against this module's package
                source = resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
                targets += [f"{source}.{a.name}" if f"{source}.{a.name}" in files else source for a in node.names]
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def test_the_engine_loads_without_an_import_cycle():
    graph = import_graph(ENGINE)
    assert {"engine.layers", "engine.train", "engine.backends.numpy_backend", "engine.fast.step"} <= set(graph)
    assert "engine.layers" in graph["engine.fast.layers"]  # the fast twins build on the textbook
    assert find_cycle(graph) is None


def test_every_cycle_through_a_deferred_import_is_a_known_one():
    graph = import_graph(ENGINE, deferred=True)
    for importer, imported in DEFERRED:
        assert imported in graph[importer], f"{importer} no longer imports {imported}: drop it from DEFERRED"
        graph[importer].discard(imported)
    assert find_cycle(graph) is None
    for importer, imported in DEFERRED:  # each, put back alone, closes a cycle: none is listed for nothing
        graph[importer].add(imported)
        assert find_cycle(graph), f"{importer} -> {imported} closes no cycle: drop it from DEFERRED"
        graph[importer].discard(imported)


@pytest.mark.parametrize("back, at_load", [
    ("from pkg.a import thing", True),
    ("if True:\n    from pkg.a import thing", True),
    ("try:\n    pass\nexcept ImportError:\n    from pkg.a import thing", True),
    ("match 1:\n    case 1:\n        from pkg.a import thing", True),
    ("class C:\n    from pkg import a", True),
    ("from . import a", True),
    ("from .a import thing", True),
    ("def f():\n    from pkg.a import thing", False),
], ids=["plain", "if", "except", "match", "class", "relative", "relative-from", "function"])
def test_the_walk_finds_a_cycle_however_its_last_import_is_written(tmp_path, back, at_load):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("import pkg.c\n")
    (pkg / "c.py").write_text(back + "\n")
    cycle = ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert find_cycle(import_graph(pkg)) == (cycle if at_load else None)
    assert find_cycle(import_graph(pkg, deferred=True)) == cycle
