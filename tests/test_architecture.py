"""The package's layering: data flows one way (audio and image in, motion, frames, video out).

Every import inside `moda`, including imports deferred into functions, must point to the same package or
to a lower layer; and modules import no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import moda

PACKAGE = Path(moda.__file__).parent

# Lowest first. Packages of one layer may not import each other, except in the foundation layer.
LAYERS = [
    {"errors", "timebase", "devices", "weights", "emotion", "configs", "shards", "hub", "logs", "distributed"},
    {"media"},
    {"audio", "face", "samples"},
    {"motion"},
    {"generator"},
    {"renderer"},
    {"pipeline"},
    {"training", "evaluation", "conformance"},
    {"app"},
    {"cli"},
    {"__main__", "__init__"},  # entry points
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Fully qualified moda modules (or packages) that `path` imports anywhere in its body."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("moda"):
                for alias in node.names:  # `from .pkg import module` names a module
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if resolve(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("moda"))
    return {f for f in found if resolve(f)} - {name}


def resolve(module: str) -> Path | None:
    relative = Path(*module.split(".")[1:])
    for candidate in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> int:
    top = top_package(module)
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"{module} belongs to no layer; add its package to LAYERS")


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_package_has_a_layer():
    for module in graph():
        layer_of(module)


def test_no_import_runs_back_up_the_layers():
    violations = []
    for module, targets in graph().items():
        for target in targets:
            same_package = top_package(module) == top_package(target)
            lower, equal = layer_of(target) < layer_of(module), layer_of(target) == layer_of(module)
            if not (same_package or lower or (equal and layer_of(module) == 0)):
                violations.append(f"{module} imports {target}")
    assert not violations, "\n".join(sorted(violations))


def test_there_are_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target, stack + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_every_package_folder_is_a_package():
    for folder in [PACKAGE, *[p for p in PACKAGE.rglob("*") if p.is_dir() and list(p.glob("*.py"))]]:
        assert (folder / "__init__.py").is_file(), f"{folder} has modules but no __init__.py"
