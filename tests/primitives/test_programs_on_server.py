"""Partial-tool programs end to end on the real SGLang server (CPU, embedded model)."""

from __future__ import annotations

import re

import pytest
import sglang as sgl
from conftest import flush_when_idle

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import REFERENCE_CODE, TASK, forced, solve

pytestmark = pytest.mark.server

SLOW_CODE = """import time
print("first")
time.sleep(0.3)
for i in range(3):
    print(i)
else:
    print("loop done")
total = sum(range(10))
print("total", total)
"""


@sgl.function
def slow_solver(s, code_regex, partial=True):
    # Client mode, named: the shared test server also offers server mode (tests/conftest.py).
    s += sgl.user("Print a few things.")
    s += sgl.assistant_begin()
    s += "```python\n" + partial_tool(
        "code",
        tool="python",
        partial=partial,
        mode="client",
        stop="```",
        max_tokens=512,
        regex=code_regex,
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=60)
    s += sgl.gen("answer", max_tokens=16, regex="The output is above\\.")
    s += sgl.assistant_end()


def _run(backend, **kwargs):
    state = slow_solver.run(code_regex=forced(SLOW_CODE, "```"), backend=backend, **kwargs)
    assert state.error() is None, state.error()
    return state


@pytest.mark.timing
def test_forced_code_runs_while_decoding_and_result_is_appended(backend):
    state = _run(backend)
    assert state["code"] == SLOW_CODE
    tool = state.get_meta_info("code")["tool"]
    assert tool["status"] == "ok" and tool["mode"] == "client" and tool["error"] is None
    assert tool["output"] == "first\n0\n1\n2\nloop done\ntotal 45\n"
    assert "```\nOutput:\n" + tool["output"] + "The output is above." in state.text()
    units = tool["units"]
    assert [u["text"].split("\n")[0] for u in units] == [
        "import time",
        'print("first")',
        "time.sleep(0.3)",
        "for i in range(3):",
        "total = sum(range(10))",
        'print("total", total)',
    ]
    # The first statement was executing before decoding ended: the point of it all.
    assert units[0]["started_at"] < tool["decode_finished_at"]
    for unit in units:
        assert unit["decoded_at"] <= unit["sent_at"] <= unit["started_at"] <= unit["finished_at"]
    assert tool["decode_finished_at"] <= tool["result_ready_at"]


def test_stock_meta_info_is_kept(backend):
    meta = _run(backend).get_meta_info("code")
    for field in ("prompt_tokens", "completion_tokens", "cached_tokens", "finish_reason"):
        assert field in meta


def test_generation_after_tool_result_reuses_the_whole_prefix(backend):
    flush_when_idle(backend.base_url)
    state = _run(backend)
    code, answer = state.get_meta_info("code"), state.get_meta_info("answer")
    # Everything before the tool output (the prompt and the generated code) was computed
    # once already; the tool output itself is new to the server.
    preceding = code["prompt_tokens"] + code["completion_tokens"]
    assert answer["cached_tokens"] >= 0.95 * preceding, (answer, preceding)


def test_sequential_baseline_sends_everything_after_decoding(backend):
    tool = _run(backend, partial=False).get_meta_info("code")["tool"]
    assert tool["output"] == "first\n0\n1\n2\nloop done\ntotal 45\n"
    assert all(u["sent_at"] >= tool["decode_finished_at"] for u in tool["units"])


def test_streaming_text_iter(backend):
    state = slow_solver.run(code_regex=forced(SLOW_CODE, "```"), backend=backend, stream=True)
    pieces = list(state.text_iter())
    assert len(pieces) > 5
    assert "".join(pieces) == state.text()
    assert "total 45" in state.text()


def test_streaming_one_variable(backend):
    state = slow_solver.run(code_regex=forced(SLOW_CODE, "```"), backend=backend, stream=True)
    code_pieces = list(state.text_iter("code"))
    assert len(code_pieces) > 5
    assert "".join(code_pieces) == SLOW_CODE
    assert state.get_meta_info("code")["tool"]["output"].endswith("total 45\n")


def test_run_batch_keeps_sessions_apart(backend):
    codes = [f"x = {i}\nprint('value', x * 10)\n" for i in range(4)]
    states = slow_solver.run_batch(
        [{"code_regex": forced(code, "```")} for code in codes], backend=backend
    )
    for i, state in enumerate(states):
        assert state.get_meta_info("code")["tool"]["output"] == f"value {i * 10}\n"


def test_tool_errors_reach_the_program_as_data(backend):
    code = "print('before')\n1 / 0\nprint('never')\n"
    state = slow_solver.run(code_regex=forced(code, "```"), backend=backend)
    tool = state.get_meta_info("code")["tool"]
    assert tool["status"] == "error"
    assert "ZeroDivisionError: division by zero" in tool["error"]
    assert "never" not in tool["output"]
    assert "ZeroDivisionError" in state.text()


@sgl.function
def plain(s, regex):
    s += sgl.user("Say something.")
    s += sgl.assistant_begin()
    s += sgl.gen("a", max_tokens=16, regex=regex)
    s += " and " + sgl.gen("b", max_tokens=16, regex=regex)
    s += sgl.assistant_end()


def test_programs_without_partial_tools_run_as_stock(backend):
    state = plain.run(regex="hello world", backend=backend)
    assert (state["a"], state["b"]) == ("hello world", "hello world")
    assert "_conveyor_ledger" not in vars(state.stream_executor)


def test_reference_program_output(backend):
    state = solve.run(TASK, code_regex=forced(REFERENCE_CODE, "```"), backend=backend)
    tool = state.get_meta_info("code")["tool"]
    assert tool["status"] == "ok", tool["error"]
    assert re.search(r"primes below 200000: 17984\n", tool["output"])
