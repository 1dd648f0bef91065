"""The hostile-code corpus in client AND server mode, as model-written code arrives: through
the frontend (a forced ``@sgl.function`` program, ``mode="client"`` / ``mode="server"``) and
through a raw ``POST /conveyor/partial_tool``. Each case must be refused with the sandbox's
message, whatever the path.

The cases that could harm the shared test server if confinement failed are bounded: one
child process (not a fork bomb), signal 0 (not SIGKILL) to the server's pid, a connect with
a deadline to a listener of this test.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest
import requests
import sglang as sgl
from test_adversarial import CORPUS, OUTSIDE, SECRET, Case

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced

pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]

PATHS = ["client", "server", "raw"]
LISTENER_PORT_KEY = "{port}"
SERVER_PID_KEY = "{server_pid}"
HOSTILE = {
    "connect_to_a_listener": Case(
        "import socket\ns = socket.socket()\ns.settimeout(2)\n"
        f"s.connect(('127.0.0.1', {LISTENER_PORT_KEY}))\nprint('CONNECTED')\n",
        "error",
        ("sandbox: opening a network socket",),
    ),
    "write_outside_the_workdir": CORPUS["writing_outside_the_workdir"],
    "start_a_process": Case(
        "import subprocess\nsubprocess.run(['true'])\nprint('SPAWNED')\n",
        "error",
        ("sandbox: starting a process",),
    ),
    "read_another_process_environ": CORPUS["reading_the_environment_for_secrets"],
    "signal_the_server": Case(
        f"import os\nos.kill({SERVER_PID_KEY}, 0)\nprint('SIGNALLED')\n",
        "error",
        ("sandbox: sending a signal to pid",),
    ),
}


@sgl.function
def hostile(s, code, mode):
    s += "Code:\n" + partial_tool(
        "code", tool="python", mode=mode, stop="```", max_tokens=160, regex=forced(code, "```")
    )
    s += tool_result("code", timeout=30)


@pytest.fixture(name="listener", scope="module")
def _listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture(name="clean_outside", autouse=True)
def _clean_outside() -> Iterator[None]:
    yield
    if os.path.exists(OUTSIDE):  # a confinement that failed wrote it: gone for the next case
        os.unlink(OUTSIDE)


def code_of(case: Case, listener: socket.socket, server_pid: int) -> str:
    assert isinstance(case.code, str)
    port = str(listener.getsockname()[1])
    return case.code.replace(LISTENER_PORT_KEY, port).replace(SERVER_PID_KEY, str(server_pid))


def through_frontend(url: str, code: str, mode: str) -> dict:
    state = hostile.run(code=code, mode=mode, backend=sgl.RuntimeEndpoint(url))
    assert state.error() is None, state.error()
    assert state["code"] == code
    tool = state.get_meta_info("code")["tool"]
    assert tool["mode"] == mode
    return tool


def through_raw_request(url: str, code: str) -> dict:
    sampling = {
        "max_new_tokens": 160,
        "regex": forced(code, "```"),
        "stop": "```",
        "temperature": 0,
    }
    body = {
        "tool": "python",
        "generate": {"text": "Code:\n", "sampling_params": sampling},
        "result_timeout": 30,
    }
    with requests.post(url + "/conveyor/partial_tool", json=body, stream=True, timeout=60) as res:
        assert res.status_code == 200, res.text
        events = [
            json.loads(line[5:])
            for line in res.iter_lines()
            if line.startswith(b"data:") and line[5:].strip() != b"[DONE]"
        ]
    results = [e["tool"] for e in events if e.get("conveyor") == "result"]
    assert len(results) == 1, events[-3:]
    return results[0]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_code_is_refused_in_both_modes(flagged_server, listener, name, path):
    case = HOSTILE[name]
    code = code_of(case, listener, flagged_server.pid)
    if path == "raw":
        tool = through_raw_request(flagged_server.url, code)
    else:
        tool = through_frontend(flagged_server.url, code, path)
    assert tool["status"] == case.status, (tool["error"], tool["output"][-2000:])
    assert any(s in (tool["error"] or "") for s in case.says), tool["error"]
    for escaped in ("CONNECTED", "SPAWNED", "SIGNALLED", SECRET):
        assert escaped not in tool["output"], tool["output"]
    assert not os.path.exists(OUTSIDE)
    assert flagged_server.group_pids(), "the server is gone"
