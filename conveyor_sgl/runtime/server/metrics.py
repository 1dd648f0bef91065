"""Prometheus metrics of server mode, served next to SGLang's own on its ``/metrics``.

Only with SGLang's ``--enable-metrics``. SGLang then runs prometheus_client in multiprocess
mode: ``_set_envs_and_config`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the HTTP app starts,
every process writes its values to mmaped files there, and ``/metrics`` is a
``MultiProcessCollector`` that reads them all. prometheus_client picks that file backend
when it is first imported, so nothing here imports it, or creates a metric, before the
first ``/conveyor/`` request (``ensure``), when SGLang's global state says whether metrics
are on. Without ``--enable-metrics`` nothing is imported or registered and every
``record_*`` is a no-op.

Metrics (``tool`` is the registered tool name the session resolved to):
- ``conveyor_sgl:tool_sessions_started_total{tool}``
- ``conveyor_sgl:tool_sessions_finished_total{tool,status}`` (ok, error, timeout, aborted)
- ``conveyor_sgl:tool_units_total{tool}``: units the parser cut from the generation
- ``conveyor_sgl:tool_wait_after_decode_seconds{tool}``: result ready - decoding end
- ``conveyor_sgl:tool_dispatch_latency_seconds{tool}``: the HTTP process had a unit's last
  token -> the tool started on it (per unit)
- ``conveyor_sgl:tool_workers_busy`` / ``conveyor_sgl:tool_workers_warm``: workers held by
  a session / started and idle (live workers minus busy ones), refreshed every second
- ``conveyor_sgl:tool_refusals_total{rule}``: requests refused before a session started
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from conveyor_sgl.runtime.tool_call import CallSession
from conveyor_sgl.runtime.workers.pool import WorkerPool

logger = logging.getLogger(__name__)

PREFIX = "conveyor_sgl:"
# Dispatch is sub-millisecond to tens of milliseconds; the wait after decoding is what a
# program pays for the tool's tail: milliseconds (partial execution) to a minute.
DISPATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
POOL_REFRESH_S = 1.0


class ServerMetrics:
    """The metric objects of this process and the pool gauges' refresher."""

    def __init__(self, pool: WorkerPool) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.started = Counter(PREFIX + "tool_sessions_started", "Tool sessions started", ["tool"])
        self.finished = Counter(
            PREFIX + "tool_sessions_finished", "Tool sessions finished", ["tool", "status"]
        )
        self.units = Counter(PREFIX + "tool_units", "Units fed to tools", ["tool"])
        self.wait = Histogram(
            PREFIX + "tool_wait_after_decode_seconds",
            "Seconds from the end of decoding to the tool's result",
            ["tool"],
            buckets=WAIT_BUCKETS,
        )
        self.dispatch = Histogram(
            PREFIX + "tool_dispatch_latency_seconds",
            "Seconds from a unit's last token in the HTTP process to the tool starting on it",
            ["tool"],
            buckets=DISPATCH_BUCKETS,
        )
        # livesum: each HTTP process (one per tokenizer worker) has its own pool.
        self.busy = Gauge(
            PREFIX + "tool_workers_busy",
            "Tool workers held by a session",
            multiprocess_mode="livesum",
        )
        self.warm = Gauge(
            PREFIX + "tool_workers_warm",
            "Tool workers started and idle",
            multiprocess_mode="livesum",
        )
        self.refusals = Counter(
            PREFIX + "tool_refusals", "Requests refused before a session started", ["rule"]
        )
        self._pool = pool
        self._lock = threading.Lock()
        self._sessions = 0  # started and not yet finished: each holds one worker
        self._refresher = threading.Thread(
            target=self._refresh_loop, name="conveyor-metrics", daemon=True
        )
        self._refresher.start()

    def session_started(self, tool: str) -> None:
        self.started.labels(tool=tool).inc()
        with self._lock:
            self._sessions += 1
        self.refresh_pool()

    def session_finished(self, session: CallSession) -> None:
        timeline, tool = session.timeline, session.tool
        self.finished.labels(tool=tool, status=timeline.status or "error").inc()
        self.units.labels(tool=tool).inc(len(timeline.units))
        if timeline.decode_finished_at is not None and timeline.result_ready_at is not None:
            wait = max(0.0, timeline.result_ready_at - timeline.decode_finished_at)
            self.wait.labels(tool=tool).observe(wait)
        dispatch = self.dispatch.labels(tool=tool)
        for unit in timeline.units:
            if unit.decoded_at is not None and unit.started_at is not None:
                # One clock (CLOCK_MONOTONIC) in both processes; a worker that stamps its
                # start a hair before the delta's stamp is a zero, not a negative.
                dispatch.observe(max(0.0, unit.started_at - unit.decoded_at))
        with self._lock:
            self._sessions = max(0, self._sessions - 1)
        self.refresh_pool()

    def refresh_pool(self) -> None:
        with self._lock:
            busy = self._sessions
        # The pool counts live workers, warm or handed out; those not held are warm.
        live = len(self._pool.pids())
        self.busy.set(min(busy, live))
        self.warm.set(max(0, live - busy))

    def _refresh_loop(self) -> None:
        while not self._pool.closed:  # ends with the pool, at the server's shutdown
            try:
                self.refresh_pool()
            except Exception:  # metrics must never take the server down
                logger.exception("conveyor_sgl: refreshing the pool gauges failed")
            time.sleep(POOL_REFRESH_S)


_metrics: ServerMetrics | None = None
_decided = False
_init_lock = threading.Lock()


def ensure(pool: WorkerPool) -> ServerMetrics | None:
    """This process's metrics, created on the first call once SGLang's global state exists
    (then ``PROMETHEUS_MULTIPROC_DIR`` is set); None where ``--enable-metrics`` is off."""
    global _metrics, _decided
    if _decided:
        return _metrics
    with _init_lock:
        if not _decided:
            enabled = _sglang_metrics_enabled()
            if enabled is not None:  # None: no SGLang server in this process (yet)
                _metrics = ServerMetrics(pool) if enabled else None
                _decided = True
    return _metrics


def _sglang_metrics_enabled() -> bool | None:
    try:
        from sglang.srt.entrypoints.http_server import get_global_state
    except ImportError:
        return None
    state = get_global_state()
    if state is None:
        return None
    server_args: Any = getattr(state.tokenizer_manager, "server_args", None)
    return bool(getattr(server_args, "enable_metrics", False))


def record_session_started(tool: str) -> None:
    if _metrics is not None:
        _metrics.session_started(tool)


def record_session_finished(session: CallSession) -> None:
    if _metrics is not None:
        _metrics.session_finished(session)


def record_refusal(rule: str) -> None:
    if _metrics is not None:
        _metrics.refusals.labels(rule=rule).inc()
