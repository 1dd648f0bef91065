"""Session start and unit dispatch latency of the tool runtime, without a model.

``python -m eval.session_start_bench [--sessions 200] [--interval-ms 50] [--tools python,...]``

- **Session start**: a steady stream of sessions (one every ``--interval-ms``, each on its own
  thread, as a server's requests would come): from ``ToolSession(...)`` being created to its
  first unit starting in the worker. A fresh worker per session is the sandbox's promise, so
  this is what the pool's warm workers must hide.
- **Dispatch**: in one session, units decoded ``--unit-gap-ms`` apart: from a unit's decoding
  (``feed_text``) to its start in the worker (the tool's ``feed``).

Prints median / p90 / p99 / max in milliseconds per tool.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.workers.pool import WorkerPool

# One unit of each tool's input: something cheap that really runs in the tool.
UNITS = {
    "python": "x = 1\n",
    "calculator": "1 + 2\n",
    "sql": "SELECT 1;",
    "search": "python list sort\n",
    "validation": '{"a": 1}',
    "planner": '1. python("1 + 1")\n',
}
CONFIGS: dict[str, dict[str, Any]] = {
    "validation": {"schema": {"type": "object", "properties": {"a": {"type": "integer"}}}},
}


def session_start_ms(pool: WorkerPool, tool: str, n: int, interval_s: float) -> list[float]:
    """Start ``n`` sessions ``interval_s`` apart; each one's start latency in ms."""
    out: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        t0 = time.monotonic()
        with ToolSession(tool, pool=pool, config=CONFIGS.get(tool), t0=t0) as session:
            session.feed_text(UNITS[tool], now=t0)
            result = session.result(timeout_s=30)
        started = result.units[0]["started_at"] if result.units else None
        if result.status == "ok" and started is not None:
            with lock:
                out.append(started * 1000)

    threads = []
    begin = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, begin + i * interval_s - time.monotonic()))
        thread = threading.Thread(target=one, daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(60)
    return out


def dispatch_ms(pool: WorkerPool, units: int, gap_s: float) -> list[float]:
    """Decoded -> started in the worker, per unit of one python session."""
    t0 = time.monotonic()
    with ToolSession("python", pool=pool, t0=t0) as session:
        for i in range(units):
            time.sleep(gap_s)
            session.feed_text(f"x{i} = {i}\n", now=time.monotonic())
        result = session.result(timeout_s=30)
    return [
        (u["started_at"] - u["decoded_at"]) * 1000
        for u in result.units
        if u["started_at"] is not None
    ]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return (
        f"n={len(ordered)} median={statistics.median(ordered):.3f} p90={pct(0.9):.3f} "
        f"p99={pct(0.99):.3f} max={ordered[-1]:.3f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=50.0)
    parser.add_argument("--tools", default="python,calculator,sql,search,validation,planner")
    parser.add_argument("--units", type=int, default=200, help="dispatch: units per session")
    parser.add_argument("--unit-gap-ms", type=float, default=5.0)
    parser.add_argument("--warm", type=int, default=4, help="warm workers kept by the pool")
    args = parser.parse_args(argv)
    with WorkerPool(size=args.warm) as pool:
        pool.wait_ready(30)
        for tool in filter(None, args.tools.split(",")):
            session_start_ms(pool, tool, 5, args.interval_ms / 1000)  # the tool's first use
            values = session_start_ms(pool, tool, args.sessions, args.interval_ms / 1000)
            print(f"session start  {tool:<11} {summary(values)}", flush=True)
        values = dispatch_ms(pool, args.units, args.unit_gap_ms / 1000)
        print(f"dispatch       python      {summary(values)}", flush=True)


if __name__ == "__main__":
    main()
