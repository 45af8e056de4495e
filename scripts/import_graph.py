"""Print the import graph between superscope's subpackages; exit 1 on an upward import or a cycle.

Dependencies flow one way (DESIGN.md): kernels ← saes ← activations ← probes ← interventions ← analyses ← dashboards
← the command line (superscope.analyses.cli: it starts the dashboard) ← benchmarks (may use everything). "Upward" is an import of a later package from an earlier
one (saes importing analyses, say). A cycle is a set of modules that import each other, directly or
through others; imports inside functions count too (a lazy import hides a cycle, it does not remove
it); imports under `if TYPE_CHECKING:` do not (they never run). `superscope` (superscope_pkg/) is the namespace root and may be imported by anyone.

    python scripts/import_graph.py            # the package graph, then any violation
    python scripts/import_graph.py --modules  # also every module-level edge
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("kernels", "saes", "activations", "probes", "interventions", "analyses", "dashboards", "cli", "benchmarks")
ROOTS = {"superscope": "superscope_pkg", **{name: name for name in LAYERS if name != "cli"}}
CLI = "superscope.analyses.cli"  # the command line and the torchrun programs: above everything but benchmarks


def module_files() -> dict[str, Path]:
    """``superscope.<dotted>`` → file, for every module of the root packages."""
    modules = {}
    for package, folder in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            prefix = ["superscope"] if package == "superscope" else ["superscope", package]
            modules[".".join(prefix + parts)] = path
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:`` — its body is read by type checkers only."""
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _runtime_nodes(tree: ast.AST):
    """Every node, except inside the body of an ``if TYPE_CHECKING:`` (its ``else`` runs, so it counts)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if _is_type_checking(node):
            todo.extend(node.orelse)
            todo.append(node.test)
        else:
            todo.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The superscope modules ``name`` imports at run time (``from pkg import mod`` resolves to the module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import superscope.saes.trainer as t` etc.
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(module: str) -> str:
    if module == CLI or module.startswith(CLI + "."):
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "superscope"


def is_private_from_outside(src: str, dst: str) -> bool:
    """``dst`` is an underscore module (``pkg._helper``) and ``src`` is not inside ``pkg``: a module
    imported from outside its package is public and must not keep an underscore name."""
    package, _, leaf = dst.rpartition(".")
    return leaf.startswith("_") and not leaf.startswith("__") and not src.startswith(package + ".")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(show_modules: bool = False) -> int:
    files = module_files()
    known = set(files)
    graph = {name: imports_of(name, path, known) for name, path in files.items()}
    package_edges: dict[tuple[str, str], int] = defaultdict(int)
    upward = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            a, b = layer_of(src), layer_of(dst)
            if a != b:
                package_edges[(a, b)] += 1
                if "superscope" not in (a, b) and LAYERS.index(b) > LAYERS.index(a):
                    upward.append(f"{src} -> {dst}")
            if show_modules:
                print(f"  {src} -> {dst}")
    print("imports between subpackages (count of module edges):")
    for (a, b), n in sorted(package_edges.items(), key=lambda e: (LAYERS.index(e[0][0]) if e[0][0] in LAYERS else -1, e[0][1])):
        print(f"  {a:<12} -> {b:<12} {n}")
    found = cycles(graph)
    private = [f"{src} -> {dst}" for src, targets in sorted(graph.items()) for dst in sorted(targets)
               if is_private_from_outside(src, dst)]
    for line in upward:
        print(f"UPWARD IMPORT: {line}")
    for line in private:
        print(f"PRIVATE MODULE IMPORTED FROM OUTSIDE ITS PACKAGE: {line}")
    for component in found:
        print(f"CYCLE: {' <-> '.join(component)}")
    print(f"{len(files)} modules, {sum(map(len, graph.values()))} imports, {len(upward)} upward, {len(found)} cycles, "
          f"{len(private)} private")
    return 1 if upward or found or private else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", action="store_true", help="print every module edge too")
    sys.exit(check(parser.parse_args().modules))


if __name__ == "__main__":
    main()
