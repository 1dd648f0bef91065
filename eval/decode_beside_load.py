"""Decode speed of the embedded server alone and beside one busy process, per torch thread
count: why the launcher gives the CPU server one thread (``OMP_NUM_THREADS=1``).

    python -m eval.decode_beside_load [--model fast|eval|default] [--threads 1,2] [--runs 3]

For each thread count, one embedded server (``OMP_NUM_THREADS`` set for it), then
``--tokens`` tokens with ignore_eos, one stream: ms per token alone, then while one other
process spins on a core (as a tool worker does while the model decodes). Prints the medians
and the slowdown beside the busy process.

Not ``eval.model.ms_per_token``: its streaming reader (a read per byte) is itself a busy
process beside the server, so "alone" would not be alone (measured with it, the default
model's two threads were 6.9 ms/token alone against 4.3 for one).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import requests

from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer
from eval.model import eval_model

SPIN = "while True: pass"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("default", "fast", "eval"), default="default")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=300)
    args = parser.parse_args(argv)
    extra = (
        []
        if args.model == "default"
        else ["--model-path", str(eval_model(args.model == "fast")[0])]
    )
    print(f"model {args.model}, {args.tokens} tokens, median of {args.runs} runs")
    print(f"{'threads':>7}  {'alone ms/token':>14}  {'beside a busy process':>21}  {'slowdown':>8}")
    for threads in [int(t) for t in args.threads.split(",")]:
        with EmbeddedServer(extra_args=extra, env={"OMP_NUM_THREADS": str(threads)}) as server:
            alone, beside = measure(server.url, args.tokens, args.runs)
        print(f"{threads:>7}  {alone:>14.2f}  {beside:>21.2f}  {beside / alone:>7.1f}x")


def measure(url: str, tokens: int, runs: int) -> tuple[float, float]:
    """Median ms per token alone, then beside one spinning process."""
    decode(url, 16)  # warm-up
    alone = statistics.median(decode(url, tokens) for _ in range(runs))
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])  # noqa: S603 (our own code)
    try:
        beside = statistics.median(decode(url, tokens) for _ in range(runs))
    finally:
        spinner.kill()
        spinner.wait()
    return alone, beside


def decode(url: str, tokens: int) -> float:
    sampling = {"max_new_tokens": tokens, "ignore_eos": True, "temperature": 0}
    started = time.monotonic()
    answer = requests.post(
        url + "/generate", json={"text": "Count:", "sampling_params": sampling}, timeout=900
    )
    answer.raise_for_status()
    return (time.monotonic() - started) / tokens * 1000


if __name__ == "__main__":
    main()
