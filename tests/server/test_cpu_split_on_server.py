"""`--cpus` / `--tool-cpus` end to end: the policed server (tests/conftest.py) is launched
with decoding on the first CPU and tools on the last; its processes and the tools it runs
are where the flags put them."""

from __future__ import annotations

import os

import pytest
import requests
from conftest import LAST_CPU, POLICED_AUTH
from sse_events import sse_events, tool_result_of

from conveyor_sgl.runtime.embedded.server_process import group_pids
from conveyor_sgl.runtime.server.protocol import PARTIAL_TOOL_PATH
from programs.code_solver import forced

pytestmark = pytest.mark.server
CODE = "import os\nprint(sorted(os.sched_getaffinity(0)))\n"


@pytest.fixture(scope="module")
def server(policed_server):
    if LAST_CPU == 0:
        pytest.skip("one CPU: nothing to split")
    return policed_server.server


def test_the_server_processes_decode_on_the_first_cpu(server):
    pids = group_pids(server.pid)
    assert pids
    for pid in pids:
        try:
            assert os.sched_getaffinity(pid) == {0}, pid
        except ProcessLookupError:
            continue  # a short-lived helper that ended meanwhile


def test_the_tools_run_on_the_last_cpu(server):
    generate = {"text": "x", "sampling_params": {"max_new_tokens": 64, "regex": forced(CODE)}}
    body = {"tool": "python", "generate": generate}
    res = requests.post(
        server.url + PARTIAL_TOOL_PATH, json=body, headers=POLICED_AUTH, stream=True, timeout=120
    )
    assert res.status_code == 200, res.text
    tool = tool_result_of(sse_events(res))
    assert (tool["status"], tool["output"]) == ("ok", f"[{LAST_CPU}]\n")
