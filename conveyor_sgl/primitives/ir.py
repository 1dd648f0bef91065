"""IR nodes and constructors for the two frontend primitives.

``partial_tool`` is an ``SglGen`` subclass, so SGLang's interpreter gives it variables,
streaming events and tracing for free; only its execution differs (see ``executor.py``).
``tool_result`` is a plain ``SglExpr``: the tracer records it as a node, the executor hook
runs it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from sglang.lang import api as sgl_api
from sglang.lang.ir import SglExpr, SglGen, SglSamplingParams

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.function_call import FunctionCallError, FunctionTool, as_function_tool
from conveyor_sgl.tools.base import Tool
from conveyor_sgl.tools.registry import CheckedTool, check_tool

# A tool of an MCP server the server's operator named at launch: "mcp/<server>/<tool>",
# resolved by the server only (server mode).
SERVER_MCP_PREFIX = "mcp/"

# The keyword arguments of ``sgl.gen`` (after its name), which ``partial_tool`` passes on.
_GEN_ARGUMENTS = frozenset(inspect.signature(sgl_api.gen).parameters) - {"name"}


class ProgramError(ConveyorError, ValueError):
    """A program that cannot run as written: a primitive given a bad argument, or a
    ``tool_result`` without its ``partial_tool``. Raised before the program sends anything
    to the server wherever that can be known (``program_check``)."""


class ProgramArgumentError(ProgramError, TypeError):
    """An argument ``partial_tool`` does not take (``sgl.gen`` raises TypeError for it)."""


class SglPartialTool(SglGen):
    """A generation whose finished units run in a tool while it is still decoding."""

    def __init__(
        self,
        name: str,
        checked: CheckedTool | None,
        sampling_params: SglSamplingParams,
        *,
        partial: bool,
        mode: str | None = None,
        function: FunctionTool | None = None,
        server_tool: str | None = None,
    ):
        super().__init__(name)
        self.sampling_params = sampling_params
        self.checked = checked  # resolved and checked once, here: the session takes it as is
        self.resolved = checked.tool if checked is not None else None  # what the wire names
        # A function (a callable, an MCP tool) called when its JSON arguments close: client
        # mode. A server's MCP tool ("mcp/<server>/<tool>"): server mode.
        self.function = function
        self.server_tool = server_tool
        if checked is not None:
            self.tool = checked.tool.name
        else:
            self.tool = function.name if function is not None else str(server_tool)
        self.partial = partial
        self.config = dict(checked.config) if checked is not None else {}
        self.mode = mode  # None: server mode where the server has it; "client" / "server"

    def __repr__(self) -> str:
        return f"PartialTool('{self.name}', tool='{self.tool}')"


class SglToolResult(SglExpr):
    """Waits for the tool fed by ``partial_tool(name)`` and appends its output."""

    def __init__(self, name: str, timeout: float | None):
        super().__init__()
        self.name = name
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ToolResult('{self.name}')"


def tool_event_key(name: str) -> str:
    """The executor's ``variable_event`` key for ``tool_result(name)``: never a variable name."""
    return f"\x00tool_result:{name}"


def partial_tool(
    name: str,
    tool: str | type[Tool] | Callable[..., Any] | FunctionTool,
    *,
    partial: bool = True,
    config: dict[str, Any] | None = None,
    mode: str | None = None,
    **gen_args: Any,
) -> SglPartialTool:
    """Generate ``name`` like ``sgl.gen`` and feed every finished unit of it to ``tool``.

    ``gen_args`` are exactly ``sgl.gen``'s (``stop``, ``max_tokens``, ``regex``, ...).
    ``partial=False`` is the sequential baseline: the tool gets everything once decoding ends.
    ``config`` is passed to the tool's ``start``. ``mode`` says where the parser and the
    tool session run: ``None`` in the server if it was launched with
    ``--tool-partial-execution`` (asked once per backend), else here; ``"client"`` always
    here; ``"server"`` in the server or an error.

    ``tool`` may also be a function: a Python callable or an MCP tool (``McpServer``), whose
    JSON arguments the generation writes; the call starts the moment they close, checked
    against its schema first (client mode). ``"mcp/<server>/<tool>"`` names a tool of an MCP
    server the server's operator launched it with (server mode).
    """
    if not isinstance(name, str) or not name:
        raise ProgramError("partial_tool needs a variable name, e.g. partial_tool('code', ...)")
    if "choices" in gen_args:
        raise ProgramError(
            "partial_tool does not take 'choices': a selection feeds no tool (use sgl.gen)"
        )
    unknown = sorted(set(gen_args) - _GEN_ARGUMENTS)
    if unknown:
        raise ProgramArgumentError(
            f"partial_tool({name!r}) got unknown argument(s) {unknown}; it takes sgl.gen's: "
            + ", ".join(sorted(_GEN_ARGUMENTS - {"choices", "choices_method"}))
        )
    # An unknown tool or a bad option fails when the program is built, not mid-decode.
    if mode not in (None, "client", "server"):
        raise ProgramError(f"partial_tool mode must be None, 'client' or 'server', got {mode!r}")
    # sgl.gen validates and packs the sampling arguments; we reuse its work verbatim.
    plain_gen = sgl_api.gen(name, **gen_args)
    params = plain_gen.sampling_params
    if isinstance(tool, str) and tool.startswith(SERVER_MCP_PREFIX):
        if mode == "client" or config:
            raise ProgramError(
                f"partial_tool({name!r}): {tool!r} is a tool of the server's own MCP servers: it "
                "runs in server mode and takes no config (in client mode, give an McpServer's "
                "tool: McpServer.stdio([...]).tool('name'))"
            )
        _server_mcp_parts(tool)
        return SglPartialTool(name, None, params, partial=partial, mode="server", server_tool=tool)
    if isinstance(tool, FunctionTool) or (
        callable(tool) and not (isinstance(tool, type) and issubclass(tool, Tool))
    ):
        if mode == "server" or config:
            raise ProgramError(
                f"partial_tool({name!r}): a function runs in this process (client mode) and "
                "takes no config; its schema and deadline go with it (CallableTool(fn, "
                "schema=..., timeout_s=...)); a server-side MCP tool is 'mcp/<server>/<tool>'"
            )
        try:
            function = as_function_tool(tool)
        except FunctionCallError as e:
            raise ProgramError(f"partial_tool({name!r}): {e}") from None
        return SglPartialTool(name, None, params, partial=partial, mode="client", function=function)
    checked = check_tool(tool, config)  # type: ignore[arg-type]
    return SglPartialTool(name, checked, params, partial=partial, mode=mode)


def _server_mcp_parts(tool: str) -> tuple[str, str]:
    server, _, name = tool[len(SERVER_MCP_PREFIX) :].partition("/")
    if not server or not name:
        raise ProgramError(f"a server's MCP tool is 'mcp/<server>/<tool>', got {tool!r}")
    return server, name


def tool_result(name: str, timeout: float | None = None) -> SglToolResult:
    """Wait (at most ``timeout`` seconds) for tool ``name`` and append its output."""
    if timeout is not None and timeout <= 0:
        raise ProgramError(f"tool_result timeout must be positive (seconds), got {timeout}")
    return SglToolResult(name, timeout)
