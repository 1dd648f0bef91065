"""``make demo``: a program's timeline, the benchmark's test preset, one table of savings.

Both run on one embedded server (tiny model), and the table gives what partial execution
saved against the sequential baseline, per program and workload.

    python -m eval.demo [--url URL] [--runs 5] [--groups g1,g2] [--out-dir .demo-results]

The program is ``programs/code_solver.py`` (the model writes Python; each finished statement
runs at once), ``--runs`` times in each mode, the order rotating; the timelines printed are
the runs nearest each mode's median. The test preset (``eval/benchmark.py``) runs 2 items per
workload, one multi-turn agent and one early abort, so its rows are marked too few to read;
its results, with the program's runs, go to ``<out-dir>/benchmark/``, not eval/results/.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sglang as sgl

from eval import benchmark
from eval import model as eval_model
from eval.modes import MODES, RunRecord, mode_arguments
from eval.saving_table import Row, benchmark_rows, format_saving_table, paired
from eval.serving import apply_cpu_split, cpu_split, server
from programs.code_solver import REFERENCE_CODE, TASK, forced, solve

PROGRAM = "code_solver"
TIMELINE_LEGEND = (
    "times in seconds from when the tool call's request was sent: decoded = the unit's last "
    "token arrived; sent = handed to the tool; started / finished = the tool's work on it"
)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    model_path, _ = eval_model.eval_model(quick=True)
    split = apply_cpu_split(cpu_split("auto"), embedded=not args.url)
    server_args = ["--cpus", split["server"]] if split.get("server") else []
    with server(args.url, model_path, server_args) as (url, note):
        backend = sgl.RuntimeEndpoint(url)
        modes = [m for m in MODES if not (m == "server" and note)]
        runs = run_program(backend, modes, args.runs)
        print(timelines(runs))
        bench_args = ["--preset", "test", "--skip", "load"]
        bench_args += ["--groups", args.groups] if args.groups else []
        preset = benchmark.PRESETS["test"]
        results = benchmark.run_benchmark(benchmark.parse_args(bench_args), preset, backend, note)
        ms = eval_model.ms_per_token(url)
    results |= {"ms_per_token": ms, "model_name": "fast", "cpu_split": split}
    results["program"] = {"name": PROGRAM, "runs": [asdict(r) for r in runs]}
    paths = benchmark.write(results, Path(args.out_dir) / "benchmark", "fast")
    rows = [program_row(runs), *benchmark_rows(results)]
    title = f"What partial execution saved: tiny model, {ms} ms/token; " + cpus(split)
    print("\n" + format_saving_table(rows, title))
    for what, why in (results.get("skipped") or {}).items():
        print(f"skipped {what}: {why}")
    errors = len(results["errors"]) + len((results.get("agents") or {}).get("errors") or [])
    print(f"errors: {errors} failed runs; all figures: {paths[1]}")


def cpus(split: dict[str, str | None]) -> str:
    if not split.get("tools"):
        return "server and tools share the CPUs"
    where = f"on CPU {split['server']}" if split.get("server") else "given by URL"
    return f"server {where}, this client and the tools on CPU {split['tools']}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an SGLang server; default: start the embedded one")
    parser.add_argument("--runs", type=int, default=5, help="runs of the program per mode")
    parser.add_argument("--groups", help="the benchmark's workloads (default: all)")
    parser.add_argument("--out-dir", default=".demo-results")
    return parser.parse_args(argv)


def run_program(backend: Any, modes: Sequence[str], rounds: int) -> list[RunRecord]:
    """The program once to warm up (compiles its regex, caches its prompt), then ``rounds``
    rounds of every mode, the order rotating."""
    one(backend, modes[-1])
    runs = []
    for r in range(rounds):
        turn = r % len(modes)
        runs += [one(backend, mode, r) for mode in [*modes[turn:], *modes[:turn]]]
    return runs


def one(backend: Any, mode: str, round_no: int = 0) -> RunRecord:
    started = time.monotonic()
    state = solve.run(
        TASK, code_regex=forced(REFERENCE_CODE, "```"), backend=backend, **mode_arguments(mode)
    )
    state.sync()
    latency = time.monotonic() - started
    if state.error():
        raise RuntimeError(f"{PROGRAM} in {mode} mode failed: {state.error()}")
    return RunRecord(PROGRAM, mode, latency, state.get_meta_info("code")["tool"], round_no)


def program_row(runs: Sequence[RunRecord]) -> Row:
    note = f"{PROGRAM}: programs/code_solver.py, the timelines above"
    return paired([(str(r.round), r.mode, r.latency_s) for r in runs], PROGRAM, note)


def timelines(runs: Sequence[RunRecord]) -> str:
    """The sequential run and the last partial mode's, each the run nearest its median."""
    modes = [m for m in MODES if any(r.mode == m for r in runs)]
    out = [f"=== {PROGRAM}: tool output ===", nearest(runs, modes[0]).tool["output"].rstrip()]
    for mode in dict.fromkeys([modes[0], modes[-1]]):
        out += ["", *timeline(nearest(runs, mode), sum(r.mode == mode for r in runs))]
    return "\n".join([*out, "", TIMELINE_LEGEND])


def nearest(runs: Sequence[RunRecord], mode: str) -> RunRecord:
    mine = [r for r in runs if r.mode == mode]
    median = statistics.median(r.latency_s for r in mine)
    return min(mine, key=lambda r: abs(r.latency_s - median))


def timeline(run: RunRecord, n: int) -> list[str]:
    tool = run.tool
    label = {
        "sequential": "sequential (baseline): the tool gets the code once decoding ends",
        "client": "client mode: partial execution, the tool in this process",
        "server": "server mode: partial execution, the tool inside the server",
    }[run.mode]
    lines = [
        f"=== {label} (the run nearest the median of {n}) ===",
        f"tool status {tool['status']}" + (f": {tool['error']}" if tool.get("error") else ""),
        f"{'unit':<44} {'decoded':>8} {'sent':>8} {'started':>8} {'finished':>8}",
    ]
    for unit in tool["units"]:
        text = unit["text"].strip().splitlines()[0][:42]
        times = [unit.get(k) for k in ("decoded_at", "sent_at", "started_at", "finished_at")]
        lines.append(
            f"{text:<44} " + " ".join("       -" if t is None else f"{t:8.3f}" for t in times)
        )
    end, ready = tool["decode_finished_at"], tool["result_ready_at"]
    lines.append(
        f"decoding ended at {end:.3f} s, result ready at {ready:.3f} s (waited "
        f"{max(0.0, ready - end):.3f} s for the tool); the whole program {run.latency_s:.2f} s"
    )
    return lines


if __name__ == "__main__":
    main()
