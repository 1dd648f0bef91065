"""The latency bound and the efficiency of partial execution, from recorded tool timelines.

A run's tool timeline (``state.get_meta_info(name)["tool"]``) gives, per unit, when it was
decoded (``d_i``) and how long the tool worked on it (``t_i = finished_at - started_at``),
in seconds since the generation's request was sent. With the paper's schedule (each unit's
tool work starts once it is decoded and the tool before it is done):

    f_0 = 0,  f_i = max(f_{i-1}, d_i) + t_i,  bound = max(f_n, decode_end) + finish + tail

A tool that works on units in the background reports, per unit, the units it waited for
(``after``: search queries wait for none, a plan task for its dependencies); then
f_i = max(d_i, f_j for j in after) + t_i and the tool is done at max_i f_i. For a serial
tool (python: ``after`` is None) that is exactly the paper's recurrence. ``finish`` is the
tool's work after its last unit (result ready - last unit done, in a sequential run);
``tail`` is everything outside the call (the prompt, appending the result, the final
decode), kept as measured. The bound is computed from sequential runs, where tool times are
measured without overlap with decoding: ``bound_from_run`` turns one sequential run into the
best latency any partial execution of it could reach. t_i is the fastest time measured for
unit i in any run of the workload (``fastest_tool_times``): a sequential run starts all of a
planner's tasks at once at the end, and on the tool's own CPU they slow each other down.
For a tool that aborted (validation), decoding could have stopped at the unit that aborted,
so the bound ends there.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# Below this share of the sequential latency the possible saving is within run-to-run noise,
# and efficiency would be noise divided by noise (light tools: database, calculator).
MIN_SAVING_SHARE = 0.02


def schedule_finish(
    units: Sequence[Mapping[str, Any]], times: Sequence[float | None] | None = None
) -> float:
    """When the tool is done if each unit starts once it is decoded and the units it waits
    for are done: the previous one (``after`` None, a serial tool) or those it names.
    ``times[i]``, where given, replaces unit i's own tool time."""
    finish: list[float] = []
    for i, unit in enumerate(units):
        after = unit.get("after")
        waits = [i - 1] if after is None else after
        ready = max([unit["decoded_at"], *(finish[j] for j in waits if 0 <= j < i)])
        t = times[i] if times is not None and i < len(times) else None
        finish.append(ready + (tool_time(unit) if t is None else t))
    return max(finish, default=0.0)


def fastest_tool_times(tools: Sequence[Mapping[str, Any]]) -> list[float | None]:
    """Per unit index, the smallest tool time any of these runs measured (None: never ran).
    Runs of one workload decode the same forced text, so unit i is the same unit in each."""
    best: list[float | None] = []
    for tool in tools:
        for i, unit in enumerate(tool.get("units", [])):
            if unit.get("started_at") is None or unit.get("finished_at") is None:
                continue
            best.extend([None] * (i + 1 - len(best)))
            t = tool_time(unit)
            best[i] = t if best[i] is None else min(best[i], t)
    return best


def tool_time(unit: Mapping[str, Any]) -> float:
    """t_i: the tool's work on one unit (0 for a unit the tool never ran)."""
    started, finished = unit.get("started_at"), unit.get("finished_at")
    if started is None or finished is None:
        return 0.0
    return max(0.0, finished - started)


def executed_units(tool: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The units that count for the bound: all of them, or up to the one that aborted."""
    units = [u for u in tool["units"] if u.get("decoded_at") is not None]
    if tool.get("status") != "aborted":
        return units
    ran = [i for i, u in enumerate(units) if u.get("finished_at") is not None]
    return units[: ran[-1] + 1] if ran else units[:1]


def bound_from_run(
    latency_s: float, tool: Mapping[str, Any], times: Sequence[float | None] | None = None
) -> float:
    """The latency bound of one run (normally a sequential one) given its timeline.

    ``latency_s`` is the whole program's latency; the part before the request and after the
    result (prompt, appending the result, the final decode) is kept as measured. ``times``
    (``fastest_tool_times``) replaces the run's own tool times where given.
    """
    _, done = _best_schedule(tool, times)
    outside = latency_s - tool["result_ready_at"]  # before the request and after the result
    return outside + done


def wait_bound_from_run(
    tool: Mapping[str, Any], times: Sequence[float | None] | None = None
) -> float:
    """The shortest possible ``tool_wait`` given this run's decoding: what the tool still has
    to do once decoding ends, had each unit started as soon as it was decoded."""
    decode_end, done = _best_schedule(tool, times)
    return done - decode_end


def sequential_wait_of_run(
    tool: Mapping[str, Any], times: Sequence[float | None] | None = None
) -> float:
    """The ``tool_wait`` of this run's units had none started before decoding ended (the
    sequential schedule, with what each unit waits for kept: a serial tool one by one)."""
    units = executed_units(tool)
    decode_end = _decode_end(tool, units)
    units = [{**u, "decoded_at": decode_end} for u in units]
    _, done = _best_schedule({**tool, "units": units}, times)
    return done - decode_end


def tool_wait(tool: Mapping[str, Any]) -> float:
    """How long the program waited for the result after decoding ended (the time partial
    execution can hide; decoding itself it does not change, unless the tool aborts it)."""
    return max(0.0, tool["result_ready_at"] - tool["decode_finished_at"])


def _best_schedule(
    tool: Mapping[str, Any], times: Sequence[float | None] | None
) -> tuple[float, float]:
    """(decode end, result ready) had every unit started once decoded (``schedule_finish``);
    an aborted call's decoding could have ended at the unit that aborted."""
    units = executed_units(tool)
    decode_end = _decode_end(tool, units)
    finished = [u["finished_at"] for u in units if u.get("finished_at") is not None]
    # The tool's finish() and messages:
    finish = max(0.0, tool["result_ready_at"] - max([decode_end, *finished]))
    return decode_end, max(schedule_finish(units, times), decode_end) + finish


def _decode_end(tool: Mapping[str, Any], units: Sequence[Mapping[str, Any]]) -> float:
    """When decoding ended, or could have (an aborted call: at the unit that aborted)."""
    aborted = tool.get("status") == "aborted" and units
    decode_end = units[-1]["decoded_at"] if aborted else tool["decode_finished_at"]
    return max(decode_end, units[-1]["decoded_at"]) if units else decode_end


def efficiency(
    sequential_s: float, partial_s: float, bound_s: float, latency_s: float | None = None
) -> float | None:
    """(sequential - partial) / (sequential - bound): the share of the possible saving. For
    tool waits rather than latencies, ``latency_s`` (the sequential latency) sets the noise
    floor; None if the possible saving is below it."""
    possible = sequential_s - bound_s
    if possible < MIN_SAVING_SHARE * (sequential_s if latency_s is None else latency_s):
        return None
    return (sequential_s - partial_s) / possible


def reduction(sequential_s: float, partial_s: float) -> float:
    """Latency saved, as a share of the sequential latency (negative: slower)."""
    return (sequential_s - partial_s) / sequential_s if sequential_s > 0 else 0.0


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))
