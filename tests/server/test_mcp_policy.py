"""The operator's MCP servers in the policy: flags, YAML, what /conveyor/info says, and the
refusals a request meets (unknown server or tool) before anything starts."""

from __future__ import annotations

import argparse
import sys

import pytest
from mcp_servers.fixtures import STDIO_COMMAND

from conveyor_sgl.runtime.server.admission import PolicyError
from conveyor_sgl.runtime.server.cli_flags import add_server_mode_flags, apply_parsed
from conveyor_sgl.runtime.server.mcp_servers import OperatorMcpServers
from conveyor_sgl.runtime.server.policy import (
    POLICY_ENV,
    PolicyConfigError,
    ServerPolicy,
    load_policy,
)

pytestmark = pytest.mark.timeout(120)


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_mode_flags(parser)
    return parser.parse_args(argv)


def test_flags_name_mcp_servers_by_command_or_url():
    environ: dict[str, str] = {}
    args = parsed(
        "--tool-mcp-server", "files=python /srv/files_server.py --root /srv/data",
        "--tool-mcp-server", "search=http://127.0.0.1:8000/mcp",
        "--tool-mcp-server", "web=node /srv/web.js",
        "--tool-mcp-network", "web",
    )  # fmt: skip
    apply_parsed(args, environ)
    policy = ServerPolicy.from_json(environ[POLICY_ENV])
    assert policy.mcp_servers == {
        "files": {
            "command": ["python", "/srv/files_server.py", "--root", "/srv/data"],
            "network": False,
        },
        "search": {"url": "http://127.0.0.1:8000/mcp"},
        "web": {"command": ["node", "/srv/web.js"], "network": True},
    }
    # /conveyor/info says names and transports, never the commands.
    assert policy.describe()["mcp_servers"] == {
        "files": {"transport": "stdio", "network": False},
        "search": {"transport": "http", "network": None},
        "web": {"transport": "stdio", "network": True},
    }


def test_a_policy_file_names_mcp_servers(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("mcp_servers:\n  a: {command: [python, /x.py]}\n  b: {url: 'https://h/mcp'}\n")
    policy = load_policy(path, mcp_servers={"c": "python /y.py"})
    assert sorted(policy.mcp_servers) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ({"bad name": "python x.py"}, "use letters, digits"),
        ({"a": {"network": False}}, "give a command or a url"),
        ({"a": {"command": []}}, "command must be an argv list"),
        ({"a": {"url": "ftp://h/"}}, "must be http"),
        ({"a": {"url": "http://h/", "network": True}}, "network is for a command"),
        ({"a": {"command": "x", "shell": True}}, "expected command or url"),
    ],
)
def test_bad_mcp_servers_fail_at_launch(servers, message):
    with pytest.raises(PolicyConfigError, match=message):
        ServerPolicy(mcp_servers=servers)


def test_network_only_for_a_named_command(capsys):
    with pytest.raises(SystemExit):
        apply_parsed(parsed("--tool-mcp-network", "nope"), {})
    assert "no MCP server of that name is a command" in capsys.readouterr().err


@pytest.fixture(scope="module")
def operator_servers():
    policy = ServerPolicy(mcp_servers={"tools": {"command": STDIO_COMMAND}})
    servers = OperatorMcpServers(policy)
    servers.start_all()
    yield servers
    servers.shutdown()


def test_requests_reach_only_the_operators_servers_and_their_tools(operator_servers):
    function, layers = operator_servers.resolve("mcp/tools/add")
    assert function.name == "add" and function.schema["required"] == ["a", "b"]
    assert "netns" in layers and "landlock" in layers and "caps" in layers
    for tool, status, rule, message in [
        ("mcp/other/add", 400, "unknown_mcp_server", "unknown MCP server in 'mcp/other/add'"),
        ("mcp/tools", 400, "unknown_mcp_server", "this server's MCP servers: tools"),
        ("mcp/tools/rm_rf", 400, "unknown_mcp_tool", "has no tool 'rm_rf'; its tools: add"),
    ]:
        with pytest.raises(PolicyError, match=message) as caught:
            operator_servers.resolve(tool)
        assert (caught.value.status, caught.value.rule) == (status, rule)
    described = operator_servers.describe()["tools"]
    assert described["state"] == "ready" and described["tools"] == [
        "add",
        "fail",
        "probe",
        "slow_echo",
    ]


def test_a_server_that_cannot_start_is_a_503_for_its_requests():
    policy = ServerPolicy(mcp_servers={"broken": {"command": [sys.executable, "-c", "pass"]}})
    servers = OperatorMcpServers(policy, connect_timeout_s=10)
    servers.start_all()
    try:
        with pytest.raises(PolicyError, match="MCP server 'broken' is not available") as caught:
            servers.resolve("mcp/broken/x")
        assert caught.value.status == 503
        assert servers.describe()["broken"]["state"] == "failed"
    finally:
        servers.shutdown()


def test_an_operators_server_over_streamable_http():
    from mcp_servers.fixtures import http_server

    with http_server() as url:
        servers = OperatorMcpServers(ServerPolicy(mcp_servers={"remote": {"url": url}}))
        servers.start_all()
        try:
            function, layers = servers.resolve("mcp/remote/add")
            assert function.name == "add" and layers is None  # not ours to confine
            assert servers.describe()["remote"]["transport"] == "http"
        finally:
            servers.shutdown()
