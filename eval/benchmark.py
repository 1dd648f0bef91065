"""The evaluation on public benchmarks: many items per workload, in every mode, on one server.

    python -m eval.benchmark [--model fast|eval] [--preset test|full] [--limit N]
                             [--groups g1,g2] [--url URL] [--out-dir DIR]

Items come from ``eval/datasets`` (HumanEval, code-interpreter programs, LLMCompiler's
ParallelQA/HotpotQA/movies, BFCL, database and calculator items), each forced to its
reference text while the decoding is the model's own. Then the multi-turn agents, the load
levels (1, 4, 8 programs at once) and early abort on the first exception. ``--model fast``
is the tiny default model (~6 ms/token here, near an 8B model's floor on an H100), ``eval``
the bigger one (~13 ms/token). Without ``--url`` the embedded server is started (CPU split
as in ``eval.serving``). Writes ``<out-dir>/<model>-<UTC stamp>.json`` and
``<model>-latest.json``; a group larger than its preset's limit is a seeded sample (the
results say so).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sglang as sgl

from eval import model as eval_model
from eval.bench_abort import run_early_abort
from eval.bench_agents import run_agents
from eval.bench_items import ItemRunner, summarize_group
from eval.bench_load import run_load
from eval.bench_table import format_table
from eval.datasets import GROUPS, describe_group, load_group
from eval.datasets.agents import load_agents
from eval.modes import MODES
from eval.serving import apply_cpu_split, cpu_split, server

OUT_DIR = Path(__file__).resolve().parent / "results" / "benchmark"
# Per preset: items per group (None: all), agents, load (group, items, levels), early abort.
PRESETS: dict[str, dict[str, Any]] = {
    # The suite's plumbing check: load on the quickest workload (its figures mean nothing).
    "test": {"limit": 2, "agents": 1, "load": ("calculator", 2, (1, 2)), "abort": 1},
    # `make benchmark` runs "full-eval" then "full": together 82 min on the 2-core host
    # (19 + 64). HumanEval runs in full with the fast model ("all"); other groups are seeded
    # samples of 30 (the results give each group's n and its source's size).
    "full": {
        "limit": 30,
        "all": ("code-light",),
        "agents": 6,
        "load": ("code-heavy", 4, (1, 4, 8)),
        "abort": 10,
    },
    "full-eval": {"limit": 8, "agents": 3, "load": None, "abort": 0},
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    model_path, config = eval_model.eval_model(quick=args.model == "fast")
    split = apply_cpu_split(cpu_split("auto"), embedded=not args.url)
    server_args = ["--cpus", split["server"]] if split.get("server") else []
    started = time.monotonic()
    with server(args.url, model_path, server_args) as (url, note):
        server_start_s = round(time.monotonic() - started, 1)
        backend = sgl.RuntimeEndpoint(url)
        results = run_benchmark(args, preset, backend, note)
        results["ms_per_token"] = eval_model.ms_per_token(url)
    total_s = round(time.monotonic() - started, 1)
    results["time_s"] |= {"server_start": server_start_s, "total": total_s}
    results |= {
        "model_name": args.model,
        "model": eval_model.describe(config, model_path),
        "cpu_split": split,
        "machine": {"platform": platform.platform()},
    }
    paths = write(results, Path(args.out_dir), args.model)
    print(format_table(results))
    print("written: " + ", ".join(map(str, paths)))
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("fast", "eval"), default="fast")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="full")
    parser.add_argument("--limit", type=int, help="items per group (overrides the preset)")
    parser.add_argument("--groups", help=f"comma-separated, of {','.join(GROUPS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", help="an SGLang server; default: start the embedded one")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    parser.add_argument("--skip", default="", help="comma-separated: agents,load,abort")
    return parser.parse_args(argv)


def run_benchmark(args: argparse.Namespace, preset: dict, backend: Any, note: str | None) -> dict:
    modes = [m for m in MODES if not (m == "server" and note)]
    runner = ItemRunner(backend, modes)
    spent: dict[str, Any] = {"groups": {}}  # where the run's wall time went, in seconds
    groups = {}
    for group in args.groups.split(",") if args.groups else GROUPS:
        limit = None if group in preset.get("all", ()) else (args.limit or preset["limit"])
        with _timed(spent["groups"], group):
            groups[group] = _run_group(runner, group, limit, args.seed)
    outside = {"runs": sum(r["latency_s"] for r in runner.rows)} | runner.overhead_s
    spent |= {key: round(seconds, 1) for key, seconds in outside.items()}
    out: dict[str, Any] = {
        "kind": "benchmark",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": args.seed,
        "preset": args.preset,
        "groups": groups,
        "items": runner.rows,
        "errors": runner.errors,
        "skipped": runner.skipped | ({"server": note} if note else {}),
        "time_s": spent,
    }
    skip = set(args.skip.split(",")) - {""}
    if preset["agents"] and "agents" not in skip:
        with _timed(spent, "agents"):
            out["agents"] = run_agents(load_agents(preset["agents"], args.seed), backend, modes)
    if preset["load"] and "load" not in skip:
        group, n, levels = preset["load"]
        with _timed(spent, "load"):
            load_items = load_group(group, limit=n, seed=args.seed)
            out["load"] = {"group": group, "levels": run_load(load_items, levels, modes, backend)}
    if preset["abort"] and "abort" not in skip:
        with _timed(spent, "abort"):
            buggy = _buggy(preset["abort"], args.seed)
            out["early_abort"] = run_early_abort(buggy, backend, modes[1:])
    return out


def _run_group(runner: ItemRunner, group: str, limit: int | None, seed: int) -> dict[str, Any]:
    items = load_group(group, limit=limit, seed=seed)
    total = len(load_group(group))
    before = len(runner.rows)
    runner.run(items, desc=group)
    names = {w.name for w in items}
    records = [r for r in runner.records if r.workload in names]
    return {
        "source": describe_group(group),
        "n_items": len(items),
        "of": total,
        "sampled": len(items) < total,
    } | summarize_group(runner.rows[before:], records)


@contextmanager
def _timed(into: dict[str, Any], key: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        into[key] = round(time.monotonic() - started, 1)


def _buggy(n: int, seed: int) -> list[Any]:
    """HumanEval solutions with a seeded bug whose tests fail (items without one skipped)."""
    from eval.datasets.bugs import seeded_bug

    found = []
    for w in load_group("code-light", limit=None, seed=seed):
        try:
            found.append(seeded_bug(w, seed))
        except ValueError:
            continue
        if len(found) == n:
            break
    return found


def write(results: dict[str, Any], out_dir: Path, model: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    text = json.dumps(results, indent=1, default=str) + "\n"
    paths = [out_dir / f"{model}-{stamp}.json", out_dir / f"{model}-latest.json"]
    for path in paths:
        path.write_text(text, encoding="utf-8")
    return paths


if __name__ == "__main__":
    main()
