"""Measure what partial execution buys: every workload in every mode, on one server, one run.

    python -m eval.run [--url URL] [--reps N] [--quick] [--workloads code,search]

Without ``--url`` it starts the embedded CPU server with the evaluation model (``--quick``:
the tiny default model) and ``--tool-partial-execution`` (without that flag if the launcher
rejects it; the server cells are then skipped). Each workload runs once per available mode
to warm up (regex compiled, prompt cached), then ``--reps`` rounds alternate the modes
(rotating their order every round). Writes ``eval/results/<timestamp>.json`` and
``eval/results/latest.json`` and prints the table and the parser's share of this client's
CPU time (how: ``eval/parser_cpu.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eval.results import format_table
from eval.session import EvalSession

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PARTIAL_FLAG = "--tool-partial-execution"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from eval.model import eval_model
    from eval.workload import load_workloads

    workloads = load_workloads(args.workloads.split(",") if args.workloads else None)
    model_path, config = eval_model(args.quick)
    with server(args.url, model_path) as (url, server_note):
        session = EvalSession(url, workloads, server_note=server_note)
        results = session.run(args.reps, model_config=config, model_path=model_path)
    results["quick"] = args.quick
    paths = write_results(results, Path(args.out_dir))
    print(format_table(results))
    print("written: " + ", ".join(str(p) for p in paths))
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an SGLang server; default: start the embedded one")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per workload and mode")
    parser.add_argument("--quick", action="store_true", help="the tiny default model")
    parser.add_argument("--workloads", help="comma-separated names; default: all")
    parser.add_argument("--out-dir", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


@contextmanager
def server(url: str | None, model_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, why server mode cannot run or None): the given server, or the embedded one."""
    if url:
        yield url, None
        return
    from conveyor_sgl.runtime.server_process import EmbeddedServer, ServerStartError

    model_args = ["--model-path", str(model_path)]
    try:
        with EmbeddedServer(extra_args=[*model_args, PARTIAL_FLAG]) as embedded:
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
