"""Runs of one item -> its cells: per mode, latency, the bound, efficiency and the waits.

The benchmark (``bench_items``) summarises each item's runs here, one run per mode. A cell
that could not run has ``"runs": 0``, nulls, and ``"skipped"`` with the reason. The bound is
the item's: the median over its sequential runs of ``latency_bound.bound_from_run`` (their
decoding, with each unit's fastest tool time in any run); every cell carries it.

``efficiency`` and ``reduction`` are paired: computed per round, from that round's
sequential run (its latency and its bound) and that round's run of the mode, then the
median over rounds (the benchmark runs one round per item). ``latency_s`` is the plain
median of the mode's runs.

Latency is decoding plus the wait for the tool after it, and on this shared VM decoding
alone varies by 10-30% from run to run, often more than the whole saving. So each cell also
splits the two: ``decode_s`` (median end of the call's decoding, which partial execution
should not change; a slowdown from running tools beside decoding shows here) and ``wait_s``
(median ``latency_bound.tool_wait``, what it hides). ``wait_efficiency`` compares each run
with itself, so no other run's decoding enters it: (its sequential wait - its wait) / (its
sequential wait - its wait bound), where its sequential wait has every unit start when its
decoding ended and its wait bound every unit start once decoded (both with each unit's
fastest tool time), median over the mode's runs; ``wait_sequential_s`` and
``wait_bound_s`` are their medians. Where the saving is decoding (validation: the call is
aborted), ``decode_s`` carries it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eval import latency_bound
from eval.modes import MODES, RunRecord

MAX_OUTPUT_CHARS = 2000  # tool output kept in the representative timeline


def summarize_workload(
    records: Sequence[RunRecord],
    skipped: Mapping[str, str],
    modes: Sequence[str] = MODES,
) -> dict[str, dict[str, Any]]:
    """One workload's cells: ``records`` are its runs, ``skipped`` maps mode -> reason."""
    by_mode = {mode: [r for r in records if r.mode == mode] for mode in modes}
    fastest = latency_bound.fastest_tool_times([r.tool for r in records])
    # round -> (sequential latency, its bound)
    sequential = by_mode.get("sequential") or []
    baseline = {
        r.round: (r.latency_s, latency_bound.bound_from_run(r.latency_s, r.tool, fastest))
        for r in sequential
    }
    bound = _median_or_none([b for _, b in baseline.values()])
    cells = {}
    for mode in modes:
        runs = by_mode[mode]
        if not runs:
            cells[mode] = skipped_cell(skipped.get(mode, "no run completed"))
            continue
        paired = [(baseline[r.round], r.latency_s) for r in runs if r.round in baseline]
        latency = latency_bound.median([r.latency_s for r in runs])
        cells[mode] = {
            "latency_s": latency,
            "bound_s": bound,
            "efficiency": _paired_efficiency(paired),
            "runs": len(runs),
            "reduction": _median_or_none(
                [latency_bound.reduction(seq, latency) for (seq, _), latency in paired]
            ),
            "decode_s": latency_bound.median([r.tool["decode_finished_at"] for r in runs]),
            **_waits(runs, fastest),
            "latencies_s": [r.latency_s for r in runs],
            "statuses": sorted({str(r.tool.get("status")) for r in runs}),
            "timeline": representative(runs, latency),
        }
    return cells


def skipped_cell(reason: str) -> dict[str, Any]:
    return {"latency_s": None, "bound_s": None, "efficiency": None, "runs": 0, "skipped": reason}


def representative(runs: Sequence[RunRecord], latency: float) -> dict[str, Any]:
    """The run nearest the median, with what a timeline plot needs."""
    run = min(runs, key=lambda r: abs(r.latency_s - latency))
    tool = dict(run.tool)
    tool["output"] = str(tool.get("output", ""))[:MAX_OUTPUT_CHARS]
    return {"latency_s": run.latency_s, "tool": tool}


def _paired_efficiency(paired: Sequence[tuple[tuple[float, float], float]]) -> float | None:
    """The median over rounds of (seq - partial) / (seq - bound); None if no round has a
    saving above noise (``latency_bound.efficiency``)."""
    values = [latency_bound.efficiency(seq, latency, bound) for (seq, bound), latency in paired]
    return _median_or_none([v for v in values if v is not None])


def _waits(runs: Sequence[RunRecord], fastest: Sequence[float | None]) -> dict[str, Any]:
    """The tool wait after decoding, and each run compared with itself (module docstring)."""
    waits = [
        (
            latency_bound.sequential_wait_of_run(r.tool, fastest),
            latency_bound.tool_wait(r.tool),
            latency_bound.wait_bound_from_run(r.tool, fastest),
            r.latency_s,
        )
        for r in runs
    ]
    own = [e for w in waits if (e := latency_bound.efficiency(*w)) is not None]
    return {
        "wait_s": latency_bound.median([w for _, w, _, _ in waits]),
        "wait_sequential_s": latency_bound.median([s for s, _, _, _ in waits]),
        "wait_bound_s": latency_bound.median([b for _, _, b, _ in waits]),
        "wait_efficiency": _median_or_none(own),
    }


def _median_or_none(values: Sequence[float]) -> float | None:
    return latency_bound.median(values) if values else None
