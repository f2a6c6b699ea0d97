"""The import rules of docs/design.md ("The parts and the arrows"), checked on the source.

Every ``import`` statement counts, including those inside functions: a deferred import hides a cycle from the
interpreter, not from a reader walking the code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vlmalign"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """vlmalign module -> the vlmalign modules it imports (a package import counts as its ``__init__``)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import sub` depends on the module pkg.sub; `from mod import name` on mod itself
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # `from pkg import name` names an attribute, not a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_vlmalign_modules():
    found = cycles(import_graph())
    assert not found, "import cycles (each line one strongly connected set of modules):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_objectives_import_no_model_code():
    graph = import_graph()
    objectives = [m for m in graph if m.startswith("vlmalign.objectives")]
    allowed = ("vlmalign.objectives", "vlmalign.errors", "vlmalign.logps", "vlmalign.views", "vlmalign")
    wrong = {m: sorted(t for t in graph[m] if not t.startswith(allowed[0]) and t not in allowed[1:])
             for m in objectives}
    assert not any(wrong.values()), f"objectives import outside their layer: { {k: v for k, v in wrong.items() if v} }"


def test_importing_the_objectives_does_not_import_transformers():
    code = ("import sys, vlmalign.objectives, vlmalign.objectives.functional; "
            "print(sorted(m for m in ('transformers', 'peft', 'pytorch_lightning', 'vlmalign.models') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# (importer prefix, imported prefix): the arrows docs/design.md says must never exist, besides the objectives'.
FORBIDDEN = [
    ("vlmalign.models", "vlmalign.module"), ("vlmalign.models", "vlmalign.reference"),
    ("vlmalign.models", "vlmalign.job"), ("vlmalign.reference", "vlmalign.module"),
    ("vlmalign.data", "vlmalign.pipelines"), ("vlmalign.data", "vlmalign.utils.compose"),
    ("vlmalign.data", "vlmalign.job"), ("vlmalign", "vlmalign.train"),
    # online RL and reward models sit beside module.py: nothing below them reaches up into them
    ("vlmalign.models", "vlmalign.rl"), ("vlmalign.reference", "vlmalign.rl"), ("vlmalign.data", "vlmalign.rl"),
    ("vlmalign.eval", "vlmalign.rl"), ("vlmalign.module", "vlmalign.rl"),
]


def test_no_forbidden_arrow():
    graph = import_graph()
    found = [f"{importer} -> {target}" for importer, targets in sorted(graph.items()) for target in sorted(targets)
             for source, forbidden in FORBIDDEN
             if importer.startswith(source) and (target == forbidden or target.startswith(forbidden + "."))
             and importer != "vlmalign.train"]
    assert not found, "imports that docs/design.md forbids:\n" + "\n".join(found)
