"""The cost of each confinement layer when a session starts.

Two measures:
1. per layer: a fresh process (as a warm worker would be) enters the Python tool's sandbox
   (``sandbox.enter`` with ``limits_for("python")``) and reports how long each step took
   (``sandbox.TIMINGS``); medians over ``--runs`` processes;
2. end to end: ``run_tool("python", "x = 1\\n")`` back to back on a warm pool, with every
   layer and with the kernel's Landlock and capability layers switched off
   (``CONVEYOR_SGL_SANDBOX_DISABLE``), median and p90 over ``--sessions`` sessions.

    python -m eval.sandbox_cost [--runs 30] [--sessions 60]
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
import json, os, sys
from conveyor_sgl.runtime.sandbox import confine as sandbox
from conveyor_sgl.tools.limits import limits_for
layers = sandbox.enter(limits_for("python"), os.path.join(sys.argv[1], "w.work"))
print(json.dumps({"layers": layers, "ms": sandbox.TIMINGS}))
"""
_CHILD_TIMEOUT_S = 30.0


def layer_costs(runs: int) -> tuple[list[str], dict[str, list[float]]]:
    """Each step's time (ms) in ``runs`` fresh processes; the layers they reported."""
    samples: dict[str, list[float]] = {}
    layers: list[str] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="conveyor-cost-") as root:
            proc = subprocess.run(  # noqa: S603 - our interpreter running our own _CHILD script
                [sys.executable, "-c", _CHILD, root],
                capture_output=True,
                text=True,
                timeout=_CHILD_TIMEOUT_S,
                check=True,
            )
        report = json.loads(proc.stdout)
        layers = report["layers"]
        for step, ms in report["ms"].items():
            samples.setdefault(step, []).append(ms)
    return layers, samples


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
    args = parser.parse_args(argv)
    layers, samples = layer_costs(args.runs)
    print(f"layers in force: {', '.join(layers)}")
    print(f"per step of sandbox.enter, median (p90) over {args.runs} fresh processes, ms:")
    for step, values in samples.items():
        print(f"  {step:9s} {statistics.median(values):7.3f} ({_p(values, 0.9):.3f})")
    total = [sum(run) for run in zip(*samples.values(), strict=True)]
    print(f"  {'total':9s} {statistics.median(total):7.3f} ({_p(total, 0.9):.3f})")
    for label, disable in (("all layers", ""), ("no landlock/caps", "landlock,caps")):
        times = session_times(args.sessions, disable)
        print(
            f"run_tool('python', 'x = 1') with {label}: median {statistics.median(times):.1f} ms,"
            f" p90 {_p(times, 0.9):.1f} ms over {len(times)} sessions"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
