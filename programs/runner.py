"""The command line shared by the tool-suite example programs.

    python -m programs.<name>               # on the embedded CPU server
    python -m programs.<name> --url URL     # on any SGLang server

Runs the program once to warm up (regex compilation, prefix cache), then once as the
sequential baseline and once with partial execution, and prints the tool's output and
timeline for each.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import nullcontext

import sglang as sgl
from sglang.lang.interpreter import ProgramState

from programs.code_solver import print_timeline

RunOnce = Callable[[bool], ProgramState]


def checked(state: ProgramState) -> ProgramState:
    if state.error():
        raise state.error()
    return state


def demo(
    description: str,
    run_once: RunOnce,
    tool_var: str,
    answer_var: str = "answer",
    extra: Callable[[], None] | None = None,
) -> None:
    """``extra`` runs last, on the same server (a program's second scenario)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", help="an SGLang server; default: start the embedded one")
    args = parser.parse_args()
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    with nullcontext(args.url) if args.url else EmbeddedServer() as server:
        url = server if isinstance(server, str) else server.url
        sgl.set_default_backend(sgl.RuntimeEndpoint(url))
        run_once(True)  # warm-up
        for partial in (False, True):
            state = run_once(partial)
            tool = state.get_meta_info(tool_var)["tool"]
            label = (
                f"partial execution ({tool['mode']} mode)"
                if partial
                else "sequential baseline (the tool starts when decoding ends)"
            )
            print(f"\n=== {label} ===")
            print("tool output:\n" + tool["output"])
            print_timeline(tool, label)
            print(f"{answer_var}: {state[answer_var]!r}")
        if extra is not None:
            extra()
