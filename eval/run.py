"""Measure what partial execution buys: every workload in every mode, on one server, one run.

    python -m eval.run [--url URL] [--reps N] [--min-cell-s S] [--quick] [--workloads ...]
                       [--cpu-split SERVER:TOOLS | --cpu-split none]

Without ``--url`` it starts the embedded CPU server with the evaluation model (``--quick``:
the tiny default model) and ``--tool-partial-execution`` (without that flag if the launcher
rejects it; the server cells are then skipped). Each workload runs once per available mode
to warm up (regex compiled, prompt cached), then ``--reps`` rounds alternate the modes
(rotating their order every round); a short workload gets more rounds (``--min-cell-s``).
Writes ``eval/results/<timestamp>.json`` and ``eval/results/latest.json`` and prints the
table and the parser's share of this client's CPU time (how: ``eval/parser_cpu.py``).

CPU split: on a GPU host decoding runs on the accelerator and tools on spare host cores; on
this CPU-only host a tool's CPU work would instead slow decoding itself. So by default the
embedded server (torch threads included) runs on all CPUs but the last, and this client and
every tool worker (client or server mode) on the last one (``--cpu-split 0:1`` on two
cores). The split is recorded in the results; ``--cpu-split none`` turns it off.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conveyor_sgl.runtime.workers.cpu_affinity import TOOL_CPUS_ENV, format_cpus, parse_cpus, pin
from eval.results import format_table
from eval.session import EvalSession

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PARTIAL_FLAG = "--tool-partial-execution"
# The evaluation runs many programs at once from one address: past the per-client cap.
EVAL_CAPS = ["--tool-max-sessions-per-client", "64"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from eval.model import eval_model
    from eval.workload import load_workloads

    workloads = load_workloads(args.workloads.split(",") if args.workloads else None)
    model_path, config = eval_model(args.quick)
    split = apply_cpu_split(args.cpu_split, embedded=not args.url)
    server_args = ["--cpus", split["server"]] if split.get("server") else []
    with server(args.url, model_path, server_args) as (url, server_note):
        session = EvalSession(url, workloads, server_note=server_note, min_cell_s=args.min_cell_s)
        results = session.run(args.reps, model_config=config, model_path=model_path)
    results["quick"] = args.quick
    results["cpu_split"] = split
    results["min_cell_s"] = args.min_cell_s
    paths = write_results(results, Path(args.out_dir))
    print(format_table(results))
    print("written: " + ", ".join(str(p) for p in paths))
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an SGLang server; default: start the embedded one")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per workload and mode")
    parser.add_argument(
        "--min-cell-s",
        type=float,
        default=30.0,
        help="repeat a short workload (up to 5x --reps) until each cell has this many seconds "
        "of runs; 0: exactly --reps",
    )
    parser.add_argument("--quick", action="store_true", help="the tiny default model")
    parser.add_argument("--workloads", help="comma-separated names; default: all")
    parser.add_argument("--out-dir", default=str(RESULTS_DIR))
    parser.add_argument(
        "--cpu-split",
        default="auto",
        help="SERVER:TOOLS CPU lists (e.g. 0:1), 'auto' (all but the last CPU : the last) "
        "or 'none'",
    )
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    try:
        args.cpu_split = cpu_split(args.cpu_split)
    except ValueError as e:
        parser.error(str(e))
    return args


def cpu_split(text: str) -> tuple[str, str] | None:
    """(server CPUs, tool CPUs) as CPU lists, or None for no split."""
    if text == "none":
        return None
    if text == "auto":
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        return format_cpus(set(cpus[:-1])), str(cpus[-1])
    server, sep, tools = text.partition(":")
    if not sep:
        raise ValueError(f"--cpu-split must be SERVER:TOOLS, auto or none, got {text!r}")
    server_cpus, tool_cpus = parse_cpus(server), parse_cpus(tools)
    if server_cpus & tool_cpus:
        raise ValueError(f"--cpu-split {text!r}: the server and the tools share CPUs")
    return format_cpus(server_cpus), format_cpus(tool_cpus)


def apply_cpu_split(split: tuple[str, str] | None, embedded: bool) -> dict[str, str | None]:
    """Pin this client to the tool CPUs, and its tool workers (they read the environment);
    what was done, for the results. A server given by URL is not ours to pin."""
    if split is None:
        return {"server": None, "tools": None, "note": "no split: server and tools share CPUs"}
    server_cpus, tool_cpus = split
    os.environ[TOOL_CPUS_ENV] = tool_cpus
    pin(parse_cpus(tool_cpus))
    return {
        "server": server_cpus if embedded else None,
        "tools": tool_cpus,
        "note": "decoding on the server CPUs, this client and every tool worker on the tool "
        "CPUs, as on a GPU host where tools do not take decoding's compute",
    }


@contextmanager
def server(
    url: str | None, model_path: Path, extra_args: list[str] | None = None
) -> Iterator[tuple[str, str | None]]:
    """(url, why server mode cannot run or None): the given server, or the embedded one."""
    if url:
        yield url, None
        return
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer, ServerStartError

    model_args = ["--model-path", str(model_path), *(extra_args or [])]
    try:
        with EmbeddedServer(extra_args=[*model_args, PARTIAL_FLAG, *EVAL_CAPS]) as embedded:
            yield embedded.url, None
        return
    except ServerStartError as e:
        if PARTIAL_FLAG not in str(e):
            raise
        note = f"the launcher rejected {PARTIAL_FLAG}"
    with EmbeddedServer(extra_args=model_args) as embedded:
        yield embedded.url, note


def write_results(results: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    text = json.dumps(results, indent=1, sort_keys=False) + "\n"
    paths = [out_dir / f"{stamp}.json", out_dir / "latest.json"]
    for path in paths:
        path.write_text(text, encoding="utf-8")
    return paths


if __name__ == "__main__":
    main()
