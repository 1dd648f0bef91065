"""Tool names -> ``"module:Class"`` targets that a worker process can import.

Only the dotted path crosses the process boundary: the worker imports the class itself, so a
tool must live at the top level of an importable module (not ``__main__``, not inside a
function). Tool modules must be cheap to import: the runtime imports them to read ``parser``.
"""

from __future__ import annotations

import importlib
import threading

from conveyor_sgl.tools.base import Tool

_BUILTINS = {
    "python": "conveyor_sgl.tools.python:PythonTool",
    "search": "conveyor_sgl.tools.search:SearchTool",
    "planner": "conveyor_sgl.tools.planner:PlannerTool",
    "validation": "conveyor_sgl.tools.validation:ValidationTool",
    "sql": "conveyor_sgl.tools.sql:SqlTool",
    "calculator": "conveyor_sgl.tools.calculator:CalculatorTool",
}

_lock = threading.Lock()
_targets: dict[str, str] = dict(_BUILTINS)


def register_tool(name: str, target: type[Tool] | str) -> None:
    """Make ``name`` usable in ``partial_tool(..., tool=name)``; re-registering replaces."""
    if not name or not isinstance(name, str):
        raise ValueError(f"tool name must be a non-empty string, got {name!r}")
    path = _target_of(target)
    with _lock:
        _targets[name] = path


def resolve_tool(name: str) -> str:
    """The ``"module:Class"`` target of a registered tool (a target string is accepted too)."""
    with _lock:
        path = _targets.get(name)
        known = sorted(_targets)
    if path is not None:
        return path
    if ":" in name:
        return _check_path(name)
    raise ValueError(f"unknown tool {name!r}; known tools: {', '.join(known)}")


def check_tool(name: str, config: dict | None = None) -> None:
    """Fail now, naming the problem, if ``name`` is not a tool or ``config`` is not valid."""
    tool_class = load_tool_class(resolve_tool(name))
    try:
        tool_class.check_config(dict(config or {}))
    except (TypeError, ValueError) as e:
        raise ValueError(f"tool {name!r}: bad config: {e}") from None


def tool_parser(name: str) -> str:
    """The name of the parser that cuts this tool's input into units."""
    return load_tool_class(resolve_tool(name)).parser


def load_tool_class(target: str) -> type[Tool]:
    """Import ``"module:Class"`` and check that it is a Tool (used by the worker too)."""
    module_name, _, qualname = _check_path(target).partition(":")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"tool target {target!r}: module {module_name} has no {qualname}")
    if not (isinstance(obj, type) and issubclass(obj, Tool)):
        raise TypeError(f"tool target {target!r} is not a subclass of conveyor_sgl Tool")
    return obj


def _target_of(target: type[Tool] | str) -> str:
    if isinstance(target, str):
        return _check_path(target)
    if not (isinstance(target, type) and issubclass(target, Tool)):
        raise TypeError(f"tool target must be a Tool subclass or 'module:Class', got {target!r}")
    if target.__module__ == "__main__" or "<locals>" in target.__qualname__:
        # The worker is a fresh interpreter: it can only import module-level classes.
        raise ValueError(
            f"tool class {target.__qualname__} must be defined at the top level of an "
            "importable module (not __main__ or a function) so the worker can import it"
        )
    return f"{target.__module__}:{target.__qualname__}"


def _check_path(path: str) -> str:
    split_import_path(path, "tool target", "module:Class")
    return path


def split_import_path(path: object, what: str, shape: str) -> tuple[str, str]:
    """``"module:name"`` -> (module, name); anything else is an error naming ``what``."""
    module_name, sep, name = path.partition(":") if isinstance(path, str) else ("", "", "")
    if not (sep and module_name and name):
        raise ValueError(f"{what} must look like {shape!r}, got {path!r}")
    return module_name, name
