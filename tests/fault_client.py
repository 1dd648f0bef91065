"""A client process for the fault tests: ``python fault_client.py URL MODE WHEN``.

Runs one partial tool whose code sleeps for ten minutes, prints ``ready`` once it is at
``WHEN`` (``decoding``: the first text arrived; ``waiting``: decoding ended and the program
waits for the result), then waits; the test kills it there.
"""

from __future__ import annotations

import sys
import time

import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced

ENDLESS = "import time\ntime.sleep(600)\n"
# Enough lines that decoding lasts well past the first one on the CPU model.
LONG = ENDLESS + "".join(f"x{i} = {i}\n" for i in range(60))


@sgl.function
def endless(s, code, mode):
    s += "Code:\n" + partial_tool(
        "code", tool="python", mode=mode, stop="```", max_tokens=600, regex=forced(code, "```")
    )
    s += tool_result("code", timeout=600)


def main(url: str, mode: str, when: str) -> None:
    code = LONG if when == "decoding" else ENDLESS
    state = endless.run(code=code, mode=mode, backend=sgl.RuntimeEndpoint(url), stream=True)
    pieces = state.text_iter("code")
    next(pieces)  # the first piece of the generation
    if when == "waiting":
        for _ in pieces:  # to the end of decoding: the program waits for the result
            pass
    print("ready", flush=True)
    time.sleep(600)  # killed here


if __name__ == "__main__":
    main(*sys.argv[1:4])
