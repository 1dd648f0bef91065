"""The layout is a map: imports go one way between rooms, and there is no import circle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "conveyor_sgl"

# Who may import whom, by room (the longest matching prefix names a module's room). Leaves
# (cache, errors, process_group) import nothing of ours but the error root; tools see only the
# Unit their parser cuts (and the parsers themselves, for the planner's python tasks); the
# runtime never reaches up
# into the SGLang-facing primitives; the primitives use the server side only through the
# wire contract.
ROOMS = [
    "conveyor_sgl.primitives",
    "conveyor_sgl.runtime.server.protocol",
    "conveyor_sgl.runtime.server",
    "conveyor_sgl.runtime.embedded",
    "conveyor_sgl.runtime.sandbox",
    "conveyor_sgl.runtime.workers",
    "conveyor_sgl.runtime.parsers",
    "conveyor_sgl.runtime",
    "conveyor_sgl.tools",
    "conveyor_sgl.cache",
    "conveyor_sgl.errors",
    "conveyor_sgl.process_group",
    "conveyor_sgl",
]
FORBIDDEN = {
    "conveyor_sgl.tools": ("conveyor_sgl.runtime", "conveyor_sgl.primitives"),
    "conveyor_sgl.runtime": ("conveyor_sgl.primitives",),
    "conveyor_sgl.runtime.parsers": ("conveyor_sgl.runtime", "conveyor_sgl.tools"),
    "conveyor_sgl.runtime.sandbox": ("conveyor_sgl.runtime.server", "conveyor_sgl.primitives"),
    "conveyor_sgl.runtime.workers": ("conveyor_sgl.runtime.server", "conveyor_sgl.primitives"),
    "conveyor_sgl.runtime.server.protocol": ("conveyor_sgl",),
    "conveyor_sgl.primitives": ("conveyor_sgl.runtime.server",),
    "conveyor_sgl.cache": ("conveyor_sgl",),
    "conveyor_sgl.errors": ("conveyor_sgl",),
    "conveyor_sgl.process_group": ("conveyor_sgl",),
}
ALLOWED_EXCEPTIONS = {  # (room, imported prefix)
    ("conveyor_sgl.tools", "conveyor_sgl.runtime.parsers"),
    ("conveyor_sgl.runtime.parsers", "conveyor_sgl.runtime.parsers"),
    ("conveyor_sgl.primitives", "conveyor_sgl.runtime.server.protocol"),
}


# Every room may name the root of the project's errors.
ALLOWED_EXCEPTIONS |= {
    (room, "conveyor_sgl.errors") for room in ROOMS if room != "conveyor_sgl.errors"
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, name: str, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against this package
                base = ".".join([*name.split(".")[: -node.level], node.module])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {module for module in found if module.startswith("conveyor_sgl")}


def _room(module: str) -> str:
    return next(room for room in ROOMS if module == room or module.startswith(room + "."))


def test_imports_go_one_way_between_rooms():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        room = _room(name)
        for imported in _imports(path, name, top_level_only=False):
            if imported not in modules:
                continue  # a name imported from a module, e.g. conveyor_sgl.tools.base.Tool
            for forbidden_room, prefixes in FORBIDDEN.items():
                if room != forbidden_room:
                    continue
                for prefix in prefixes:
                    hit = imported == prefix or imported.startswith(prefix + ".")
                    allowed = any(
                        room == r and (imported == p or imported.startswith(p + "."))
                        for r, p in ALLOWED_EXCEPTIONS
                    )
                    if hit and not allowed and imported != name:
                        wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circle_at_module_level():
    modules = _modules()
    graph = {
        name: {m for m in _imports(path, name, top_level_only=True) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ is imported before its modules: not a circle with them.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as e:
        raise AssertionError(f"import circle: {' -> '.join(e.args[1])}") from None
