"""Server mode's Prometheus metrics on SGLang's own /metrics (--enable-metrics): a real
server runs one program in server mode and refuses a few requests; /metrics then shows our
sessions, units, latencies, pool gauges and refusals next to SGLang's metrics.

The server is the session's policed one (tests/conftest.py, launched with --enable-metrics):
other tests run sessions on it too, so the test reads what its own requests added."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
import sglang as sgl
from conftest import POLICED_AUTH, POLICED_KEY
from prometheus_client.parser import text_string_to_metric_families

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced

P = "conveyor_sgl:"
CODE = "x = 2\nprint(x)\nfor i in range(2):\n    print(i)\nprint('done')\n"
OUTPUT = "2\n0\n1\ndone\n"


# In a child process: prometheus_client picks its multiprocess backend when first imported.
RECORDER = textwrap.dedent("""
    import time
    from types import SimpleNamespace as NS
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    from conveyor_sgl.runtime.server import metrics
    from conveyor_sgl.runtime.timeline import ToolTimeline, UnitTiming

    metrics._sglang_metrics_enabled = lambda: True  # as SGLang's --enable-metrics says
    pool = NS(closed=False, pids=lambda: [11, 12, 13])
    assert metrics.ensure(pool) is metrics.ensure(pool) is not None
    metrics.record_session_started("python")
    units = [UnitTiming("a", decoded_at=1.0, started_at=1.002), UnitTiming("b", decoded_at=2.0)]
    timeline = ToolTimeline("server", units, decode_finished_at=3.0, result_ready_at=3.5)
    timeline.status = "ok"
    metrics.record_session_finished(NS(tool="python", timeline=timeline))
    metrics.record_refusal("url")
    pool.closed = True  # ends the gauges' refresher
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    print(generate_latest(registry).decode())
""")


def test_recorded_metrics_reach_the_multiprocess_collector(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", RECORDER], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    samples = _parse(out.stdout)
    assert _value(samples, "tool_sessions_started_total", tool="python") == 1
    assert _value(samples, "tool_sessions_finished_total", tool="python", status="ok") == 1
    assert _value(samples, "tool_units_total", tool="python") == 2
    assert _value(samples, "tool_wait_after_decode_seconds_sum") == pytest.approx(0.5)
    # Only the unit the tool started on has a dispatch latency.
    assert _value(samples, "tool_dispatch_latency_seconds_count") == 1
    assert _value(samples, "tool_dispatch_latency_seconds_sum") == pytest.approx(0.002)
    assert _value(samples, "tool_dispatch_latency_seconds_bucket", le="0.0025") == 1
    assert _value(samples, "tool_dispatch_latency_seconds_bucket", le="0.001") == 0
    assert (_value(samples, "tool_workers_busy"), _value(samples, "tool_workers_warm")) == (0, 3)
    assert _value(samples, "tool_refusals_total", rule="url") == 1


def test_nothing_is_created_without_an_sglang_server() -> None:
    code = (
        "import sys; from conveyor_sgl.runtime.server import metrics\n"
        "metrics.record_refusal('url'); assert metrics.ensure(None) is None\n"
        "assert 'prometheus_client' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.fixture(scope="module")
def server(policed_server):
    """The policed server: metrics on, and an allow-list that leaves calculator out."""
    return policed_server.server


@sgl.function
def coder(s, code_regex):
    s += "Code:\n```python\n" + partial_tool(
        "code", tool="python", mode="server", stop="```", max_tokens=128, regex=code_regex
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=60)


def _metrics(url: str) -> dict[str, list]:
    return _parse(requests.get(url + "/metrics", timeout=10).text)


def _parse(text: str) -> dict[str, list]:
    """Our samples by sample name (counters end in _total, histograms in _count etc.)."""
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


def _added(samples: dict[str, list], before: dict[str, list], name: str, **labels: str) -> float:
    """How much ``name`` (a counter, or a histogram's sum, count or bucket) grew since
    ``before``; a label set first seen since then started at 0."""
    was = [s.value for s in before.get(name, []) if labels.items() <= s.labels.items()]
    return _value(samples, name, **labels) - sum(was)


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


@pytest.mark.server
def test_metrics_show_sessions_units_latencies_pool_and_refusals(server):
    before = _metrics(server.url)
    backend = sgl.RuntimeEndpoint(server.url, api_key=POLICED_KEY)
    state = coder.run(backend=backend, code_regex=forced(CODE, "```"))
    assert state.error() is None, state.error()
    tool = state.get_meta_info("code")["tool"]
    assert (tool["mode"], tool["status"], tool["output"]) == ("server", "ok", OUTPUT)
    units = len(tool["units"])
    assert units >= 4, tool["units"]
    _refuse_three(server.url)

    def recorded(samples: dict[str, list]) -> None:
        assert _added(samples, before, "tool_sessions_finished_total", tool="python") == 1
        # The pool refills after the session: some warm worker, none held.
        assert _value(samples, "tool_workers_warm") >= 1
        assert _value(samples, "tool_workers_busy") == 0

    samples = _wait_for(server.url, recorded)
    assert samples["sglang"], "SGLang's own metrics are on the same /metrics"

    def added(name: str, **labels: str) -> float:
        return _added(samples, before, name, **labels)

    assert added("tool_sessions_started_total", tool="python") == 1
    assert added("tool_sessions_finished_total", tool="python", status="ok") == 1
    assert added("tool_units_total", tool="python") == units
    # One wait per session, one dispatch per unit, matching the result's own timeline.
    assert added("tool_wait_after_decode_seconds_count", tool="python") == 1
    wait = tool["result_ready_at"] - tool["decode_finished_at"]
    recorded_wait = added("tool_wait_after_decode_seconds_sum", tool="python")
    assert recorded_wait == pytest.approx(wait, abs=1e-3)
    assert added("tool_dispatch_latency_seconds_count", tool="python") == units
    dispatch = sum(max(0.0, u["started_at"] - u["decoded_at"]) for u in tool["units"])
    recorded_dispatch = added("tool_dispatch_latency_seconds_sum", tool="python")
    assert recorded_dispatch == pytest.approx(dispatch, abs=1e-3)
    assert added("tool_dispatch_latency_seconds_bucket", le="+Inf") == units
    rules = {s.labels["rule"] for s in samples["tool_refusals_total"]}
    refusals = {rule: added("tool_refusals_total", rule=rule) for rule in rules}
    assert {rule: n for rule, n in refusals.items() if n} == {
        "tool_not_allowed": 1,
        "bad_request": 1,
        "limits": 1,
    }


def _refuse_three(url: str) -> None:
    """A tool off the allow-list, a body without its generation, limits above the caps."""
    post = url + "/conveyor/partial_tool"
    body = {
        "tool": "calculator",
        "generate": {"text": "x", "sampling_params": {"max_new_tokens": 2}},
    }
    refused = requests.post(post, json=body, headers=POLICED_AUTH, timeout=30)
    assert refused.status_code == 403 and "--tool-allow" in refused.json()["error"]["message"]
    bad = requests.post(post, json={"tool": "python"}, headers=POLICED_AUTH, timeout=30)
    assert bad.status_code == 400
    limits = {**body, "tool": "python", "limits": {"cpu_s": 10**9}}
    assert requests.post(post, json=limits, headers=POLICED_AUTH, timeout=30).status_code == 403
