"""Scale-out: two servers behind the real sglang-router, programs through its URL: the
session's shared ones (tests/conftest.py), ``flagged_server`` and ``runtime_server`` (an
sgl.Runtime), both with --tool-partial-execution.

Client mode and server mode must give the same results through the router as against one
server, and the same prefix reuse: the router routes a program's requests (its generations,
and in server mode its tool call carried on /v1/completions) by the program's text, so they
reach the server that has its prefix cached.
"""

from __future__ import annotations

import uuid

import pytest
import requests
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.primitives.endpoint import Endpoint
from conveyor_sgl.runtime.embedded.router_process import Router
from programs.code_solver import forced

pytestmark = pytest.mark.server

CODE = "total = sum(range(10))\nprint('total', total)\n"
ANSWER = "The total is 45."


@sgl.function
def summing(s, nonce, mode):
    s += sgl.user(f"Task {nonce}: add the numbers below ten and print the total.")
    s += sgl.assistant_begin()
    s += "```python\n" + partial_tool(
        "code", tool="python", mode=mode, max_tokens=64, regex=forced(CODE)
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=60)
    s += sgl.gen("answer", max_tokens=32, regex=forced(ANSWER))
    s += sgl.assistant_end()


@pytest.fixture(scope="module")
def cluster(flagged_server, runtime_server):
    with Router([flagged_server.url, runtime_server.url]) as router:
        yield router, flagged_server


def _run(url, mode):
    state = summing.run(nonce=uuid.uuid4().hex, mode=mode, backend=sgl.RuntimeEndpoint(url))
    assert state.error() is None, state.error()
    return state


def _reused_share(state):
    """The share of the answer's prompt the server found cached: the prompt and the tool
    call's tokens were cached by the partial tool's own generation."""
    call, answer = state.get_meta_info("code"), state.get_meta_info("answer")
    known = call["prompt_tokens"] + call["completion_tokens"]
    return answer["cached_tokens"] / known


@pytest.mark.parametrize("mode", ["client", "server"])
def test_a_program_through_the_router_matches_one_server(cluster, mode):
    router, server = cluster
    via_router, direct = _run(router.url, mode), _run(server.url, mode)
    for state in (via_router, direct):
        tool = state.get_meta_info("code")["tool"]
        assert (tool["mode"], tool["status"], tool["output"]) == (mode, "ok", "total 45\n")
        assert state["answer"] == ANSWER
        assert len(tool["units"]) == 2  # each statement ran as it was decoded
    # The prefix is reused as on one server: everything before the tool result, token-exact.
    assert _reused_share(direct) >= 0.99
    assert _reused_share(via_router) >= 0.99


def test_the_router_is_recognised_and_server_mode_is_carried(cluster):
    router, server = cluster
    assert Endpoint(router.url).behind_router() and not Endpoint(server.url).behind_router()
    assert requests.get(router.url + "/conveyor/info", timeout=10).status_code == 404
    state = _run(router.url, None)  # None: the server if it can, found through the router
    assert state.get_meta_info("code")["tool"]["mode"] == "server"


@sgl.function
def query(s, database):
    s += "SQL: " + partial_tool(
        "q",
        tool="sql",
        config={"database": database},
        mode="server",
        max_tokens=16,
        regex=forced("SELECT 1;\n"),
    )
    s += tool_result("q", timeout=30)


def test_a_refusal_comes_back_through_the_router(cluster):
    router, server = cluster
    for url in (router.url, server.url):  # the same refusal as from the server itself
        state = query.run("/etc/passwd", backend=sgl.RuntimeEndpoint(url))
        error = str(state.error())
        assert "403" in error and "--tool-files-root" in error, error
