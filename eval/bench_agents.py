"""Multi-turn agents: 3-5 rounds of tool call -> result -> next call in one program.

Each round is one user turn (the task, or the next instruction) and one assistant turn: the
tool call (forced to the round's reference), its result appended, the round's short forced
answer. Per program and mode: the whole latency and, per round, decoding and the wait for
the tool after it; the reduction pairs each program with its own sequential run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sglang as sgl
from tqdm import tqdm

from conveyor_sgl import partial_tool, tool_result
from eval import latency_bound
from eval.datasets.agents import AgentItem
from eval.distribution import dist
from eval.modes import MODES, mode_arguments


@sgl.function
def agent_program(s, item: AgentItem, tool_args: dict[str, Any]):
    for k, w in enumerate(item.rounds):
        s += sgl.user(item.prompt if k == 0 else w.prompt)
        s += sgl.assistant_begin()
        s += w.prefix + partial_tool(
            f"r{k}", tool=w.tool, config=w.config, **tool_args, **w.gen_args()
        )
        s += w.suffix + tool_result(f"r{k}", timeout=w.result_timeout_s)
        s += sgl.gen(f"a{k}", max_tokens=len(w.answer) + 8, regex=w.answer_regex)
        s += sgl.assistant_end()


def run_agent(item: AgentItem, mode: str, backend: Any) -> dict[str, Any]:
    started = time.monotonic()
    state = agent_program.run(item, mode_arguments(mode), backend=backend)
    state.sync()
    latency = time.monotonic() - started
    if state.error():
        raise RuntimeError(f"{item.name}/{mode}: {state.error()}")
    rounds = []
    for k, w in enumerate(item.rounds):
        tool = state.get_meta_info(f"r{k}")["tool"]
        rounds.append(
            {
                "round": k + 1,
                "tool": w.tool,
                "status": tool.get("status"),
                "expect": w.expect,
                "decode_s": tool["decode_finished_at"],
                "wait_s": latency_bound.tool_wait(tool),
            }
        )
    return {"item": item.item, "mode": mode, "latency_s": latency, "rounds": rounds}


def run_agents(items: Sequence[AgentItem], backend: Any, modes: Sequence[str]) -> dict:
    programs: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for i, item in enumerate(tqdm(items, desc="agents", unit="program")):
        turn = i % len(modes)
        runs = [("warm-up", modes[-1])] + [("run", m) for m in [*modes[turn:], *modes[:turn]]]
        for kind, mode in runs:  # the warm-up compiles the regexes and caches the prompt
            try:
                run = run_agent(item, mode, backend)
            except Exception as e:  # noqa: BLE001 - one failed program must not end the run
                errors.append({"item": item.name, "mode": mode, "error": repr(e)[:500]})
                if kind == "warm-up":
                    break
                continue
            if kind == "run":
                programs.append(run)
    return {"n": len(items), "programs": programs, "modes": summarize(programs), "errors": errors}


def summarize(programs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    sequential = {p["item"]: p["latency_s"] for p in programs if p["mode"] == "sequential"}
    out: dict[str, Any] = {}
    for mode in MODES:
        mine = [p for p in programs if p["mode"] == mode]
        if not mine:
            continue
        paired = [
            latency_bound.reduction(sequential[p["item"]], p["latency_s"])
            for p in mine
            if p["item"] in sequential and mode != "sequential"
        ]
        out[mode] = {
            "n": len(mine),
            "latency_s": dist(p["latency_s"] for p in mine),
            "reduction": dist(paired),
            "round_wait_s": dist(r["wait_s"] for p in mine for r in p["rounds"]),
        }
    return out
