"""conveyor_sgl: tool partial execution for SGLang programs.

Public API only. Imports are lazy (PEP 562) so that tool worker processes, which import
``conveyor_sgl.runtime``, never pay for ``sglang`` (and torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # Writing programs
    "partial_tool": "conveyor_sgl.primitives.ir",
    "tool_result": "conveyor_sgl.primitives.ir",
    "run_tool": "conveyor_sgl.runtime.run_tool",
    "ToolResult": "conveyor_sgl.runtime.timeline",
    # The OpenAI-compatible API
    "run_tool_calls": "conveyor_sgl.primitives.openai_tools",
    "ToolSpec": "conveyor_sgl.primitives.openai_tools",
    "PartialToolCalls": "conveyor_sgl.primitives.openai_tools",
    "tool_declarations": "conveyor_sgl.primitives.openai_tools",
    # Any function, any MCP tool (a ToolSpec, a partial_tool)
    "McpServer": "conveyor_sgl.runtime.mcp_client",
    "McpTool": "conveyor_sgl.runtime.mcp_client",
    "FunctionTool": "conveyor_sgl.runtime.function_call",
    "CallableTool": "conveyor_sgl.runtime.function_call",
    # Writing tools
    "Tool": "conveyor_sgl.tools.base",
    "ToolOutput": "conveyor_sgl.tools.base",
    "UnitWork": "conveyor_sgl.tools.base",
    "Abort": "conveyor_sgl.tools.base",
    "Unit": "conveyor_sgl.parsers.base",
    "Limits": "conveyor_sgl.tools.limits",
    "register_tool": "conveyor_sgl.tools.registry",
    # Errors: all are ConveyorError
    "ConveyorError": "conveyor_sgl.errors",
    "ParseError": "conveyor_sgl.parsers.base",
    "LimitsError": "conveyor_sgl.tools.limits",
    "WorkerStartError": "conveyor_sgl.runtime.workers.process",
    "PoolBusyError": "conveyor_sgl.runtime.workers.pool",
    "EndpointError": "conveyor_sgl.primitives.endpoint",
    "ServerModeUnavailable": "conveyor_sgl.primitives.server_mode",
    "ProgramError": "conveyor_sgl.primitives.ir",
    "BackendError": "conveyor_sgl.primitives.endpoint",
    "ToolError": "conveyor_sgl.tools.registry",
    "UnknownToolError": "conveyor_sgl.tools.registry",
    "ToolConfigError": "conveyor_sgl.tools.registry",
    "ToolCallError": "conveyor_sgl.primitives.openai_tools",
    "McpError": "conveyor_sgl.runtime.mcp_client",
    "FunctionCallError": "conveyor_sgl.runtime.function_call",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor_sgl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
