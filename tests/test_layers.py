"""The package's layers: imports flow one way, from the config up to the entry points.

``config -> data -> model -> losses -> io -> runs -> training -> entry points``: a module
imports only from its own layer or those below, the entry points (the estimator, the
CLI, the figures, the reproduction runner) do not import one another, and no two modules
import each other, even through others. ``io/atomic.py`` (atomic writes) and ``compat``
(the private Lightning members used) sit with the config and the errors: layers from the
data up use them, and they need nothing of gmvae's.
Every import counts, also those inside functions (``gmvae tune`` imports the CLI lazily).
"""

from __future__ import annotations

import ast
from pathlib import Path

import gmvae

SRC = Path(gmvae.__file__).resolve().parent

# Lowest first; a module belongs to the layer of its longest matching prefix.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("gmvae.errors", "gmvae.config", "gmvae.io.atomic", "gmvae.compat"),
    ("gmvae.data",),
    ("gmvae.model",),
    ("gmvae.losses",),
    ("gmvae.io",),
    ("gmvae.runs",),
    ("gmvae.training",),
    ("gmvae.estimator", "gmvae.cli", "gmvae.figures", "gmvae.reproduce"),
)
# `python -m gmvae` is the CLI.
SAME_AS = {"gmvae.__main__": "gmvae.cli"}
ENTRY_POINTS = LAYERS[-1]
# The package root: its face, the config, the errors and the estimator, nothing else.
ROOT_FILES = {"__init__.py", "__main__.py", "config.py", "errors.py", "estimator.py"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    """The gmvae modules ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from gmvae.figures import options`: a module; `from gmvae import X`: the face
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name == "gmvae" or name.startswith("gmvae.")}


def _group(module: str) -> tuple[int, str] | None:
    """(layer, prefix) of ``module``: the longest prefix of LAYERS it falls under."""
    module = SAME_AS.get(module, module)
    matches = [
        (len(prefix), i, prefix)
        for i, layer in enumerate(LAYERS)
        for prefix in layer
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        return None
    _, layer, prefix = max(matches)
    return layer, prefix


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            # `from gmvae import GMVAEClassifier`: the module the face takes it from
            imported = gmvae._LAZY.get(imported.removeprefix("gmvae."), imported)
            # `from gmvae.x import name` adds `gmvae.x.name`: keep only real modules
            while imported not in modules and "." in imported:
                imported = imported.rsplit(".", 1)[0]
            if imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_every_module_has_a_layer():
    assert [m for m in _modules() if m != "gmvae" and _group(m) is None] == []


def test_the_root_holds_only_the_face_the_config_the_errors_and_the_estimator():
    assert {p.name for p in SRC.glob("*.py")} == ROOT_FILES


def test_imports_flow_one_way():
    wrong = []
    for module, targets in _graph().items():
        if module == "gmvae":  # the face re-exports from above, lazily
            continue
        layer, prefix = _group(module)
        for target in targets:
            if target == "gmvae":
                continue  # the face's eager part is the errors and __version__
            target_layer, target_prefix = _group(target)
            if target_layer > layer:
                wrong.append(f"{module} imports {target} (a higher layer)")
            elif layer == len(LAYERS) - 1 and target_layer == layer and target_prefix != prefix:
                wrong.append(f"{module} imports {target} (another entry point)")
    assert wrong == []


def test_the_face_imports_nothing_heavy_eagerly():
    """`import gmvae` loads the errors only; the estimator and load_model come on first use."""
    tree = ast.parse((SRC / "__init__.py").read_text())
    eager = {
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gmvae")
    }
    assert eager == {"gmvae.errors"}


def test_no_import_cycles():
    graph = _graph()
    graph.pop("gmvae")  # the face points up by design (lazily)
    for targets in graph.values():
        targets.discard("gmvae")
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_public_face():
    from gmvae import GMVAEClassifier, load_model
    from gmvae.estimator import GMVAEClassifier as estimator
    from gmvae.io.model_file import load_model as loader

    assert GMVAEClassifier is estimator and load_model is loader
    assert set(gmvae.__all__) <= set(dir(gmvae))
