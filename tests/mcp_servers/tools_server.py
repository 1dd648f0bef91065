"""A small MCP server for the tests: ``python tools_server.py`` serves over stdio,
``python tools_server.py http PORT`` over streamable HTTP at ``http://127.0.0.1:PORT/mcp``.

Tools: ``add`` (a + b), ``slow_echo`` (waits, then returns its text: overlapping calls show),
``fail`` (raises), ``probe`` (what the process may do: its capabilities, whether it can
reach a TCP port, read a file, see its network interfaces), for the confinement tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("conveyor-test-tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow_echo(text: str, seconds: float = 0.3) -> str:
    """Wait ``seconds``, then return ``text`` with when the call ran (monotonic clock)."""
    started = time.monotonic()
    await asyncio.sleep(seconds)
    return json.dumps({"text": text, "started": started, "finished": time.monotonic()})


@server.tool()
def fail(message: str = "it failed") -> str:
    """Always raises."""
    raise ValueError(message)


@server.tool()
def probe(port: int = 0, path: str = "") -> str:
    """What this process may do: its effective capabilities, a TCP connect to ``port`` on
    127.0.0.1, reading ``path``, its network interfaces."""
    facts: dict[str, object] = {"pid": os.getpid()}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("CapEff:", "NoNewPrivs:", "Seccomp:")):
                key, value = line.split(":", 1)
                facts[key] = value.strip()
    if port:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                facts["connect"] = "ok"
        except OSError as e:
            facts["connect"] = f"{type(e).__name__}: {e}"
    if path:
        try:
            with open(path, "rb") as f:
                f.read(1)
            facts["read"] = "ok"
        except OSError as e:
            facts["read"] = f"{type(e).__name__}: {e}"
    facts["interfaces"] = sorted(name for _, name in socket.if_nameindex())
    return json.dumps(facts)


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
