"""Do programs keep their prefix cached while their tool runs, under memory pressure?

    python -m eval.prefix_retention_sweep                      # starts the embedded server
    python -m eval.prefix_retention_sweep --programs 1,4,6,8,12 --rounds 2 --tool-s 2

One embedded server with a small KV pool (``--max-total-tokens 4096``, about six programs'
prefixes) and server mode on. Each program has its own ~650-token prefix, a Python tool call
forced to take ``--tool-s`` seconds (``time.sleep``), then a short answer. N programs start
at once; per program: did the answer find the prefix cached (``meta_info["prefix_reuse"]``:
its cached tokens cover the tool call's prompt), the answer's latency (``e2e_latency``: its
request's time in the server, queueing and re-prefill included) and the program's wall
time; per point, throughput (programs per second) and the tokens SGLang evicted. Each point
runs in both modes (client: the tool runs here; server: inside the server) with prefix holds
off (the program does not ask: stock SGLang's LRU) and on (the default), the cache flushed
before each. Prints one table and, with ``--json``, writes the points.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from typing import Any

import requests
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.primitives.prefix_hold import HOLD_S_ENV
from conveyor_sgl.runtime.server.protocol import PREFIX_HOLD_STATE_KEY

POOL_TOKENS = 4096
WORDS = "alpha beta gamma delta kernel cache tensor token radix prefix tool agent query plan"


@sgl.function
def tool_program(s, prefix, code_regex, mode):
    s += prefix + "\n```python\n"
    s += partial_tool("code", tool="python", mode=mode, stop="```", max_tokens=64, regex=code_regex)
    s += "```\nOutput:\n" + tool_result("code")
    s += "Answer:" + sgl.gen("answer", max_tokens=4, regex="[a-z]{4}")


def prefixes(n: int, words: int, seed: str) -> list[str]:
    """``n`` distinct prefixes of ``words`` words (each its own program's context)."""
    vocab = WORDS.split()
    out = []
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")  # noqa: S311 - a seeded text
        out.append(f"Program {i} {seed}: " + " ".join(rng.choice(vocab) for _ in range(words)))
    return out


def run_point(url: str, n: int, mode: str, hold: bool, args: argparse.Namespace) -> dict:
    backend = sgl.RuntimeEndpoint(url)
    backend.flush_cache()
    evicted_before, holds_before = _evicted(url), _hold_state(url)
    code = f"import time\ntime.sleep({args.tool_s})\nprint('ok')\n"
    regex = re.escape(code) + re.escape("```")
    os.environ[HOLD_S_ENV] = "" if hold else "0"  # the program asks for holds, or not
    batch = [
        {"prefix": p, "code_regex": regex, "mode": mode}
        for p in prefixes(n, args.words, f"{mode}-{hold}-{time.monotonic_ns()}")
    ]
    started = time.monotonic()
    states = tool_program.run_batch(batch, backend=backend, num_threads=n)
    wall = time.monotonic() - started
    programs = [_program(state) for state in states]
    kept = sum(1 for p in programs if p["reused"])
    return {
        "programs": n,
        "mode": mode,
        "holds": "on" if hold else "off",
        "kept": kept,
        "errors": sum(1 for p in programs if p["error"]),
        "answer_latency_s": _median(p["answer_latency_s"] for p in programs),
        "program_wall_s": wall,
        "throughput_programs_per_s": n / wall,
        "evicted_tokens": _evicted(url) - evicted_before,
        "holds_state": _hold_delta(holds_before, _hold_state(url)),
        "prefix_tokens": _median(p["prefix_tokens"] for p in programs),
    }


def _program(state: Any) -> dict[str, Any]:
    if state.error() is not None:
        return {"error": repr(state.error()), "reused": False}
    answer = state.get_meta_info("answer") or {}
    reuse = answer.get("prefix_reuse") or {}
    return {
        "error": None,
        "reused": bool(reuse.get("reused")),
        "prefix_tokens": reuse.get("prefix_tokens"),
        "answer_latency_s": answer.get("e2e_latency"),
    }


def _median(values: Any) -> float | None:
    numbers = [v for v in values if isinstance(v, int | float)]
    return statistics.median(numbers) if numbers else None


def _evicted(url: str) -> float:
    """SGLang's evicted-tokens counter (0 without metrics)."""
    try:
        text = requests.get(url + "/metrics", timeout=10).text
    except requests.RequestException:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith("sglang:evicted_tokens_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _hold_state(url: str) -> dict[str, Any]:
    """The scheduler's prefix-hold counters (``/server_info``)."""
    info = requests.get(url + "/server_info", timeout=10).json()
    return dict(info["internal_states"][0].get(PREFIX_HOLD_STATE_KEY) or {})


def _hold_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Holds taken, refused and released (by reason) during one point."""
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("taken", "refused")}
    released = after.get("released") or {}
    for reason, count in released.items():
        delta[reason] = count - (before.get("released") or {}).get(reason, 0)
    return {k: v for k, v in delta.items() if v}


def table(points: list[dict]) -> str:
    head = (
        "programs  mode    holds  kept   answer latency  wall     programs/s  evicted  "
        "holds taken, refused, given up by reason"
    )
    rows = [head, "-" * len(head)]
    for p in points:
        latency = p["answer_latency_s"]
        rows.append(
            f"{p['programs']:>8}  {p['mode']:<6}  {p['holds']:<5}  "
            f"{p['kept']:>2}/{p['programs']:<2}  "
            f"{(f'{latency:.3f} s' if latency is not None else '-'):>14}  "
            f"{p['program_wall_s']:6.2f} s  {p['throughput_programs_per_s']:10.3f}  "
            f"{p['evicted_tokens']:7.0f}  {_holds_text(p['holds_state'])}"
            + (f"  errors {p['errors']}" if p["errors"] else "")
        )
    return "\n".join(rows)


def _holds_text(state: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in state.items()) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running server (started with a small pool)")
    parser.add_argument("--programs", default="1,4,6,8,12")
    parser.add_argument("--modes", default="client,server")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the sweep")
    parser.add_argument("--tool-s", type=float, default=2.0)
    parser.add_argument("--words", type=int, default=270, help="prefix words (~650 tokens)")
    parser.add_argument("--json", help="write the points here")
    parser.add_argument("--server-flags", default="", help="more flags for the server")
    args = parser.parse_args()
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    flags = ["--max-total-tokens", str(POOL_TOKENS), "--enable-metrics"]
    flags += ["--tool-partial-execution", "--tool-max-sessions-per-client", "64"]
    flags += args.server_flags.split()
    server = None if args.url else EmbeddedServer(extra_args=flags)
    url = args.url or server.__enter__().url  # type: ignore[union-attr]
    points = []
    try:
        for _ in range(args.rounds):
            for n in [int(x) for x in args.programs.split(",")]:
                for mode in args.modes.split(","):
                    for hold in (False, True):
                        points.append(run_point(url, n, mode, hold, args))
                        print(table(points[-1:]).splitlines()[-1], flush=True)
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    print(table(points))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(points, f, indent=1)


if __name__ == "__main__":
    main()
