"""No import cycle among the appliance's own modules.

The rule: module A depends on module B when any `import` or `from ... import` statement
in A names B, wherever the statement sits (module level, inside a function, under
`if TYPE_CHECKING:`): an import moved into a function still runs, so it does not break
a cycle. `from P import x` depends on the module `P.x` when it exists, else on `P`
(for a package, its `__init__`); relative imports are resolved against A's package.
That Python imports a module's parent packages first is not counted.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "appliance"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> list[str]:
    """The dotted names an import statement of module `name` asks for."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        parent = package[:len(package) - node.level + 1]
        base = ".".join(parent + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def graph() -> dict[str, set[str]]:
    """Each appliance module and the appliance modules it imports."""
    mods = modules()
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        deps = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            wanted = imported(node, name, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):
                base = wanted.pop()
                wanted = [w if w in mods else base for w in wanted]
            for target in wanted:
                while target and target not in mods:  # `import a.b.c` of a name, not a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    deps.add(target)
        out[name] = deps
    return out


def cycles(deps: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one
    cycle through them found by a breadth-first search."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(deps[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_cycle(deps, set(component)))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return found


def _cycle(deps: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(deps[v] & component):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError("a strongly connected component without a cycle")


def test_the_graph_sees_the_imports():
    deps = graph()
    assert "appliance.db" in deps["appliance.audit"]
    assert "appliance.audit" in deps["appliance.auth"]  # `from appliance import audit`
    assert "appliance.plugins.sync.report" in deps["appliance.plugins.sync.pbxsync"]  # relative
    assert "appliance.plugins.sync.service" in deps["appliance.plugins.sync.jobs"]


def test_the_check_finds_a_cycle():
    deps = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(deps) == [["a", "b", "c", "a"]]


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles among appliance modules:\n" + "\n".join(
        " -> ".join(c) for c in found)
