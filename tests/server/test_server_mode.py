"""Server mode end to end: the real CPU server launched with --tool-partial-execution.

The tests/ directory is on the server's PYTHONPATH so that it (and its tool workers) can
import the test tools by their "module:Class" targets.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
import sglang as sgl
from conftest import flush_when_idle

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced

pytestmark = pytest.mark.server

CODE = """import time
print("first")
time.sleep(0.2)
for i in range(3):
    print(i)
total = sum(range(10))
print("total", total)
"""
OUTPUT = "first\n0\n1\n2\ntotal 45\n"


@pytest.fixture(scope="module")
def flagged(flagged_server):
    return flagged_server  # the session's shared server (tests/conftest.py)


@pytest.fixture(scope="module")
def runtime(flagged):
    return sgl.RuntimeEndpoint(flagged.url)


@sgl.function
def coder(s, code_regex, mode=None, partial=True):
    s += sgl.user("Print a few things.")
    s += sgl.assistant_begin()
    s += "```python\n" + partial_tool(
        "code",
        tool="python",
        mode=mode,
        partial=partial,
        stop="```",
        max_tokens=256,
        regex=code_regex,
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=60)
    s += sgl.gen("answer", max_tokens=16, regex="The output is above\\.")
    s += sgl.assistant_end()


@sgl.function
def lines(s, tool, text, config=None, mode=None):
    s += "Lines:\n" + partial_tool(
        "lines", tool=tool, config=config, mode=mode, max_tokens=256, regex=forced(text)
    )
    s += "\nResult:\n" + tool_result("lines", timeout=60)


def _run(program, runtime, **kwargs):
    state = program.run(backend=runtime, **kwargs)
    assert state.error() is None, state.error()
    return state


@pytest.mark.timing
def test_same_program_same_text_and_output_in_both_modes(runtime):
    client = _run(coder, runtime, code_regex=forced(CODE, "```"), mode="client")
    server = _run(coder, runtime, code_regex=forced(CODE, "```"))  # auto: the server has it
    c_tool, s_tool = client.get_meta_info("code")["tool"], server.get_meta_info("code")["tool"]
    assert (c_tool["mode"], s_tool["mode"]) == ("client", "server")
    assert server.text() == client.text()
    assert server["code"] == client["code"] == CODE
    assert s_tool["output"] == c_tool["output"] == OUTPUT
    assert s_tool["status"] == "ok" and s_tool["error"] is None
    assert [u["text"] for u in s_tool["units"]] == [u["text"] for u in c_tool["units"]]
    assert set(s_tool) == set(c_tool)
    assert set(s_tool["units"][0]) == set(c_tool["units"][0])
    # One clock, seconds since the request was sent: the same ordering as client mode.
    for unit in s_tool["units"]:
        # (sent_at is taken after the send returns: a fast worker may start before it.)
        assert 0 <= unit["decoded_at"] <= unit["sent_at"], s_tool["units"]
        assert unit["decoded_at"] <= unit["started_at"] <= unit["finished_at"], s_tool["units"]
    assert s_tool["units"][0]["started_at"] < s_tool["decode_finished_at"]
    assert s_tool["decode_finished_at"] <= s_tool["result_ready_at"]


def test_server_mode_reuses_the_whole_prefix(runtime):
    flush_when_idle(runtime.base_url)
    state = _run(coder, runtime, code_regex=forced(CODE, "```"))
    code, answer = state.get_meta_info("code"), state.get_meta_info("answer")
    preceding = code["prompt_tokens"] + code["completion_tokens"]
    # The last decoded token never went through the model, so it has no KV to reuse.
    assert answer["cached_tokens"] >= preceding - 1, (answer["cached_tokens"], preceding)


def test_sequential_baseline_in_server_mode(runtime):
    tool = _run(coder, runtime, code_regex=forced(CODE, "```"), partial=False)
    tool = tool.get_meta_info("code")["tool"]
    assert tool["mode"] == "server" and tool["output"] == OUTPUT
    assert all(u["sent_at"] >= tool["decode_finished_at"] for u in tool["units"])


def test_concurrent_programs_keep_their_units_apart(runtime):
    texts = [f"{i}a\n{i}b\n{i}c\n{i}d\n" for i in range(5)]
    states = lines.run_batch(
        [{"tool": "tools_for_tests:EchoTool", "text": t} for t in texts],
        backend=runtime,
        num_threads=5,
    )
    for text, state in zip(texts, states, strict=True):
        tool = state.get_meta_info("lines")["tool"]
        assert tool["mode"] == "server"
        assert [u["text"] for u in tool["units"]] == text.splitlines(keepends=True)
        assert tool["output"] == text.upper().rstrip("\n")


def test_a_slow_tool_does_not_hold_up_another_request(runtime):
    finished: dict[str, float] = {}

    def run(name: str, delay_s: float) -> None:
        config = {"delay_s": delay_s}
        _run(lines, runtime, tool="tools_for_tests:EchoTool", text="x\ny\nz\n", config=config)
        finished[name] = time.monotonic()

    slow = threading.Thread(target=run, args=("slow", 1.5))
    slow.start()
    time.sleep(0.3)  # the slow one is decoding or already waiting for its tool
    run("fast", 0.0)
    slow.join(timeout=120)
    assert not slow.is_alive()
    assert finished["fast"] < finished["slow"]


def test_tool_abort_stops_decoding_in_the_server(runtime):
    text = "ok one\nok two\nstop here\n" + "".join(f"more {i}\n" for i in range(40))
    state = _run(lines, runtime, tool="tools_for_tests:AbortingTool", text=text)
    tool = state.get_meta_info("lines")["tool"]
    assert tool["mode"] == "server"
    assert tool["status"] == "aborted"
    assert "invalid argument: stop here" in tool["error"]
    assert [u["text"] for u in tool["units"]][:3] == ["ok one\n", "ok two\n", "stop here\n"]
    # Decoding ended soon after the bad unit, far from the 40 lines after it.
    assert "more 30" not in state["lines"]
    assert "invalid argument: stop here" in state.text()


def test_tool_errors_in_the_server_reach_the_program_as_data(runtime):
    config = {"raise_in_start": True}
    state = _run(lines, runtime, tool="tools_for_tests:RaisingTool", text="a\n", config=config)
    tool = state.get_meta_info("lines")["tool"]
    assert (tool["mode"], tool["status"]) == ("server", "error")
    assert "start failed on purpose" in tool["error"]


def test_a_bad_request_is_refused_with_its_reason(flagged):
    body = {"tool": "no_such_module:Tool", "generate": {"text": "x"}}
    res = requests.post(flagged.url + "/conveyor/partial_tool", json=body, timeout=30)
    assert res.status_code == 400
    assert "could not start" in res.json()["error"]["message"]
    res = requests.post(flagged.url + "/conveyor/partial_tool", json={"tool": "python"}, timeout=30)
    assert res.status_code == 400
    assert "missing required field `generate`" in res.json()["error"]["message"]


def test_info_names_the_tools_and_parsers(flagged):
    info = requests.get(flagged.url + "/conveyor/info", timeout=10).json()
    assert info["tool_partial_execution"] is True
    assert "python" in info["tools"] and {"python", "line", "json"} <= set(info["parsers"])
