"""Prefix holds on the real server (the session's shared one): taken by a tool call's
generation and given up when the program continues, fails or goes away, or at the deadline,
in client mode and server mode (direct and carried through /v1/completions).

The scheduler's counters come from /server_info (``internal_states``); each test reads
them before and after, since other tests share the server.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.primitives.prefix_hold import HOLD_S_ENV
from conveyor_sgl.runtime.server.protocol import (
    CARRIER_PATH,
    INFO_PATH,
    PARTIAL_TOOL_PATH,
    PREFIX_HOLD_RELEASE_PATH,
    PREFIX_HOLD_STATE_KEY,
    PrefixHold,
    carried,
    prefix_hold_hints,
)
from programs.code_solver import forced

pytestmark = pytest.mark.server

CODE = "import time\ntime.sleep(0.3)\nprint('ok')\n"
PROMPT = "Keep this context while the tool runs. " * 20


@pytest.fixture(scope="module")
def url(flagged_server):
    return flagged_server.url


def hold_state(url: str) -> dict:
    info = requests.get(url + "/server_info", timeout=30).json()
    return info["internal_states"][0][PREFIX_HOLD_STATE_KEY]


def counts(state: dict) -> dict[str, int]:
    return {"taken": state["taken"], "refused": state["refused"], **state["released"]}


def wait_for(url: str, before: dict, timeout_s: float = 20, **expected: int) -> dict:
    """Poll until every counter in ``expected`` grew by that much (the scheduler applies a
    release after the HTTP call that asked for it returned)."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = counts(hold_state(url))
        delta = {k: now[k] - before[k] for k in expected}
        if delta == expected or time.monotonic() > deadline:
            assert delta == expected, (delta, expected)
            return now
        time.sleep(0.1)


@sgl.function
def continues(s, mode):
    s += PROMPT + "```python\n"
    s += partial_tool("code", tool="python", mode=mode, stop="```", regex=forced(CODE, "```"))
    s += "```\nOutput:\n" + tool_result("code", timeout=60)
    s += "Answer: " + sgl.gen("answer", max_tokens=4, regex="done")


@sgl.function
def fails_after_the_tool(s, mode):
    s += PROMPT + "```python\n"
    s += partial_tool("code", tool="python", mode=mode, stop="```", regex=forced(CODE, "```"))
    s += "```\nOutput:\n" + tool_result("code", timeout=60)
    raise RuntimeError("the program fails before it continues")


@pytest.mark.parametrize("mode", ["client", "server"])
def test_the_answer_continues_the_hold_and_finds_its_prefix(url, mode, monkeypatch):
    monkeypatch.delenv(HOLD_S_ENV, raising=False)
    before = counts(hold_state(url))
    state = continues.run(mode, backend=sgl.RuntimeEndpoint(url))
    assert state.error() is None, state.error()
    assert state.get_meta_info("code")["tool"]["status"] == "ok"
    wait_for(url, before, taken=1, continued=1, released=0, deadline=0)
    reuse = state.get_meta_info("answer")["prefix_reuse"]
    assert reuse["held"] and reuse["reused"], reuse
    assert reuse["prefix_tokens"] == state.get_meta_info("code")["prompt_tokens"]


@pytest.mark.parametrize("mode", ["client", "server"])
def test_a_program_that_fails_gives_its_hold_up(url, mode, monkeypatch):
    monkeypatch.delenv(HOLD_S_ENV, raising=False)
    before = counts(hold_state(url))
    with pytest.raises(RuntimeError, match="fails before it continues"):
        fails_after_the_tool.run(mode, backend=sgl.RuntimeEndpoint(url))
    wait_for(url, before, taken=1, released=1, continued=0)


def test_a_program_told_not_to_ask_takes_no_hold(url, monkeypatch):
    monkeypatch.setenv(HOLD_S_ENV, "0")  # the client's off switch: stock behaviour
    before = counts(hold_state(url))
    state = continues.run("client", backend=sgl.RuntimeEndpoint(url))
    assert state.error() is None, state.error()
    assert counts(hold_state(url))["taken"] == before["taken"]
    assert state.get_meta_info("answer")["prefix_reuse"]["held"] is False


def test_a_hold_passes_its_deadline(url):
    """Client mode's "client gone": nobody continues or releases it; the deadline does."""
    before = counts(hold_state(url))
    hint = PrefixHold(hold=uuid.uuid4().hex, hold_s=0.5)
    body = {"text": PROMPT, "sampling_params": {"max_new_tokens": 2}}
    body["kv_hints"] = prefix_hold_hints(hint)
    res = requests.post(url + "/generate", json=body, timeout=60)
    assert res.status_code == 200, res.text
    wait_for(url, before, taken=1, deadline=1)


def server_mode_body(hold: str) -> dict:
    generate = {
        "text": PROMPT + "```python\n",
        "sampling_params": {"max_new_tokens": 64, "stop": "```", "regex": forced(CODE, "```")},
        "kv_hints": prefix_hold_hints(PrefixHold(hold=hold)),
    }
    return {"tool": "python", "generate": generate}


@pytest.mark.parametrize("route", ["direct", "carried"])
def test_a_server_mode_client_that_goes_away_during_the_tool_gives_its_hold_up(url, route):
    before = counts(hold_state(url))
    body = server_mode_body(uuid.uuid4().hex)
    path, payload = PARTIAL_TOOL_PATH, body
    if route == "carried":
        path, payload = CARRIER_PATH, carried(PARTIAL_TOOL_PATH, body, PROMPT, "default")
    with requests.post(url + path, json=payload, stream=True, timeout=60) as res:
        assert res.status_code == 200, res.text
        for line in res.iter_lines():
            if b'"decode_end"' in line:
                break  # decoding is over, the tool runs: leave without its result
    wait_for(url, before, taken=1, released=1)


def test_a_server_mode_result_that_arrives_leaves_the_hold_for_the_continuation(url):
    before = counts(hold_state(url))
    key = uuid.uuid4().hex
    with requests.post(url + PARTIAL_TOOL_PATH, json=server_mode_body(key), timeout=60) as res:
        assert res.status_code == 200 and b'"result"' in res.content
    wait_for(url, before, taken=1, released=0)
    res = requests.post(url + PREFIX_HOLD_RELEASE_PATH, json={"keys": [key]}, timeout=30)
    assert res.json() == {"released": [key]}
    wait_for(url, before, taken=1, released=1)


def test_the_release_route_refuses_what_is_not_a_release(url):
    for body, status in ((b'{"keys": []}', 400), (b"[1]", 400), (b"x" * 5000, 413)):
        res = requests.post(url + PREFIX_HOLD_RELEASE_PATH, data=body, timeout=30)
        assert res.status_code == status, res.text


def test_info_reports_the_hold_settings(url):
    info = requests.get(url + INFO_PATH, timeout=30).json()
    expected = {"enabled": True, "hold_s": 60.0, "share": 0.9, "policy": "start-first"}
    assert info["prefix_hold"] == expected
    state = hold_state(url)
    assert state["budget_tokens"] > 0 and state["enabled"] is True
