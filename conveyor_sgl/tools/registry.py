"""Tool names -> ``"module:Class"`` targets that a worker process can import, and the one
resolution of a tool (``resolve``) that everything downstream uses.

Only the dotted path crosses the process boundary: the worker imports the class itself, so a
tool must live at the top level of an importable module (not ``__main__``, not inside a
function). Tool modules must be cheap to import: the runtime imports them to read ``parser``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.tools.base import Tool

_BUILTINS = {
    "python": "conveyor_sgl.tools.python:PythonTool",
    "search": "conveyor_sgl.tools.search:SearchTool",
    "planner": "conveyor_sgl.tools.planner:PlannerTool",
    "validation": "conveyor_sgl.tools.validation:ValidationTool",
    "sql": "conveyor_sgl.tools.sql:SqlTool",
    "calculator": "conveyor_sgl.tools.calculator:CalculatorTool",
}


class ToolError(ConveyorError, ValueError):
    """A tool name, target or config that cannot be used; the message says what to change."""


class UnknownToolError(ToolError):
    """No tool is registered under that name (and it is no ``"module:Class"`` target)."""


class ToolConfigError(ToolError):
    """The tool refused its config (an unknown option, a bad value) or its ``ToolSpec``."""


class ToolTargetError(ToolError, TypeError):
    """A tool target that is no importable ``Tool`` subclass."""


_lock = threading.Lock()
_targets: dict[str, str] = dict(_BUILTINS)


def register_tool(name: str, target: type[Tool] | str) -> None:
    """Make ``name`` usable in ``partial_tool(..., tool=name)``; re-registering replaces."""
    if not name or not isinstance(name, str):
        raise ToolError(
            f"tool name must be a non-empty string, got {name!r}: "
            "e.g. register_tool('my_tool', MyTool)"
        )
    path = _target_of(target)
    with _lock:
        _targets[name] = path


@dataclass(frozen=True)
class ResolvedTool:
    """A tool resolved once, where a call is made: every later step uses this value.

    ``name`` is the registered name (the target itself for an unregistered class) and is what
    travels on the wire; ``limits_section`` is the ``tools.<name>`` section of the limits
    YAML, found from the class, so a name and a target of the same class get one limits."""

    name: str
    target: str
    cls: type[Tool]
    parser: str
    limits_section: str | None

    @property
    def registered(self) -> bool:
        return self.name != self.target

    @property
    def untrusted_code(self) -> bool:
        return bool(self.cls.untrusted_code)


def resolve(tool: str | type[Tool] | ResolvedTool) -> ResolvedTool:
    """A registered name, a ``"module:Class"`` target or a Tool class -> its one identity."""
    if isinstance(tool, ResolvedTool):
        return tool
    if isinstance(tool, str):
        target = resolve_tool(tool)
        cls = load_tool_class(target)
    else:
        target = _target_of(tool)
        cls = tool
    canonical = f"{cls.__module__}:{cls.__qualname__}"
    names = registered_names_of(target) or registered_names_of(canonical)
    if isinstance(tool, str) and tool in names:
        name = tool  # an alias keeps its own name; its limits still follow the class
    else:
        name = names[0] if names else target
    section = names[0] if names else None
    return ResolvedTool(name, target, cls, cls.parser, section)


def registered_names_of(target: str) -> list[str]:
    """The names registered for ``target`` (built-ins first); no import."""
    with _lock:
        return [name for name, path in _targets.items() if path == target]


def registered_names() -> list[str]:
    with _lock:
        return sorted(_targets)


def builtin_names() -> list[str]:
    return sorted(_BUILTINS)


def target_of_name(name: str) -> str | None:
    """The target registered under ``name``, or None; no import."""
    with _lock:
        return _targets.get(name)


def resolve_tool(name: str) -> str:
    """The ``"module:Class"`` target of a registered tool (a target string is accepted too)."""
    with _lock:
        path = _targets.get(name)
        known = sorted(_targets)
    if path is not None:
        return path
    if ":" in name:
        return _check_path(name)
    raise UnknownToolError(
        f"unknown tool {name!r}; known tools: {', '.join(known)}. Use one of these, register "
        "yours with register_tool(name, MyTool), or give its 'module:Class' target"
    )


@dataclass(frozen=True)
class CheckedTool:
    """A resolved tool and a config its class accepted: checked once, in the process that
    must trust it (the program's, or the server's admission), then carried to the session
    and the worker without a second check."""

    tool: ResolvedTool
    config: Mapping[str, Any]


def check_tool(
    tool: str | type[Tool] | ResolvedTool | CheckedTool, config: Mapping[str, Any] | None = None
) -> CheckedTool:
    """Fail now, naming the problem, if ``tool`` is not a tool or ``config`` is not valid; a
    ``CheckedTool`` is returned as it is (with no other config)."""
    if isinstance(tool, CheckedTool):
        if config is not None:
            raise ToolConfigError(f"tool {tool.tool.name!r} was checked with its config already")
        return tool
    resolved = resolve(tool)
    try:
        resolved.cls.check_config(dict(config or {}))
    except (TypeError, ValueError) as e:
        raise ToolConfigError(f"tool {resolved.name!r}: bad config: {e}") from None
    return CheckedTool(resolved, MappingProxyType(dict(config or {})))


def load_tool_class(target: str) -> type[Tool]:
    """Import ``"module:Class"`` and check that it is a Tool (used by the worker too)."""
    module_name, _, qualname = _check_path(target).partition(":")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ToolTargetError(f"tool target {target!r}: module {module_name} has no {qualname}")
    if not (isinstance(obj, type) and issubclass(obj, Tool)):
        raise ToolTargetError(
            f"tool target {target!r} is not a subclass of conveyor_sgl Tool: "
            "name a class that derives from conveyor_sgl.Tool"
        )
    return obj


def _target_of(target: type[Tool] | str) -> str:
    if isinstance(target, str):
        return _check_path(target)
    if not (isinstance(target, type) and issubclass(target, Tool)):
        raise ToolTargetError(
            f"tool target must be a Tool subclass or 'module:Class', got {target!r}"
        )
    if target.__module__ == "__main__" or "<locals>" in target.__qualname__:
        # The worker is a fresh interpreter: it can only import module-level classes.
        raise ToolTargetError(
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
        raise ToolError(f"{what} must look like {shape!r}, got {path!r}")
    return module_name, name
