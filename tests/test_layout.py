"""The layout is a map: imports go one way between rooms, and there is no import circle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "conveyor_sgl"

# Who may import whom, by room (the longest matching prefix names a module's room): each room
# and the rooms it may import, nothing else. Leaves (errors, cache, process_group, parsers)
# import nothing of ours but the error root; tools see the parsers (the Unit they cut) and no
# runtime; the wire contract (protocol) imports nothing of ours, and the primitives reach the
# server side only through it; the runtime never reaches up into the primitives.
LEAVES = {"conveyor_sgl.errors": set(), "conveyor_sgl.cache": set()}
LEAVES |= {
    "conveyor_sgl.process_group": {"conveyor_sgl.errors"},
    "conveyor_sgl.parsers": {"conveyor_sgl.errors"},
}
TOOLS = {"conveyor_sgl.tools": {*LEAVES}}
SANDBOX = {"conveyor_sgl.runtime.sandbox": {"conveyor_sgl.errors", "conveyor_sgl.tools"}}
WORKERS = {"conveyor_sgl.runtime.workers": {*LEAVES, *TOOLS, *SANDBOX}}
RUNTIME = {"conveyor_sgl.runtime": {*LEAVES, *TOOLS, *SANDBOX, *WORKERS}}
PROTOCOL = {"conveyor_sgl.runtime.server.protocol": set()}
SERVER = {"conveyor_sgl.runtime.server": {*LEAVES, *TOOLS, *SANDBOX, *WORKERS, *RUNTIME, *PROTOCOL}}
EMBEDDED = {"conveyor_sgl.runtime.embedded": {*LEAVES, *SANDBOX, *WORKERS, *SERVER, *PROTOCOL}}
PRIMITIVES = {"conveyor_sgl.primitives": {*LEAVES, *TOOLS, *RUNTIME, *PROTOCOL}}
MAY_IMPORT: dict[str, set[str]] = {
    **LEAVES, **TOOLS, **SANDBOX, **WORKERS, **RUNTIME, **PROTOCOL, **SERVER, **EMBEDDED,
    **PRIMITIVES,
}  # fmt: skip
MAY_IMPORT["conveyor_sgl"] = set(MAY_IMPORT)  # the package's public names, from anywhere
ROOMS = sorted(MAY_IMPORT, key=len, reverse=True)  # longest prefix first


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
            other = _room(imported)
            if other != room and other not in MAY_IMPORT[room]:
                wrong.append(f"{name} imports {imported} ({room} may not import {other})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circle_even_inside_functions():
    """No two modules import each other, at the top or inside a function (a function-level
    import that closes a circle is the same knot, tied later)."""
    modules = _modules()
    graph = {
        name: {m for m in _imports(path, name, top_level_only=False) if m in modules and m != name}
        for name, path in modules.items()
    }
    for name in graph:  # a package's __init__ is imported before its modules: not a circle
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as e:
        raise AssertionError(f"import circle: {' -> '.join(e.args[1])}") from None


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
