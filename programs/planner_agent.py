"""A planning program in LLMCompiler's format: each task starts when its line is decoded.

    python -m programs.planner_agent [--url URL]

Tasks whose inputs (``$N``) are ready run at once, in parallel, while the rest of the plan
is still being decoded. Search tasks pay a *modelled* latency of 200 ms (a sleep in the tool
standing for a web API). The plan is forced with a regex (the embedded model has random
weights).
"""

from __future__ import annotations

import sglang as sgl
from sglang.lang.interpreter import ProgramState

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced
from programs.runner import checked, demo

TASK = "Find how to parse JSON and how to compile a regex, and compute 2**16 - 1 divided by 255."
REFERENCE_PLAN = """Thought: two independent searches and a computation, then join them.
1. search("deserialize a json document")
2. search("compile a regular expression pattern")
3. calculator("2 ** 16 - 1")
4. python("print($3 // 255)")
5. join($1, $2, $4)
<END_OF_PLAN>
"""
FENCE = "```"
CONFIG = {"search": {"top_k": 1, "delay_ms": 200}}


@sgl.function
def plan_and_run(s, task, plan_regex=None, partial=True):
    s += sgl.user(task + " Write a numbered plan of tool calls, then <END_OF_PLAN>.")
    s += sgl.assistant_begin()
    s += (
        FENCE
        + "\n"
        + partial_tool(
            "plan",
            tool="planner",
            partial=partial,
            config=CONFIG,
            stop=FENCE,
            max_tokens=384,
            regex=plan_regex,
        )
    )
    s += FENCE + "\nObservations:\n" + tool_result("plan", timeout=60)
    s += sgl.gen("answer", max_tokens=24)
    s += sgl.assistant_end()


def run_once(partial: bool) -> ProgramState:
    return checked(
        plan_and_run.run(TASK, plan_regex=forced(REFERENCE_PLAN, FENCE), partial=partial)
    )


if __name__ == "__main__":
    demo(__doc__.splitlines()[0], run_once, "plan")
