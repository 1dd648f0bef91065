"""The operator's MCP servers in server mode, on the session's ``flagged_server`` (launched
with ``--tool-mcp-server tools=<python tests/mcp_servers/tools_server.py>``): a program's
``partial_tool(tool="mcp/tools/<tool>")`` runs in the server, the MCP server runs confined,
and a request naming anything else is a 4xx before anything starts."""

from __future__ import annotations

import json
import os
import re
import socket
import time

import pytest
import requests
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def url(flagged_server) -> str:
    """The server, once its MCP server is up (it starts with server mode, in the background)."""
    deadline = time.monotonic() + 60
    while True:
        info = requests.get(flagged_server.url + "/conveyor/info", timeout=10).json()
        state = info["mcp_servers"]["tools"]["state"]
        if state != "starting":
            assert state == "ready", info["mcp_servers"]
            return flagged_server.url
        assert time.monotonic() < deadline, "the operator's MCP server did not start"
        time.sleep(0.2)


def _post(url: str, tool: str, **extra) -> requests.Response:
    body = {
        "tool": tool,
        "generate": {"text": "x", "sampling_params": {"max_new_tokens": 4}},
        **extra,
    }
    return requests.post(url + "/conveyor/partial_tool", json=body, timeout=60)


def test_info_names_the_servers_their_tools_and_their_confinement(url):
    info = requests.get(url + "/conveyor/info", timeout=10).json()
    tools = info["mcp_servers"]["tools"]
    assert tools["tools"] == ["add", "fail", "probe", "slow_echo"]
    assert tools["transport"] == "stdio"
    assert {"netns", "landlock", "syscalls", "caps"} <= set(tools["sandbox"])
    assert info["policy"]["mcp_servers"] == {"tools": {"transport": "stdio", "network": False}}
    assert "command" not in json.dumps(info["policy"]["mcp_servers"])  # never the command


@pytest.mark.parametrize(
    ("tool", "extra", "status", "message"),
    [
        ("mcp/evil/add", {}, 400, "unknown MCP server in 'mcp/evil/add'"),
        ("mcp/tools/rm", {}, 400, "MCP server 'tools' has no tool 'rm'"),
        ("mcp/tools", {}, 400, "unknown MCP server"),
        ("mcp/tools/add", {"config": {"command": "sh"}}, 400, "takes no config or limits"),
        ("mcp/tools/add", {"limits": {"network": True}}, 400, "takes no config or limits"),
    ],
)
def test_a_request_reaches_only_what_the_operator_named(url, tool, extra, status, message):
    answer = _post(url, tool, **extra)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]["message"]


ADD = '{"a": 2, "b": 40}'


@sgl.function
def add_program(s, tool, arguments, mode):
    s += sgl.user("Add.")
    s += sgl.assistant_begin()
    s += partial_tool("sum", tool=tool, mode=mode, max_tokens=120, regex=re.escape(arguments))
    s += " = " + tool_result("sum", timeout=60)
    s += sgl.assistant_end()


def run(backend_url: str, tool: str, arguments: str, mode: str | None = None) -> dict:
    backend = sgl.RuntimeEndpoint(backend_url)
    state = add_program.run(tool=tool, arguments=arguments, mode=mode, backend=backend)
    state.sync()
    return state.get_meta_info("sum")["tool"]


def test_a_program_calls_the_operators_mcp_tool_in_the_server(url):
    tool = run(url, "mcp/tools/add", ADD)
    assert (tool["status"], tool["output"], tool["mode"]) == ("ok", "42", "server")
    assert {"netns", "landlock", "caps"} <= set(tool["sandbox"])
    (unit,) = tool["units"]
    assert unit["text"] == ADD and unit["started_at"] >= unit["decoded_at"]
    bad = run(url, "mcp/tools/add", '{"a": "two", "b": 40}')
    assert bad["status"] == "error"
    assert "invalid argument 'a': 'two' is not of type 'integer'" in bad["error"]


def test_the_operators_mcp_server_is_confined(url, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    secret = os.path.join(os.path.expanduser("~"), f".conveyor-mcp-probe-{os.getpid()}")
    with open(secret, "w") as f:
        f.write("secret")
    try:
        port = listener.getsockname()[1]
        tool = run(url, "mcp/tools/probe", json.dumps({"port": port, "path": secret}))
    finally:
        os.unlink(secret)
        listener.close()
    assert tool["status"] == "ok", tool["error"]
    facts = json.loads(tool["output"])
    assert facts["CapEff"] == "0000000000000000"  # no capabilities, though it runs as root
    assert facts["NoNewPrivs"] == "1" and facts["Seccomp"] == "2"
    assert facts["connect"] != "ok"  # its own network namespace: nothing to reach
    assert facts["interfaces"] == ["lo"]
    assert facts["read"].startswith("PermissionError")  # Landlock: not the home directory


def test_client_mode_cannot_name_a_servers_mcp_tool():
    from conveyor_sgl import ProgramError

    with pytest.raises(ProgramError, match="runs in server mode"):
        partial_tool("x", tool="mcp/tools/add", mode="client")
    with pytest.raises(ProgramError, match="'mcp/<server>/<tool>'"):
        partial_tool("x", tool="mcp/tools")
