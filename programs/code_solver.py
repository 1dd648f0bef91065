"""A code-interpreter program: the model writes Python, each finished statement runs at once.

    python -m programs.code_solver                 # on the embedded CPU server
    python -m programs.code_solver --url URL       # on any SGLang server

The embedded model has random weights, so the code is forced with a regex to a reference
program; the decoding (and so the timing) is still the model's own.
"""

from __future__ import annotations

import argparse
import re
from contextlib import nullcontext

import sglang as sgl

from conveyor_sgl import partial_tool, tool_result

TASK = "Count the primes below 200000, their most common gaps, and a sum of squares."
REFERENCE_CODE = """import math
from collections import Counter

def is_prime(n):
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))

primes = [n for n in range(200_000) if is_prime(n)]
print("primes below 200000:", len(primes))
gaps = Counter(b - a for a, b in zip(primes, primes[1:]))
print("most common gaps:", gaps.most_common(3))
squares = sum(i * i for i in range(3_000_000))
print("sum of squares:", squares)
"""


def forced(text: str, end: str = "") -> str:
    """A regex that admits exactly ``text`` followed by ``end``."""
    return re.escape(text) + re.escape(end)


@sgl.function
def solve(s, task, code_regex=None, partial=True, mode=None):
    """``mode``: where the tool runs, "client", "server" or None (the server if it can)."""
    s += sgl.user(task)
    s += sgl.assistant_begin()
    s += "```python\n" + partial_tool(
        "code", tool="python", partial=partial, mode=mode, stop="```", max_tokens=768,
        regex=code_regex,
    )  # fmt: skip
    s += "```\nOutput:\n" + tool_result("code")
    s += sgl.gen("answer", max_tokens=32)
    s += sgl.assistant_end()


def print_timeline(tool: dict, label: str) -> None:
    print(f"{label}: status={tool['status']} error={tool['error']}")
    print(f"{'unit':<44} {'decoded':>8} {'sent':>8} {'started':>8} {'finished':>8}")
    for unit in tool["units"]:
        first_line = unit["text"].strip().splitlines()[0][:42]
        times = [unit[k] for k in ("decoded_at", "sent_at", "started_at", "finished_at")]
        print(
            f"{first_line:<44} "
            + " ".join(f"{t:8.3f}" if t is not None else "       -" for t in times)
        )
    print(
        f"decoding finished at {tool['decode_finished_at']:.3f} s, "
        f"result ready at {tool['result_ready_at']:.3f} s"
    )


def run_once(partial: bool) -> sgl.ProgramState:
    state = solve.run(TASK, code_regex=forced(REFERENCE_CODE, "```"), partial=partial)
    if state.error():
        raise state.error()
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an SGLang server; default: start the embedded one")
    args = parser.parse_args()
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    with nullcontext(args.url) if args.url else EmbeddedServer() as server:
        url = server if isinstance(server, str) else server.url
        sgl.set_default_backend(sgl.RuntimeEndpoint(url))
        run_once(partial=True)  # warm-up: compiles the regex, fills the prefix cache
        for partial in (False, True):
            state = run_once(partial)
            tool = state.get_meta_info("code")["tool"]
            label = (
                f"partial execution ({tool['mode']} mode)"
                if partial
                else "sequential baseline (the tool starts when decoding ends)"
            )
            print(f"\n=== {label} ===")
            print("tool output:\n" + tool["output"])
            print_timeline(tool, label)
            answer = state.get_meta_info("answer")
            print(
                f"answer: cached_tokens={answer['cached_tokens']} of "
                f"prompt_tokens={answer['prompt_tokens']}"
            )


if __name__ == "__main__":
    main()
