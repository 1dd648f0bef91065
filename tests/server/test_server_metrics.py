"""Server mode's Prometheus metrics on SGLang's own /metrics (--enable-metrics): a real
server runs one program in server mode and refuses a few requests; /metrics then shows our
sessions, units, latencies, pool gauges and refusals next to SGLang's metrics."""

from __future__ import annotations

import time

import pytest
import requests
import sglang as sgl
from prometheus_client.parser import text_string_to_metric_families

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer
from programs.code_solver import forced

pytestmark = pytest.mark.server

P = "conveyor_sgl:"
CODE = "x = 2\nprint(x)\nfor i in range(2):\n    print(i)\nprint('done')\n"
OUTPUT = "2\n0\n1\ndone\n"


@pytest.fixture(scope="module")
def server():
    flags = ["--tool-partial-execution", "--enable-metrics", "--tool-allow", "python"]
    flags += ["--max-total-tokens", "4096"]  # a small KV pool: the host is shared
    with EmbeddedServer(extra_args=flags) as server:
        yield server


@sgl.function
def coder(s, code_regex):
    s += "Code:\n```python\n" + partial_tool(
        "code", tool="python", mode="server", stop="```", max_tokens=128, regex=code_regex
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=60)


def _metrics(url: str) -> dict[str, list]:
    """Our samples by sample name (counters end in _total, histograms in _count etc.)."""
    text = requests.get(url + "/metrics", timeout=10).text
    samples: dict[str, list] = {"sglang": []}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(P):
                samples.setdefault(sample.name[len(P) :], []).append(sample)
            elif sample.name.startswith("sglang:"):
                samples["sglang"].append(sample)
    return samples


def _value(samples: dict[str, list], name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if labels.items() <= s.labels.items()]
    assert found, f"no {P}{name} sample with {labels}; have {sorted(samples)}"
    return sum(found)


def _wait_for(url: str, check, timeout_s: float = 15.0) -> dict[str, list]:
    """The metrics once ``check`` holds (a session is recorded as its response ends)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = _metrics(url)
        try:
            check(samples)
            return samples
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_metrics_show_sessions_units_latencies_pool_and_refusals(server):
    state = coder.run(backend=sgl.RuntimeEndpoint(server.url), code_regex=forced(CODE, "```"))
    assert state.error() is None, state.error()
    tool = state.get_meta_info("code")["tool"]
    assert (tool["mode"], tool["status"], tool["output"]) == ("server", "ok", OUTPUT)
    units = len(tool["units"])
    assert units >= 4, tool["units"]

    post = server.url + "/conveyor/partial_tool"
    body = {"tool": "sql", "generate": {"text": "x", "sampling_params": {"max_new_tokens": 2}}}
    refused = requests.post(post, json=body, timeout=30)
    assert refused.status_code == 403 and "--tool-allow" in refused.json()["error"]["message"]
    assert requests.post(post, json={"tool": "python"}, timeout=30).status_code == 400
    limits = {**body, "tool": "python", "limits": {"cpu_s": 10**9}}
    assert requests.post(post, json=limits, timeout=30).status_code == 403

    def recorded(samples: dict[str, list]) -> None:
        assert _value(samples, "tool_sessions_finished_total", tool="python") == 1
        # The pool refills after the session: some warm worker, none held.
        assert _value(samples, "tool_workers_warm") >= 1
        assert _value(samples, "tool_workers_busy") == 0

    samples = _wait_for(server.url, recorded)
    assert samples["sglang"], "SGLang's own metrics are on the same /metrics"
    assert _value(samples, "tool_sessions_started_total", tool="python") == 1
    assert _value(samples, "tool_sessions_finished_total", tool="python", status="ok") == 1
    assert _value(samples, "tool_units_total", tool="python") == units
    # One wait per session, one dispatch per unit, matching the result's own timeline.
    assert _value(samples, "tool_wait_after_decode_seconds_count", tool="python") == 1
    wait = tool["result_ready_at"] - tool["decode_finished_at"]
    recorded_wait = _value(samples, "tool_wait_after_decode_seconds_sum", tool="python")
    assert recorded_wait == pytest.approx(wait, abs=1e-3)
    assert _value(samples, "tool_dispatch_latency_seconds_count", tool="python") == units
    dispatch = sum(max(0.0, u["started_at"] - u["decoded_at"]) for u in tool["units"])
    recorded_dispatch = _value(samples, "tool_dispatch_latency_seconds_sum", tool="python")
    assert recorded_dispatch == pytest.approx(dispatch, abs=1e-3)
    assert _value(samples, "tool_dispatch_latency_seconds_bucket", le="+Inf") == units
    refusals = {s.labels["rule"]: s.value for s in samples["tool_refusals_total"]}
    assert refusals == {"tool_not_allowed": 1, "bad_request": 1, "limits": 1}
