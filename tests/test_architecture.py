"""The import graph of the library: project imports at the top of modules, no cycle, no import upward.

The layers follow the data flow of ../shared/DESIGN.md, lowest first; a module imports only from its own
layer or below. Lazy imports stay allowed for heavy third-party packages (torch, onnxruntime, matplotlib…),
never for project modules: a module's header shows what it depends on.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "conceptchess"

LAYERS = [
    # foundations: facts every stage shares
    {"conceptchess", "errors", "paths", "provenance", "files", "taps", "chessfacts", "bootstrap", "executors", "chunks", "progress", "names"},
    # formats and chess knowledge; the values that cross stages
    {"lc0", "concepts", "checkpoints", "directions"},
    # positions, networks, the database
    {"positions", "datasets", "networks", "store"},
    # games and inference
    {"games", "engine", "enginelabels"},
    # what runs a network over positions
    {"selfplay", "enginegames", "training", "activations", "search"},
    # analysis: probes, puzzles
    {"probing", "puzzles", "strength", "rollouts", "disagreement", "erasure", "discovery", "novelty", "amplification", "teaching", "teachability"},
    # what people read: PGN, expert studies, figures
    {"export", "study", "plots", "discoveries", "discovery_filters", "discovery_report"},
    # the whole story
    {"demo"},
    # shells
    {"cli", "__main__"},
]
LAYER_OF = {part: k for k, parts in enumerate(LAYERS) for part in parts}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(top-level, nested) project imports of a module, as (line, module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    found: tuple[list, list] = ([], [])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "conceptchess":
            names = [_resolve(f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            names = [_resolve(a.name) for a in node.names if a.name.split(".")[0] == "conceptchess"]
        else:
            continue
        found[0 if id(node) in top else 1].extend((node.lineno, n) for n in names)
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


GRAPH = {m: _imports(p) for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    assert sorted({_part(m) for m in MODULES} - set(LAYER_OF)) == []


def test_project_imports_sit_at_the_top_of_modules():
    nested = [f"{m}:{line} imports {n}" for m, (_, inner) in GRAPH.items() for line, n in inner]
    assert nested == []


def test_no_module_imports_upward():
    upward = [f"{m}:{line} imports {n} ({_part(m)} is below {_part(n)})"
              for m, (top, inner) in GRAPH.items() for line, n in top + inner if LAYER_OF[_part(n)] > LAYER_OF[_part(m)]]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    edges = defaultdict(set)
    for m, (top, inner) in GRAPH.items():
        edges[m] |= {n for _, n in top + inner if n != m and not m.startswith(n + ".")}  # a module may import its package
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                cycles.append(" → ".join(path[path.index(n):] + [n]))
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m, [m])
    assert cycles == []
