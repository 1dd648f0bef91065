"""The MCP servers the operator named at launch (``--tool-mcp-server NAME=COMMAND|URL``), and
the one way a request reaches them: ``"mcp/<server>/<tool>"`` as its tool.

A request can never name a server, a command or a URL of its own: ``resolve`` refuses a
server the policy does not name (400, before anything starts) and a tool its server does not
list (400). The servers are started when server mode starts, each in a thread of its own so
that the launch does not wait; a request waits for its server's start (bounded). A command is
started confined (``sandbox/confined_command.py``: its own network namespace unless the
operator gave it the network, Landlock, the syscall baseline, no capabilities); where the
kernel has no Landlock, it is not started unless the operator allows unconfined tools
(``--tool-allow-unconfined``), as for the python tool. A URL is reached as it is.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from conveyor_sgl.runtime.function_call import FunctionTool
from conveyor_sgl.runtime.mcp_client import DEFAULT_CONNECT_TIMEOUT_S, McpServer
from conveyor_sgl.runtime.sandbox.layers import kernel_layers
from conveyor_sgl.runtime.server.admission import PolicyError
from conveyor_sgl.runtime.server.policy import ServerPolicy

log = logging.getLogger(__name__)

PREFIX = "mcp/"


def is_mcp_tool(tool: str) -> bool:
    return tool.startswith(PREFIX)


class _Entry:
    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.spec = spec
        self.ready = threading.Event()
        self.server: McpServer | None = None
        self.error: str | None = None
        self.layers: list[str] | None = None  # None: not started by us (a URL)


class OperatorMcpServers:
    """The operator's MCP servers: started with server mode, ended with it."""

    def __init__(
        self, policy: ServerPolicy, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    ) -> None:
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self._entries = {
            name: _Entry(name, dict(spec)) for name, spec in policy.mcp_servers.items()
        }
        self._closed = False
        self._lock = threading.Lock()

    def start_all(self) -> None:
        for entry in self._entries.values():
            threading.Thread(
                target=self._start, args=(entry,), name=f"conveyor-mcp-{entry.name}", daemon=True
            ).start()

    def resolve(self, tool: str) -> tuple[FunctionTool, list[str] | None]:
        """The function ``"mcp/<server>/<tool>"`` names, and the kernel layers its server runs
        under (None: a URL, not ours); a ``PolicyError`` where the policy does not allow it."""
        server_name, _, name = tool[len(PREFIX) :].partition("/")
        entry = self._entries.get(server_name)
        if entry is None or not name:
            known = ", ".join(sorted(self._entries)) or "none"
            raise PolicyError(
                f"policy: unknown MCP server in {tool!r} (a tool of an MCP server is "
                f"'mcp/<server>/<tool>'); this server's MCP servers: {known} "
                "(--tool-mcp-server)",
                400,
                "unknown_mcp_server",
            )
        if not entry.ready.wait(self.connect_timeout_s + 5) or entry.server is None:
            raise PolicyError(
                f"MCP server {server_name!r} is not available: {entry.error or 'still starting'}",
                503,
                "mcp_unavailable",
            )
        tools = entry.server.tools
        if name not in tools:
            raise PolicyError(
                f"MCP server {server_name!r} has no tool {name!r}; its tools: "
                f"{', '.join(sorted(tools)) or 'none'}",
                400,
                "unknown_mcp_tool",
            )
        return tools[name], entry.layers

    def describe(self) -> dict[str, Any]:
        """For ``/conveyor/info``: each server's state, tools and confinement."""
        out = {}
        for name, entry in self._entries.items():
            state = "ready" if entry.server is not None else "failed" if entry.error else "starting"
            out[name] = {
                "state": state,
                "transport": "stdio" if "command" in entry.spec else "http",
                "tools": sorted(entry.server.tools) if entry.server is not None else [],
                "sandbox": entry.layers,
                "error": entry.error,
            }
        return out

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
        for entry in self._entries.values():
            server, entry.server = entry.server, None
            if server is not None:
                server.close()

    def _start(self, entry: _Entry) -> None:
        try:
            server = self._connect(entry)
        except Exception as e:  # noqa: BLE001 - reported to every request for it, and logged
            entry.error = str(e)
            log.warning("MCP server %r did not start: %s", entry.name, e)
        else:
            with self._lock:
                closed = self._closed
                if not closed:
                    entry.server = server
            if closed:
                server.close()
            else:
                log.info(
                    "MCP server %r: tools %s; sandbox %s",
                    entry.name,
                    ", ".join(sorted(server.tools)),
                    entry.layers,
                )
        finally:
            entry.ready.set()

    def _connect(self, entry: _Entry) -> McpServer:
        spec = entry.spec
        if "url" in spec:
            return McpServer.http(
                spec["url"], name=entry.name, connect_timeout_s=self.connect_timeout_s
            ).start()
        command = list(spec["command"])
        if "landlock" not in kernel_layers() and not self.policy.allow_unconfined:
            raise RuntimeError(
                "this host lacks the landlock layer to confine it; the operator may run it "
                "unconfined with --tool-allow-unconfined"
            )
        server = McpServer.stdio(
            command,
            name=entry.name,
            connect_timeout_s=self.connect_timeout_s,
            confine=True,
            network=bool(spec.get("network")),
        ).start()
        entry.layers = server.sandbox
        return server
