"""Programs against `sgl.Runtime(...)`: SGLang serves HTTP from a child process it spawns.

Client mode works against any Runtime; server mode when it was asked for, through
`start_runtime(tool_partial_execution=True)` (the environment variables around `sgl.Runtime`).
The plain runtime is started once for the module and shut down at its end; the one in server
mode is the session's (tests/conftest.py); none of their processes may outlive them.
"""

from __future__ import annotations

import os
import time

import pytest
import requests
import sglang as sgl
from conftest import RUNTIME_ARGS, shutdown_runtime

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.embedded.sgl_runtime import (
    runtime_kwargs,
    scoped_environ,
    server_mode_env,
    start_runtime,
)
from conveyor_sgl.runtime.server.plugin import ENABLE_ENV
from conveyor_sgl.runtime.server.policy import POLICY_ENV, ServerPolicy
from conveyor_sgl.runtime.server.protocol import SERVER_TIME_KEY
from programs.code_solver import forced

CODE = "x = 6 * 7\nprint(x)\n"


def test_runtime_kwargs_add_the_launchers_defaults_and_keep_the_callers():
    kwargs = runtime_kwargs(model_path="/m", max_total_tokens=4096)
    assert kwargs["model_path"] == "/m" and kwargs["max_total_tokens"] == 4096
    if kwargs.get("device") == "cpu":  # a host without a GPU: the CPU engine, as the launcher
        assert kwargs["attention_backend"] == "torch_native" and kwargs["sleep_on_idle"] is True
        assert os.environ["SGLANG_USE_CPU_ENGINE"] == "1"


def test_server_mode_env_is_scoped():
    env = server_mode_env(True, ServerPolicy(tools=("python",)))
    assert env[ENABLE_ENV] == "1"
    assert ServerPolicy.from_json(env[POLICY_ENV]).allowed_tools() == ("python",)
    assert server_mode_env(False) == {ENABLE_ENV: "0"} and server_mode_env(None) == {}
    before = os.environ.get(ENABLE_ENV)
    with scoped_environ(env):
        assert os.environ[ENABLE_ENV] == "1"
    assert os.environ.get(ENABLE_ENV) == before


@sgl.function
def coder(s, code_regex, mode=None):
    s += "Code:\n```python\n" + partial_tool(
        "code", tool="python", mode=mode, stop="```", max_tokens=64, regex=code_regex
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=60)


@pytest.fixture(scope="module", params=["client", "server"])
def runtime(request):
    """One sgl.Runtime per mode: plain (client mode only, started here), or asked for server
    mode (the session's ``runtime_server``, which the router tests share)."""
    if request.param == "server":
        yield "server", request.getfixturevalue("runtime_server")
        return
    request.getfixturevalue("spawn_helpers_end")  # ended after this runtime
    rt = start_runtime(tool_partial_execution=False, launch_timeout=240, **RUNTIME_ARGS)
    try:
        yield "client", rt
    finally:
        shutdown_runtime(rt)


@pytest.mark.server
def test_conveyor_info_only_where_server_mode_was_asked_for(runtime):
    mode, rt = runtime
    res = requests.get(rt.url + "/conveyor/info", timeout=10)
    body = {"text": "hi", "sampling_params": {"max_new_tokens": 2}}
    meta = requests.post(rt.url + "/generate", json=body, timeout=60).json()["meta_info"]
    # The plugin stamps the HTTP process's time on each output only in server mode.
    assert (SERVER_TIME_KEY in meta) == (mode == "server")
    if mode == "client":  # a plain server: none of our routes
        assert res.status_code == 404
        tool = requests.post(rt.url + "/conveyor/partial_tool", json={}, timeout=10)
        assert tool.status_code == 404
        return
    assert res.status_code == 200, res.text
    info = res.json()
    assert info["tool_partial_execution"] is True and "python" in info["tools"]
    assert os.environ.get(ENABLE_ENV) != "1"  # asked for around this runtime only


@pytest.mark.server
def test_a_program_runs_against_sgl_runtime(runtime):
    mode, rt = runtime
    t0 = time.monotonic()
    state = coder.run(code_regex=forced(CODE, "```"), backend=rt)  # auto: what the server has
    assert state.error() is None, state.error()
    tool = state.get_meta_info("code")["tool"]
    assert (tool["mode"], tool["output"], tool["status"]) == (mode, "42\n", "ok")
    assert state["code"] == CODE and time.monotonic() - t0 < 120


@pytest.mark.server
def test_forced_modes_against_sgl_runtime(runtime):
    mode, rt = runtime
    state = coder.run(code_regex=forced(CODE, "```"), mode="client", backend=rt)
    assert state.error() is None and state.get_meta_info("code")["tool"]["mode"] == "client"
    state = coder.run(code_regex=forced(CODE, "```"), mode="server", backend=rt)
    if mode == "server":
        assert state.error() is None, state.error()
        assert state.get_meta_info("code")["tool"]["output"] == "42\n"
    else:  # a plain runtime refuses server mode with a message that says how to get it
        assert "--tool-partial-execution" in str(state.error())
