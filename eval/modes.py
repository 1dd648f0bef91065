"""The three ways the benchmark runs an item, and the one program they all run.

- ``sequential``: the baseline, ``partial_tool(..., partial=False)``: the tool gets the whole
  call once decoding ends (parsed on the client, as stock tool calling would);
- ``client``: partial execution, the parser and the tool sessions in this process;
- ``server``: partial execution inside a server launched with ``--tool-partial-execution``.

A mode this build or this server cannot run is a skip with its reason, never a crash.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any

import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from eval.workload import Workload

MODES = ("sequential", "client", "server")
CALL = "call"  # the variable of the tool-call generation in every workload program


class ModeUnavailable(Exception):
    """This mode cannot run here; the message says why (the cell is reported as skipped)."""


@dataclass(frozen=True)
class RunRecord:
    workload: str
    mode: str
    latency_s: float
    tool: dict[str, Any]  # the timeline, as state.get_meta_info(CALL)["tool"]
    round: int = 0  # the round it ran in: the modes of one round run back to back


def mode_arguments(mode: str) -> dict[str, Any]:
    """partial_tool's arguments for ``mode``; raises ModeUnavailable if this build lacks it."""
    takes_mode = "mode" in inspect.signature(partial_tool).parameters
    if mode == "sequential":
        return {"partial": False, **({"mode": "client"} if takes_mode else {})}
    if mode == "client":
        return {"partial": True, **({"mode": "client"} if takes_mode else {})}
    if mode == "server":
        if not takes_mode:
            raise ModeUnavailable("partial_tool has no 'mode' argument in this build")
        return {"partial": True, "mode": "server"}
    raise ValueError(f"unknown mode {mode!r}; modes: {MODES}")


@sgl.function
def workload_program(s, w: Workload, tool_args: dict[str, Any]):
    s += sgl.user(w.prompt)
    s += sgl.assistant_begin()
    s += w.prefix + partial_tool(CALL, tool=w.tool, config=w.config, **tool_args, **w.gen_args())
    s += w.suffix + tool_result(CALL, timeout=w.result_timeout_s)
    s += sgl.gen("answer", max_tokens=len(w.answer) + 8, regex=w.answer_regex)
    s += sgl.assistant_end()


def run_once(w: Workload, mode: str, backend: Any) -> RunRecord:
    """One timed run of ``w`` in ``mode``."""
    tool_args = mode_arguments(mode)
    started = time.monotonic()
    state = workload_program.run(w, tool_args, backend=backend)
    state.sync()  # run() returns once the program is submitted, not when it is done
    latency = time.monotonic() - started
    if state.error():
        raise RuntimeError(f"{w.name}/{mode}: the program failed: {state.error()}")
    tool = state.get_meta_info(CALL)["tool"]
    if mode == "server" and tool.get("mode") != "server":
        raise ModeUnavailable(
            f"the server did not run the tool (timeline mode {tool.get('mode')!r})"
        )
    return RunRecord(w.name, mode, latency, tool)
