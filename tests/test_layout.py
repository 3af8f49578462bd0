"""The package's shape, checked: layers import only downward, no import cycles (function-local
imports count), no private module used from another package, no module over 400 lines.

Why a test: the layout is how a newcomer finds the report or adds a benchmark; one convenient
upward import quietly undoes it. Layers, top to bottom, as docs/architecture.md draws them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "alignsweep"
LAYERS = ["alignsweep", "cli", "analysis", "engine", "spec", "scheduling", "trainables", "evaluators", "models", "inference",
          "store|data", "errors|registry|options|chat|logs|faults|suggest"]
MAX_LINES = 400
BUNDLED_DATA = {"data/_content.py"}  # the text of our bundled sets, not code


def _rank(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "alignsweep"  # the root package: the public facade (`alignsweep.open`)
    return next(i for i, layer in enumerate(LAYERS) if top in layer.split("|"))


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(path: Path, module: str, is_pkg: bool) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
            found |= {f"{base}.{a.name}" for a in node.names} | {base}
    return {name for name in found if name == "alignsweep" or name.startswith("alignsweep.")}


def _edges() -> dict[str, set[str]]:
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {}
    for m, f in mods.items():
        targets = {resolve(t) for t in _imports(f, m, f.name == "__init__.py")}
        edges[m] = {t for t in targets if t and t != m and not (mods[t].name == "__init__.py" and m.startswith(t + "."))}
    return edges


def test_every_import_goes_down_or_stays_in_its_layer() -> None:
    upward = [f"{m} -> {t}" for m, targets in _edges().items() for t in targets if _rank(t) < _rank(m)]
    assert upward == []


def test_no_import_cycles() -> None:
    edges = _edges()
    cycles, seen, stack = [], {}, []

    def visit(v: str) -> None:  # DFS: a back edge onto the stack is a cycle
        seen[v] = "open"
        stack.append(v)
        for w in sorted(edges[v]):
            if seen.get(w) == "open":
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in seen:
                visit(w)
        stack.pop()
        seen[v] = "done"

    for v in sorted(edges):
        if v not in seen:
            visit(v)
    assert cycles == []


def test_private_modules_stay_in_their_package() -> None:
    leaks = [f"{m} -> {t}" for m, targets in _edges().items() for t in targets
             if t.rsplit(".", 1)[-1].startswith("_") and not (m + ".").startswith(t.rsplit(".", 1)[0] + ".")]
    assert leaks == []


def test_no_module_over_the_size_limit() -> None:
    big = {str(f.relative_to(PACKAGE)): n for f in PACKAGE.rglob("*.py")
           if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert set(big) <= BUNDLED_DATA, big


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The rank function puts a known upward edge above its target (the checks above can fail)."""
    assert _rank("alignsweep.models.loading") > _rank("alignsweep.analysis.views")
    assert _rank("alignsweep.inference.loglik") > _rank("alignsweep.models.refs")
    assert _rank("alignsweep.errors") == len(LAYERS) - 1
