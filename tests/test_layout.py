"""The package's layout rules (docs/design.md): no import cycle, a torch-free data model,
no private module re-exported for tests or old paths."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sklearn_cberl"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules) -> set[str]:
    """Package modules ``name`` imports, function-level imports included."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail(f"import cycle: {' -> '.join([*path, node, nxt])}")
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


@pytest.mark.parametrize(
    "module",
    ["conversation", "strategies", "_params", "paper", "exceptions", "features._text_context"],
)
def test_data_model_imports_no_torch(module):
    modules = _modules()
    tree = ast.parse(modules[f"sklearn_cberl.{module}"].read_text())
    names = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and not node.level
    }
    assert "torch" not in names


def optimiser_steps_outside_nets(tree, skorch_bases) -> list[int]:
    """Lines of ``<optimizer>.step()`` calls not inside a class deriving from a skorch net."""

    def is_step(node):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            return False
        target = ast.unparse(node.func.value).lower()
        return node.func.attr == "step" and ("optim" in target or target.endswith("opt"))

    def visit(node, in_net):
        if isinstance(node, ast.ClassDef):
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            in_net = in_net or bool(bases & skorch_bases)
        found = [node.lineno] if is_step(node) and not in_net else []
        return found + [
            line for child in ast.iter_child_nodes(node) for line in visit(child, in_net)
        ]

    return visit(tree, False)


def test_optimiser_steps_only_inside_skorch_nets():
    """One training toolkit: an optimiser step appears only in a skorch net (a NeuralNet
    subclass, the GAN's two-optimizer net included), never in a hand-written loop."""
    bases = {"NeuralNet", "NeuralNetClassifier", "TermsNet"}
    outside = {
        name: lines
        for name, path in _modules().items()
        if (lines := optimiser_steps_outside_nets(ast.parse(path.read_text()), bases))
    }
    assert outside == {}
    loop = (
        "for x in data:\n    optimizer.zero_grad()\n    loss(x).backward()\n    optimizer.step()\n"
    )
    assert optimiser_steps_outside_nets(ast.parse(loop), bases) == [4]  # the check can fail
