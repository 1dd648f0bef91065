"""conveyor_sgl: tool partial execution for SGLang programs.

Public API only. Imports are lazy (PEP 562) so that tool worker processes, which import
``conveyor_sgl.runtime``, never pay for ``sglang`` (and torch).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Abort",
    "PartialToolCalls",
    "Tool",
    "ToolOutput",
    "ToolSpec",
    "UnitWork",
    "partial_tool",
    "register_tool",
    "run_tool",
    "run_tool_calls",
    "tool_result",
]

_EXPORTS = {
    "partial_tool": "conveyor_sgl.primitives.ir",
    "tool_result": "conveyor_sgl.primitives.ir",
    "run_tool": "conveyor_sgl.runtime.run_tool",
    "Tool": "conveyor_sgl.tools.base",
    "ToolOutput": "conveyor_sgl.tools.base",
    "UnitWork": "conveyor_sgl.tools.base",
    "Abort": "conveyor_sgl.tools.base",
    "register_tool": "conveyor_sgl.tools.registry",
    "run_tool_calls": "conveyor_sgl.primitives.openai_tools",
    "ToolSpec": "conveyor_sgl.primitives.openai_tools",
    "PartialToolCalls": "conveyor_sgl.primitives.openai_tools",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor_sgl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
