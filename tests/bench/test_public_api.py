"""The scripts under benchmarks/ use imrec's public API only: no private (``_name``) module, function or attribute
of the core, so that refactoring the core's internals cannot silently break (or change) a benchmark."""

import ast
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
               for part in dotted.split("."))


def _core(module: str) -> bool:
    return module == "imrec" or module.startswith("imrec.")


def private_core_uses(source: str) -> list[str]:
    """Every private core name ``source`` imports or reaches through an imported core module, as written."""
    tree = ast.parse(source)
    found, aliases = [], {}  # local name → the core module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _core(a.name):
                    if _private(a.name):
                        found.append(a.name)
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "imrec"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _core(node.module or ""):
            for a in node.names:
                name = f"{node.module}.{a.name}"
                if _private(name):
                    found.append(name)
                aliases[a.asname or a.name] = name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                dotted = ".".join([aliases[inner.id], *reversed(chain)])
                if _private(dotted) and not _private(aliases[inner.id]):
                    found.append(dotted)
    return found


def test_the_check_finds_each_way_of_reaching_a_private_name():
    source = """
import imrec.trainer
import imrec.runs as runs
from imrec.trainer import plan_phase, _multi_tensor
from imrec import _version
import imrec._internal
from imrec.runner import prepare
x = imrec.trainer._owner(1)
y = runs._source_commit()
z = prepare.__doc__
"""
    assert sorted(private_core_uses(source)) == sorted([
        "imrec.trainer._multi_tensor", "imrec._version", "imrec._internal", "imrec.trainer._owner",
        "imrec.runs._source_commit"])
    assert private_core_uses("from imrec.trainer import fast_implementation\nimport imrec_rohydr.layers\n") == []


def test_no_benchmark_reaches_a_private_core_name():
    scripts = sorted(BENCHMARKS.rglob("*.py"))
    assert len(scripts) >= 9  # benchmarks/*.py and benchmarks/speed/*.py
    offenders = {str(p.relative_to(BENCHMARKS)): uses for p in scripts
                 if (uses := private_core_uses(p.read_text(encoding="utf-8")))}
    assert not offenders, f"benchmark scripts use private imrec names (make them public, or avoid them): {offenders}"
