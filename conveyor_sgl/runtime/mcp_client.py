"""The tools of an MCP server (Model Context Protocol, the ``mcp`` SDK) as ``FunctionTool``s.

``McpServer`` is one connection: a server we start and talk to over its stdin/stdout
(``McpServer.stdio([...command])``) or one already running that we reach over streamable
HTTP (``McpServer.http(url)``). It is a context manager: entering it starts the process (for
stdio), initializes the session and lists the tools, within ``connect_timeout_s``; leaving it
ends the session and the process we started (the SDK closes its stdin, then terminates and
kills its process tree, each wait bounded), within ``close_timeout_s``. Every wait has a
deadline; a server that does not answer in time is an ``McpError``, and is ended.

The connection lives on the ``FunctionRunner``'s event loop thread, in one task that owns
the transport and the session (the SDK's task groups must be left by the task that entered
them); calls are tasks on the same loop, so several calls to one server run at once.

``server.tool(name)`` is an ``McpTool``: its schema is the tool's ``inputSchema``, its result
the text of the content blocks it returns (``isError`` makes it an ``error`` result).

``McpServer.stdio(command, confine=True)`` starts the command under the kernel layers of our
tool executors (``sandbox/confined_command.py``: its own network namespace unless
``network=True``, Landlock, the syscall baseline, no capabilities); ``server.sandbox`` then
lists the layers that hold. Server mode starts every operator's command this way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AsyncExitStack
from typing import Any, Self, TextIO

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.function_call import (
    FunctionCallError,
    FunctionRunner,
    FunctionTool,
    blob_text,
    default_runner,
    within,
)
from conveyor_sgl.runtime.timeline import UnitTiming

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 30.0  # start, initialize, list the tools
DEFAULT_CLOSE_TIMEOUT_S = 10.0  # the SDK's own shutdown waits at most ~6 s (2 s per step)
CONFINED_LAUNCHER = "conveyor_sgl.runtime.sandbox.confined_command"
_LIST_PAGES = 100  # a server whose tool list never ends cannot hang the start


class McpError(ConveyorError, RuntimeError):
    """An MCP server that could not be started, reached or ended in time."""


class McpServer:
    """One MCP server's connection; ``tools`` are its tools once entered (or ``start()``ed)."""

    def __init__(
        self,
        *,
        command: Sequence[str] | None = None,
        url: str | None = None,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        headers: Mapping[str, str] | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S,
        call_timeout_s: float | None = None,
        errlog: TextIO | None = None,
        runner: FunctionRunner | None = None,
        confine: bool = False,
        network: bool = False,
    ) -> None:
        if (command is None) == (url is None):
            raise McpError("an MCP server is a command (stdio) or a URL (streamable HTTP)")
        if command is not None and (isinstance(command, str) or not command):
            raise McpError(f"an MCP server command is a non-empty argv list, got {command!r}")
        self.command = list(command) if command is not None else None
        self.url = url
        self.name = name or (os.path.basename(self.command[0]) if self.command else str(url))
        self.env = dict(env or {})
        self.cwd = cwd
        self.headers = dict(headers or {})
        self.connect_timeout_s = connect_timeout_s
        self.close_timeout_s = close_timeout_s
        self.call_timeout_s = call_timeout_s
        self.errlog = errlog
        self.runner = runner or default_runner()
        self.confine = confine
        self.network = network
        if url is not None and (confine or network):
            raise McpError("confine= and network= are for a command we start, not a URL")
        self.sandbox: list[str] | None = None  # the kernel layers in force (confine=True)
        self._workdir: str | None = None
        self.tools: dict[str, McpTool] = {}
        self._session: Any = None
        self._stop: asyncio.Event | None = None
        self._owner: Future[None] | None = None

    @classmethod
    def stdio(cls, command: Sequence[str], **kwargs: Any) -> McpServer:
        """A server we start (``command``: its argv) and talk to over stdin/stdout;
        ``confine=True``: under our executors' kernel layers (``network=True`` keeps the
        network)."""
        return cls(command=command, **kwargs)

    @classmethod
    def http(cls, url: str, **kwargs: Any) -> McpServer:
        """A running server reached over streamable HTTP (``url``: its endpoint, e.g.
        ``http://127.0.0.1:8000/mcp``)."""
        return cls(url=url, **kwargs)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> Self:
        """Start (stdio) or reach (HTTP) the server, initialize, list its tools."""
        if self._owner is not None:
            return self
        report = None
        if self.confine:
            report = tempfile.NamedTemporaryFile("r", prefix="conveyor-mcp-", suffix=".json")
        ready: Future[list[Any]] = Future()
        self._owner = self.runner.submit_coroutine(lambda: self._own(ready, report))
        try:
            listed = ready.result(timeout=self.connect_timeout_s)
        except FutureTimeout:
            self.close()
            raise McpError(
                f"MCP server {self.name!r} did not start and list its tools within "
                f"{self.connect_timeout_s:g}s"
            ) from None
        except Exception as e:  # noqa: BLE001 - whatever the SDK raised: an McpError
            self.close()
            raise McpError(f"MCP server {self.name!r} could not start: {_describe(e)}") from None
        finally:
            if report is not None:
                self._read_report(report.read())
                report.close()
        self.tools = {
            tool.name: McpTool(self, tool.name, tool.input_schema, tool.description)
            for tool in listed
        }
        return self

    def _read_report(self, text: str) -> None:
        try:
            facts = json.loads(text or "{}")
        except ValueError:
            facts = {}
        self.sandbox = [str(layer) for layer in facts.get("layers", [])]
        workdir = facts.get("workdir")
        if isinstance(workdir, str) and os.path.basename(workdir).startswith("conveyor-mcp-"):
            self._workdir = workdir  # its tmpfs was private to it: an empty directory here

    def tool(self, name: str, **kwargs: Any) -> McpTool:
        """The server's tool ``name`` (``timeout_s=``: its deadline per call)."""
        if self._owner is None:
            raise McpError(f"MCP server {self.name!r} is not started: use it in a with block")
        try:
            tool = self.tools[name]
        except KeyError:
            known = ", ".join(sorted(self.tools)) or "none"
            raise FunctionCallError(
                f"MCP server {self.name!r} has no tool {name!r}; its tools: {known}"
            ) from None
        timeout_s = kwargs.pop("timeout_s", None)
        if kwargs:
            raise TypeError(f"unknown arguments {sorted(kwargs)}")
        return (
            tool
            if timeout_s is None
            else McpTool(self, tool.name, tool.schema, tool.description, timeout_s=timeout_s)
        )

    def close(self) -> None:
        """End the session, and the process if we started one (idempotent, bounded)."""
        owner, self._owner = self._owner, None
        if owner is None:
            return
        loop = self.runner.loop()
        stop = self._stop
        if stop is not None and self._session is not None:
            loop.call_soon_threadsafe(stop.set)
        else:
            owner.cancel()  # still starting: cancel the start (the SDK's shutdown is shielded)
        try:
            owner.result(timeout=self.close_timeout_s)
        except FutureTimeout:
            owner.cancel()
            log.warning("MCP server %r did not close within %gs", self.name, self.close_timeout_s)
            try:
                owner.result(timeout=self.close_timeout_s)
            except BaseException:  # noqa: BLE001, S110 - cancelled: what its shutdown left is logged
                pass
        except BaseException:  # noqa: BLE001, S110 - a start that failed has reported it already
            pass
        self._session = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """One ``tools/call`` (on the runner's loop): the SDK's ``CallToolResult``."""
        session = self._session
        if session is None:
            raise McpError(f"MCP server {self.name!r} is closed")
        return await session.call_tool(name, arguments)

    async def _own(self, ready: Future[list[Any]], report: Any = None) -> None:
        """The task that holds the transport and the session, from start to close."""
        from mcp import ClientSession

        self._stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                streams = await self._transport(stack, report.name if report else None)
                session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
                await session.initialize()
                listed = await _list_tools(session)
                self._session = session
                ready.set_result(listed)
                await self._stop.wait()
        except BaseException as e:
            if not ready.done():  # start() reports it
                ready.set_exception(e if isinstance(e, Exception) else McpError(_describe(e)))
                return
            if not isinstance(e, asyncio.CancelledError):
                log.warning("MCP server %r: the connection ended: %s", self.name, _describe(e))
            raise
        finally:
            self._session = None

    async def _transport(self, stack: AsyncExitStack, report: str | None) -> Any:
        if self.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            command = self.command
            if report is not None:
                launcher = [sys.executable, "-m", CONFINED_LAUNCHER, "--report", report]
                command = [*launcher, *(["--network"] if self.network else []), "--", *command]
            params = StdioServerParameters(
                command=command[0], args=command[1:], env=self.env or None, cwd=self.cwd
            )
            return await stack.enter_async_context(
                stdio_client(params, errlog=self.errlog or sys.stderr)
            )
        from mcp.client.streamable_http import streamable_http_client

        assert self.url is not None  # noqa: S101 - a command or a URL, checked at init
        client = None
        if self.headers:
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = await stack.enter_async_context(create_mcp_http_client(headers=self.headers))
        return await stack.enter_async_context(streamable_http_client(self.url, http_client=client))

    def __repr__(self) -> str:
        where = self.url or " ".join(self.command or [])
        return f"McpServer({self.name!r}, {where!r})"


async def _list_tools(session: Any) -> list[Any]:
    from mcp_types import PaginatedRequestParams

    tools: list[Any] = []
    cursor = None
    for _ in range(_LIST_PAGES):
        params = None if cursor is None else PaginatedRequestParams(cursor=cursor)
        page = await session.list_tools(params=params)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


class McpTool(FunctionTool):
    """One tool of an ``McpServer``; its arguments are checked against its ``inputSchema``."""

    kind = "mcp"

    def __init__(
        self,
        server: McpServer,
        name: str,
        schema: Mapping[str, Any] | None,
        description: str | None = None,
        *,
        timeout_s: float | None = None,
    ) -> None:
        self.server = server
        timeout_s = server.call_timeout_s if timeout_s is None else timeout_s
        super().__init__(name, schema, description=description, timeout_s=timeout_s)

    def start(
        self, arguments: dict[str, Any], runner: FunctionRunner, timing: UnitTiming
    ) -> Future[Any]:
        server, name, timeout_s = self.server, self.name, self.timeout_s

        async def call() -> Any:
            import time

            timing.started_at = time.monotonic()
            try:
                return await within(server.call(name, arguments), timeout_s)
            finally:
                timing.finished_at = time.monotonic()

        return server.runner.submit_coroutine(call)

    def render(self, value: Any) -> tuple[str, str | None]:
        text = content_text(value)
        if getattr(value, "is_error", False):
            return "", text or f"MCP tool {self.name!r} reported an error"
        return text, None

    def __repr__(self) -> str:
        return f"McpTool({self.server.name!r}, {self.name!r})"


def content_text(result: Any) -> str:
    """The text of an MCP ``CallToolResult``: its content blocks' text, one per line (an
    image or other binary block as a placeholder), else its structured content as JSON."""
    import json

    parts = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(
                text
                if text is not None
                else blob_text(getattr(resource, "blob", ""), resource.mime_type)
            )
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        elif hasattr(block, "data"):  # image, audio
            parts.append(blob_text(block.data, getattr(block, "mime_type", None)))
    if parts:
        return "\n".join(parts)
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return json.dumps(structured, ensure_ascii=False)
    return ""


def _describe(e: BaseException) -> str:
    if isinstance(e, BaseExceptionGroup):
        e = e.exceptions[0]
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
