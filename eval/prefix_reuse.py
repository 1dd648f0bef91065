"""Prefix reuse of the generation after a tool result: stock frontend vs partial_tool.

    python -m eval.prefix_reuse [--url URL] [--runs 5]

Both programs force the same code with a regex, append the same tool output, then `gen`.
The stock one appends the output as text (the server re-tokenizes everything); the
partial_tool one keeps the exact token ids. Prints the final generation's cached_tokens as a
share of the tokens before the tool output (the code generation's prompt + completion)
(median over runs; the server's cache is flushed before each).
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import nullcontext

import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import REFERENCE_CODE, TASK, forced


@sgl.function
def stock_program(s, task, code_regex, output):
    s += sgl.user(task)
    s += sgl.assistant_begin()
    s += "```python\n" + sgl.gen("code", stop="```", max_tokens=768, regex=code_regex)
    s += "```\nOutput:\n" + output
    s += sgl.gen("answer", max_tokens=16)
    s += sgl.assistant_end()


@sgl.function
def partial_program(s, task, code_regex, output):
    s += sgl.user(task)
    s += sgl.assistant_begin()
    s += "```python\n" + partial_tool(
        "code", tool="python", stop="```", max_tokens=768, regex=code_regex
    )
    s += "```\nOutput:\n" + tool_result("code")
    s += sgl.gen("answer", max_tokens=16)
    s += sgl.assistant_end()


def reuse(program, backend, output: str) -> tuple[int, int]:
    backend.flush_cache()
    state = program.run(TASK, forced(REFERENCE_CODE, "```"), output, backend=backend)
    if state.error():
        raise state.error()
    code, answer = state.get_meta_info("code"), state.get_meta_info("answer")
    # The prompt and generated code were computed once already; only they can be reused.
    return answer["cached_tokens"], code["prompt_tokens"] + code["completion_tokens"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    with nullcontext(args.url) if args.url else EmbeddedServer() as server:
        url = server if isinstance(server, str) else server.url
        backend = sgl.RuntimeEndpoint(url)
        output = partial_program.run(
            TASK, forced(REFERENCE_CODE, "```"), "", backend=backend
        ).get_meta_info("code")["tool"]["output"]
        for name, program in (
            ("stock sglang frontend", stock_program),
            ("conveyor_sgl partial_tool", partial_program),
        ):
            pairs = [reuse(program, backend, output) for _ in range(args.runs)]
            shares = [cached / prompt for cached, prompt in pairs]
            cached, prompt = pairs[len(pairs) // 2]
            print(
                f"{name:28s} cached_tokens {cached:4d} of {prompt:4d} preceding tokens "
                f"(median share {statistics.median(shares):.1%} over {args.runs} runs)"
            )


if __name__ == "__main__":
    main()
