"""The core's layering: no import circle among imrec's modules (issue 18: bench/tables.py and plot.py once imported
a constant from cli.py, which imports them back), and the core never imports a plugin.

Only module-level imports count — those that run when a module is imported. Imports inside functions (the lazy
imports that keep `imrec --help` fast) and under ``if TYPE_CHECKING:`` never run at import time."""

from __future__ import annotations

import ast
from pathlib import Path

import imrec

ROOT = Path(imrec.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            todo.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            todo.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                target = _resolve(name, is_package, node)
                # `from . import x` / `from .pkg import mod`: the submodule when there is one, else the module.
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]
            for t in targets:
                while t and t not in modules and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_circle_in_the_core():
    graph = import_graph()
    assert "imrec.cli" in graph and "imrec.bench.tables" in graph  # the scan sees the modules it should
    # A package's __init__ importing its own submodules, which import siblings, is not a circle; a submodule
    # importing its package's __init__ (which imports the submodule back) is.
    assert _cycles(graph) == []


def test_the_scan_finds_a_circle_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_core_never_imports_a_plugin():
    plugins = {p.name for p in (ROOT.parent / "plugins").iterdir() if p.is_dir() and p.name.startswith("imrec_")}
    offenders = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.relative_to(ROOT.parent)}: {n}" for n in names if n.split(".")[0] in plugins]
    assert offenders == []


def test_every_import_of_an_imrec_name_resolves_lazy_ones_included():
    """Lazy imports inside functions run only when their command does: a name moved by a refactor breaks them
    unseen (it happened: `imrec tune --jobs 2` imported a worker helper from the module it had left)."""
    import importlib

    broken = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _resolve(module, is_package, node)
            if not target.startswith("imrec"):
                continue
            imported = importlib.import_module(target)
            for alias in node.names:
                if alias.name != "*" and not hasattr(imported, alias.name):
                    try:
                        importlib.import_module(f"{target}.{alias.name}")
                    except ImportError:
                        broken.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {target}.{alias.name}")
    assert broken == []
