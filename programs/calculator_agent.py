"""A calculator program: the model writes one expression per line; each runs when decoded.

    python -m programs.calculator_agent [--url URL]

A light tool: the gain from partial execution is near zero here, and must never be a loss.
The embedded model has random weights, so the lines are forced with a regex.
"""

from __future__ import annotations

import sglang as sgl
from sglang.lang.interpreter import ProgramState

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced
from programs.runner import checked, demo

TASK = "A circle has radius 2.5 m. Give its area, its circumference and the area of 12 of them."
REFERENCE_LINES = """r = 2.5
area = pi * r ** 2
circumference = 2 * pi * r
12 * area
round(area * 12, 1)
"""
FENCE = "```"


@sgl.function
def calculate(s, task, lines_regex=None, partial=True):
    s += sgl.user(task + " Write one expression per line.")
    s += sgl.assistant_begin()
    s += (
        FENCE
        + "\n"
        + partial_tool(
            "lines",
            tool="calculator",
            partial=partial,
            stop=FENCE,
            max_tokens=256,
            regex=lines_regex,
        )
    )
    s += FENCE + "\nResults:\n" + tool_result("lines", timeout=60)
    s += sgl.gen("answer", max_tokens=24)
    s += sgl.assistant_end()


def run_once(partial: bool) -> ProgramState:
    return checked(calculate.run(TASK, lines_regex=forced(REFERENCE_LINES, FENCE), partial=partial))


if __name__ == "__main__":
    demo(__doc__.splitlines()[0], run_once, "lines")
