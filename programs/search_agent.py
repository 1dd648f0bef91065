"""A search program: the model writes one query per line; each is sent when its line ends.

    python -m programs.search_agent [--url URL]

Queries run concurrently in the tool while later ones are still being decoded. Retrieval is
BM25 over this Python's own documentation; each query pays a *modelled* latency of
``DELAY_MS`` (a sleep in the tool standing for a web search API's network time); set
``service_url`` in ``CONFIG`` to use ``python -m conveyor_sgl.tools.search_service``
instead. The queries are forced with a regex (the embedded model has random weights).
"""

from __future__ import annotations

import sglang as sgl
from sglang.lang.interpreter import ProgramState

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced
from programs.runner import checked, demo

TASK = "How do I read JSON from a file, match a regular expression and sort the results?"
REFERENCE_QUERIES = """deserialize a json document from a file
compile a regular expression pattern
return a new sorted list from an iterable
"""
DELAY_MS = 200
CONFIG = {"top_k": 2, "delay_ms": DELAY_MS}
FENCE = "```"


@sgl.function
def research(s, task, queries_regex=None, partial=True):
    s += sgl.user(task + " Write one search query per line.")
    s += sgl.assistant_begin()
    s += (
        FENCE
        + "\n"
        + partial_tool(
            "queries",
            tool="search",
            partial=partial,
            config=CONFIG,
            stop=FENCE,
            max_tokens=256,
            regex=queries_regex,
        )
    )
    s += FENCE + "\nSearch results:\n" + tool_result("queries", timeout=60)
    s += sgl.gen("answer", max_tokens=24)
    s += sgl.assistant_end()


def run_once(partial: bool) -> ProgramState:
    regex = forced(REFERENCE_QUERIES, FENCE)
    return checked(research.run(TASK, queries_regex=regex, partial=partial))


if __name__ == "__main__":
    demo(__doc__.splitlines()[0], run_once, "queries")
