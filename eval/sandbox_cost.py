"""The cost of each confinement layer when a session starts.

Two measures:
1. per layer: executors forked as a worker forks them (``prepare`` once, then
   ``fork_isolated``: PID 1 of a new PID namespace) enter each tool's sandbox (``sandbox.enter``
   with ``limits_for(tool)``) and report how long the fork and each step took
   (``sandbox.TIMINGS``); medians over ``--runs`` executors per tool;
2. end to end: ``run_tool("python", "x = 1\\n")`` back to back on a warm pool, with every
   layer and with the kernel's Landlock and capability layers switched off
   (``CONVEYOR_SGL_SANDBOX_DISABLE``), median and p90 over ``--sessions`` sessions.

    python -m eval.sandbox_cost [--runs 30] [--sessions 60] [--tools python,sql]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

_CHILD = """\
import json, os, sys, time
from conveyor_sgl.runtime.sandbox import confine as sandbox, namespaces
from conveyor_sgl.runtime.workers.executor import prepare
from conveyor_sgl.tools.limits import limits_for
limits = limits_for(sys.argv[2])
prepare()  # as the fork server does, once
out = []
for i in range(int(sys.argv[3])):
    r, w = os.pipe()
    start = time.perf_counter()
    pid, isolated = namespaces.fork_isolated()  # as a worker forks its executor
    if pid == 0:
        os.close(r)
        forked = (time.perf_counter() - start) * 1000
        workdir = os.path.join(sys.argv[1], f"w{i}.work")
        layers = sandbox.enter(limits, workdir, sandbox.Reach(), isolated)
        ms = {"fork": forked, **sandbox.TIMINGS}
        os.write(w, json.dumps({"layers": layers, "ms": ms}).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    out.append(json.loads(data))
print(json.dumps(out))
"""
_CHILD_TIMEOUT_S = 120.0


def layer_costs(runs: int, tool: str) -> tuple[list[str], dict[str, list[float]]]:
    """Each step's time (ms) in ``runs`` executors of ``tool`` forked as a worker forks them
    (one process forks them all, after ``prepare``); the layers they reported."""
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="conveyor-cost-") as root:
        proc = subprocess.run(  # noqa: S603 - our interpreter running our own _CHILD script
            [sys.executable, "-c", _CHILD, root, tool, str(runs)],
            capture_output=True,
            text=True,
            timeout=_CHILD_TIMEOUT_S,
            check=True,
        )
    reports = json.loads(proc.stdout)
    for report in reports:
        for step, ms in report["ms"].items():
            samples.setdefault(step, []).append(ms)
    return reports[-1]["layers"], samples


def session_times(sessions: int, disable: str) -> list[float]:
    """Wall time (ms) of ``sessions`` back-to-back python sessions with ``disable`` set."""
    from conveyor_sgl import run_tool
    from conveyor_sgl.runtime.sandbox.layers import DISABLE_ENV
    from conveyor_sgl.runtime.workers.pool import WorkerPool

    os.environ[DISABLE_ENV] = disable  # read by the workers this pool spawns
    times = []
    try:
        with WorkerPool(size=2) as pool:
            pool.wait_ready(30)
            for _ in range(sessions):
                start = time.perf_counter()
                result = run_tool("python", "x = 1\n", pool=pool, timeout=30)
                times.append((time.perf_counter() - start) * 1000)
                if result.status != "ok":
                    raise RuntimeError(f"session failed: {result.error}")
                time.sleep(0.05)  # one session per 50 ms: the pool refills between them
    finally:
        os.environ.pop(DISABLE_ENV, None)
    return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="fresh processes for per-layer")
    parser.add_argument("--sessions", type=int, default=60, help="sessions per configuration")
    parser.add_argument("--tools", default="python,sql", help="whose executors to measure")
    args = parser.parse_args(argv)
    for tool in args.tools.split(","):
        layers, samples = layer_costs(args.runs, tool)
        print(f"{tool}: layers in force: {', '.join(layers)}")
        print(f"  per step, median (p90) over {args.runs} executors, ms:")
        for step, values in samples.items():
            print(f"    {step:9s} {statistics.median(values):7.3f} ({_p(values, 0.9):.3f})")
        total = [sum(run) for run in zip(*samples.values(), strict=True)]
        print(f"    {'total':9s} {statistics.median(total):7.3f} ({_p(total, 0.9):.3f})")
    for label, disable in (("all layers", ""), ("no landlock/caps", "landlock,caps")):
        times = session_times(args.sessions, disable)
        print(
            f"run_tool('python', 'x = 1') with {label}: median {statistics.median(times):.1f} ms,"
            f" p90 {_p(times, 0.9):.1f} ms over {len(times)} sessions"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
