"""Scale-out through sglang-router: the same programs through the router and against one
server, in client and server mode: latency, results, prefix reuse, and how the router spread
them.

    python -m eval.router_bench [--programs 8]

Starts two embedded servers (tiny model, ``--tool-partial-execution``, small KV pools) and
the router in front of them, runs ``--programs`` programs per (target, mode) one at a time
(each with a fresh prompt, so nothing is cached before it), prints JSON and ends them all.
Prefix reuse is the share of the answer's prompt the server found cached of what the tool
call's generation had cached (its prompt and output): 1.0 is the whole prefix.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.embedded.router_process import Router
from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer
from programs.code_solver import forced

CODE = "import math\nfor n in range(3):\n    print(n, math.factorial(n + 5))\nprint('done')\n"
ANSWER = "Printed the factorials."
FLAGS = ["--tool-partial-execution", "--max-total-tokens", "8192"]
FLAGS += ["--tool-max-sessions-per-client", "64"]  # every program comes from one address


@sgl.function
def program(s, nonce, mode):
    s += sgl.user(f"Task {nonce}: print a few factorials.")
    s += sgl.assistant_begin()
    s += "```python\n" + partial_tool(
        "code", tool="python", mode=mode, max_tokens=128, regex=forced(CODE)
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=60)
    s += sgl.gen("answer", max_tokens=32, regex=forced(ANSWER))
    s += sgl.assistant_end()


def run(url: str, mode: str) -> dict[str, Any]:
    started = time.monotonic()
    state = program.run(nonce=uuid.uuid4().hex, mode=mode, backend=sgl.RuntimeEndpoint(url))
    state.sync()  # run() returns once the program is submitted
    latency = time.monotonic() - started
    if state.error():
        raise RuntimeError(state.error())
    call, answer = state.get_meta_info("code"), state.get_meta_info("answer")
    tool = call["tool"]
    return {
        "latency_s": latency,
        "reuse": answer["cached_tokens"] / (call["prompt_tokens"] + call["completion_tokens"]),
        "result": (tool["mode"], tool["status"], tool["output"], state["answer"]),
    }


def prefill_count(server: EmbeddedServer) -> int:
    """Prefill batches in the server's log: which server the router sent work to."""
    return server.log_path.read_text(errors="replace").count("Prefill batch")


def concurrent(url: str, mode: str, n: int, servers: tuple[EmbeddedServer, ...]) -> dict[str, Any]:
    """``n`` programs at once through the router: cache-aware routing balances load."""
    before = [prefill_count(s) for s in servers]
    with ThreadPoolExecutor(n) as pool:
        runs = list(pool.map(lambda _: run(url, mode), range(n)))
    return {
        "latency_s_median": round(statistics.median(r["latency_s"] for r in runs), 3),
        "prefix_reuse_min": round(min(r["reuse"] for r in runs), 3),
        "results": sorted({r["result"] for r in runs}),
        "prefill_batches_per_server": [
            prefill_count(s) - b for s, b in zip(servers, before, strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=8)
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"programs": args.programs}
    with (
        EmbeddedServer(extra_args=FLAGS) as a,
        EmbeddedServer(extra_args=FLAGS) as b,
        Router([a.url, b.url]) as router,
    ):
        requests.get(a.url + "/conveyor/info", timeout=10).raise_for_status()
        for mode in ("client", "server"):
            for target, url in (("one server", a.url), ("router", router.url)):
                run(url, mode)  # warm-up: regex compiled on the server(s) it reaches
                before = (prefill_count(a), prefill_count(b))
                runs = [run(url, mode) for _ in range(args.programs)]
                after = (prefill_count(a), prefill_count(b))
                out[f"{mode} / {target}"] = {
                    "latency_s_median": round(statistics.median(r["latency_s"] for r in runs), 3),
                    "prefix_reuse_min": round(min(r["reuse"] for r in runs), 3),
                    "results": sorted({r["result"] for r in runs}),
                    "prefill_batches_per_server": [
                        x - y for x, y in zip(after, before, strict=True)
                    ],
                }
            out[f"{mode} / router, all at once"] = concurrent(
                router.url, mode, args.programs, (a, b)
            )
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
