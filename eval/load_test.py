"""Load: many concurrent programs, each with its own Python tool session, against one server.

    python -m eval.load_test [--url URL] [--concurrency 32] [--programs 128]
                             [--max-workers 16] [--out FILE]

Every program forces its code (a regex) to a short program whose output names the program
(``program 17 -> 289``), so a result that went to the wrong program is detected, not only a
missing one. Reports programs completed, results lost (missing, failed or mixed up: must be
0), processes leaked after shutdown (must be 0), peak memory (RSS of this process, the
server and every tool worker, sampled), the peak number of tool workers, and the p50/p99
latency of a whole program. A benchmark, not a unit test: it prints JSON and exits non-zero
if anything was lost or leaked.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Self

import psutil
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.workers.pool import (
    MAX_WORKERS_ENV,
    default_max_workers,
    shutdown_default_pool,
)
from programs.code_solver import forced

_SAMPLE_S = 0.2
_WORKER_MARK = "conveyor_sgl.runtime.workers.worker"


@sgl.function
def numbered_program(s, index, code_regex):
    s += sgl.user(f"Program {index}: square your number and print it.")
    s += sgl.assistant_begin()
    s += "```python\n" + partial_tool(
        "code", tool="python", stop="```", max_tokens=96, regex=code_regex
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=120)
    s += sgl.assistant_end()


def code_of(index: int) -> str:
    return f"n = {index}\nprint('program', n, '->', n * n)\n"


def expected_output(index: int) -> str:
    return f"program {index} -> {index * index}\n"


@dataclass
class Outcome:
    index: int
    latency_s: float
    status: str
    output: str
    error: str | None


def run_one(index: int) -> Outcome:
    start = time.monotonic()
    state = numbered_program.run(index, forced(code_of(index), "```"))
    if state.error() is not None:
        return Outcome(index, time.monotonic() - start, "program_error", "", str(state.error()))
    tool = state.get_meta_info("code")["tool"]
    return Outcome(index, time.monotonic() - start, tool["status"], tool["output"], tool["error"])


class MemorySampler:
    """Peak RSS of this process and all its descendants, and the peak number of workers."""

    def __init__(self) -> None:
        self.peak_rss = 0
        self.peak_workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(_SAMPLE_S):
            rss, workers = me.memory_info().rss, 0
            for child in me.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                    workers += _WORKER_MARK in " ".join(child.cmdline())
                except psutil.Error:
                    pass  # ended meanwhile
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_workers = max(self.peak_workers, workers)


def classify(outcomes: list[Outcome], total: int) -> dict[str, int]:
    done = {o.index: o for o in outcomes}
    ok = sum(1 for o in outcomes if o.status == "ok" and o.output == expected_output(o.index))
    mixed = sum(
        1
        for o in outcomes
        if o.status == "ok" and o.output != expected_output(o.index) and "program" in o.output
    )
    return {"completed": ok, "lost": total - ok, "mixed_up": mixed, "missing": total - len(done)}


def leaked_processes(grace_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + grace_s
    while True:
        alive = [
            p for p in psutil.Process().children(recursive=True) if _alive(p)
        ]  # the server and every worker must be gone by now
        if not alive or time.monotonic() > deadline:
            return [f"{p.pid} {' '.join(_cmdline(p))[:80]}" for p in alive]
        time.sleep(0.2)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_load(url: str, concurrency: int, programs: int) -> tuple[list[Outcome], float]:
    sgl.set_default_backend(sgl.RuntimeEndpoint(url))
    run_one(-1)  # warm-up: the regex compiler, the worker pool
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        outcomes = list(executor.map(run_one, range(programs)))
    return outcomes, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an SGLang server; default: start the embedded one")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--programs", type=int, default=128, help="total programs to run")
    parser.add_argument(
        "--max-workers",
        type=int,
        default=default_max_workers(),
        help="cap on live tool workers (the pool is bounded; sessions wait for a free one)",
    )
    parser.add_argument("--out", help="also write the report (JSON) here")
    args = parser.parse_args(argv)
    os.environ[MAX_WORKERS_ENV] = str(args.max_workers)  # read by the default pool
    shutdown_default_pool()
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    serving = nullcontext(args.url) if args.url else EmbeddedServer()
    with MemorySampler() as sampler, serving as server:
        url = server if isinstance(server, str) else server.url
        outcomes, wall_s = run_load(url, args.concurrency, args.programs)
        shutdown_default_pool()
    latencies = [o.latency_s for o in outcomes]
    report = {
        "concurrency": args.concurrency,
        "programs": args.programs,
        "max_tool_workers": args.max_workers,
        **classify(outcomes, args.programs),
        "processes_leaked": len(leaked := leaked_processes()),
        "leaked": leaked,
        "peak_rss_mib": round(sampler.peak_rss / 2**20),
        "peak_tool_workers": sampler.peak_workers,
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(percentile(latencies, 0.99), 3),
        "wall_s": round(wall_s, 2),
        "programs_per_s": round(args.programs / wall_s, 2),
        "failures": [asdict(o) for o in outcomes if o.output != expected_output(o.index)][:5],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    over_cap = report["peak_tool_workers"] > args.max_workers
    return 1 if report["lost"] or report["processes_leaked"] or over_cap else 0


if __name__ == "__main__":
    sys.exit(main())
