"""The hostile-code corpus in client AND server mode, as model-written code arrives: through
the frontend (a forced ``@sgl.function`` program, ``mode="client"`` / ``mode="server"``),
through a raw ``POST /conveyor/partial_tool`` and the same request carried in
``/v1/completions``. Each case must be refused with the sandbox's message, whatever the path;
the escape corpus (``escape_corpus.py``, the hook switched off first) must leave no effect.

The cases that could harm the shared test server if confinement failed are bounded: one
child process (not a fork bomb), signal 0 (not SIGKILL) to the server's pid, a connect with
a deadline to a listener of this test.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import escape_corpus
import pytest
import requests
import sglang as sgl
from sse_events import sse_events, tool_result_of
from test_adversarial import CORPUS, OUTSIDE, SECRET, Case

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.server.protocol import CARRIER_PATH, PARTIAL_TOOL_PATH, carried
from programs.code_solver import forced

pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]

PATHS = ["client", "server", "raw"]
ESCAPE_PATHS = [*PATHS, "carried"]
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
def hostile(s, code, mode, max_tokens=160):
    s += "Code:\n" + partial_tool(
        "code",
        tool="python",
        mode=mode,
        stop="```",
        max_tokens=max_tokens,
        regex=forced(code, "```"),
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


def through_frontend(url: str, code: str, mode: str, max_tokens: int = 160) -> dict:
    state = hostile.run(
        code=code, mode=mode, max_tokens=max_tokens, backend=sgl.RuntimeEndpoint(url)
    )
    assert state.error() is None, state.error()
    assert state["code"] == code
    tool = state.get_meta_info("code")["tool"]
    assert tool["mode"] == mode
    return tool


def through_raw_request(url: str, code: str, max_tokens: int = 160, carry: bool = False) -> dict:
    sampling = {
        "max_new_tokens": max_tokens,
        "regex": forced(code, "```"),
        "stop": "```",
        "temperature": 0,
    }
    body = {
        "tool": "python",
        "generate": {"text": "Code:\n", "sampling_params": sampling},
        "result_timeout": 30,
    }
    route, sent = PARTIAL_TOOL_PATH, body
    if carry:
        route, sent = CARRIER_PATH, carried(PARTIAL_TOOL_PATH, body, "Code:\n", "default")
    with requests.post(url + route, json=sent, stream=True, timeout=90) as res:
        assert res.status_code == 200, res.text
        events = sse_events(res)
    return tool_result_of(events)


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


def run_escape(url: str, code: str, path: str) -> dict:
    if path in ("raw", "carried"):
        return through_raw_request(url, code, max_tokens=1500, carry=path == "carried")
    return through_frontend(url, code, path, max_tokens=1500)


@pytest.mark.parametrize("path", ESCAPE_PATHS)
def test_escapes_leave_no_effect_in_every_mode(flagged_server, listener, tmp_path, path):
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    outside = str(tmp_path / "pwned")
    code = escape_corpus.reach_outside(
        str(secret), outside, listener.getsockname()[1], flagged_server.pid
    )
    tool = run_escape(flagged_server.url, code, path)
    said = {line.split(" ", 1)[0]: line for line in tool["output"].splitlines()}
    assert SECRET not in tool["output"] and not os.path.exists(outside), tool["output"]
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()
    for name in ("READ", "WRITE", "CONNECT", "SIGNAL", "ENVIRON"):
        assert said[name].startswith(f"{name} REFUSED"), said[name]
    assert {"pidns", "landlock", "caps", "netns", "syscalls"} <= set(tool["sandbox"])
    assert flagged_server.group_pids(), "the server is gone"


@pytest.mark.parametrize("path", ESCAPE_PATHS)
def test_no_thread_or_runtime_object_to_borrow_in_every_mode(flagged_server, path):
    tool = run_escape(flagged_server.url, escape_corpus.threads_and_memory(), path)
    said = {line.split(" ", 1)[0]: line for line in tool["output"].splitlines()}
    assert said["THREADS"].endswith("'1'") and "zmq" not in said["GC"], tool["output"]
    assert said["GLOBALS"] == "GLOBALS OK []", said["GLOBALS"]
