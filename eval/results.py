"""Run records -> the results JSON, and the table printed from it.

The file's shape (the issue's), with extra keys the plots and the notebook read::

    {"ms_per_token": float, "model": {...},
     "workloads": {NAME: {MODE: {"latency_s", "bound_s", "efficiency", "runs", ...}}}, ...}

A cell that could not run has ``"runs": 0``, nulls, and ``"skipped"`` with the reason. The
bound is the workload's: the median over its sequential runs of ``metrics.bound_from_run``
(their decoding, with each unit's fastest tool time in any run); every cell carries it.

``efficiency`` and ``reduction`` are paired: computed per round, from that round's
sequential run (its latency and its bound) and that round's run of the mode, then the
median over rounds. A shared machine's speed drifts over minutes, and the modes of one
round run back to back; ``latency_s`` stays the plain median of the mode's runs.

Latency is decoding plus the wait for the tool after it, and on this shared VM decoding
alone varies by 10-30% from run to run, often more than the whole saving. So each cell also
splits the two: ``decode_s`` (median end of the call's decoding, which partial execution
should not change; a slowdown from running tools beside decoding shows here) and ``wait_s``
(median ``metrics.tool_wait``, what it hides). ``wait_efficiency`` compares each run with
itself, so no other run's decoding enters it: (its sequential wait - its wait) / (its
sequential wait - its wait bound), where its sequential wait has every unit start when its
decoding ended and its wait bound every unit start once decoded (both with each unit's
fastest tool time), median over the mode's runs; ``wait_sequential_s`` and
``wait_bound_s`` are their medians. Where the saving is decoding (validation: the call is
aborted), ``decode_s`` carries it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eval import metrics
from eval.modes import MODES, RunRecord

MAX_OUTPUT_CHARS = 2000  # tool output kept in the representative timeline


def summarize_workload(
    records: Sequence[RunRecord],
    skipped: Mapping[str, str],
    modes: Sequence[str] = MODES,
) -> dict[str, dict[str, Any]]:
    """One workload's cells: ``records`` are its runs, ``skipped`` maps mode -> reason."""
    by_mode = {mode: [r for r in records if r.mode == mode] for mode in modes}
    fastest = metrics.fastest_tool_times([r.tool for r in records])
    # round -> (sequential latency, its bound)
    sequential = by_mode.get("sequential") or []
    baseline = {
        r.round: (r.latency_s, metrics.bound_from_run(r.latency_s, r.tool, fastest))
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
        latency = metrics.median([r.latency_s for r in runs])
        cells[mode] = {
            "latency_s": latency,
            "bound_s": bound,
            "efficiency": _paired_efficiency(paired),
            "runs": len(runs),
            "reduction": _median_or_none(
                [metrics.reduction(seq, latency) for (seq, _), latency in paired]
            ),
            "decode_s": metrics.median([r.tool["decode_finished_at"] for r in runs]),
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
    saving above noise (``metrics.efficiency``)."""
    values = [metrics.efficiency(seq, latency, bound) for (seq, bound), latency in paired]
    return _median_or_none([v for v in values if v is not None])


def _waits(runs: Sequence[RunRecord], fastest: Sequence[float | None]) -> dict[str, Any]:
    """The tool wait after decoding, and each run compared with itself (module docstring)."""
    waits = [
        (
            metrics.sequential_wait_of_run(r.tool, fastest),
            metrics.tool_wait(r.tool),
            metrics.wait_bound_from_run(r.tool, fastest),
            r.latency_s,
        )
        for r in runs
    ]
    own = [e for w in waits if (e := metrics.efficiency(*w)) is not None]
    return {
        "wait_s": metrics.median([w for _, w, _, _ in waits]),
        "wait_sequential_s": metrics.median([s for s, _, _, _ in waits]),
        "wait_bound_s": metrics.median([b for _, _, b, _ in waits]),
        "wait_efficiency": _median_or_none(own),
    }


def _median_or_none(values: Sequence[float]) -> float | None:
    return metrics.median(values) if values else None


def format_table(results: Mapping[str, Any]) -> str:
    """Median latency per workload and mode, the bound, reduction and efficiency."""
    header = f"{'workload':<11} {'sequential':>10} {'client':>8} {'server':>8} {'bound':>7}"
    header += f" {'red.client':>10} {'eff.client':>10} {'red.server':>10} {'eff.server':>10}"
    lines = [header, "-" * len(header)]
    for name, cells in results["workloads"].items():
        seq, client, server = (cells.get(m, {}) for m in MODES)
        row = f"{name:<11} {_s(seq, 'latency_s'):>10} {_s(client, 'latency_s'):>8}"
        row += f" {_s(server, 'latency_s'):>8} {_s(seq, 'bound_s'):>7}"
        for cell in (client, server):
            row += f" {_pct(cell.get('reduction')):>10} {_num(cell.get('efficiency')):>10}"
        lines.append(row)
    lines.append(f"latency in seconds (median); model decode {results['ms_per_token']} ms/token")
    lines += ["", *_wait_table(results["workloads"])]
    share = results.get("parser_cpu", {}).get("share")
    if share is not None:
        lines.append(f"parser share of the client's CPU time: {share:.3%}")
        by_workload = results["parser_cpu"].get("share_by_workload") or {}
        lines.append(
            "  per workload: "
            + ", ".join(f"{n} {v:.3%}" for n, v in by_workload.items() if v is not None)
        )
    return "\n".join(lines)


def _wait_table(workloads: Mapping[str, Any]) -> list[str]:
    """Decoding and the tool wait after it, apart (see the module docstring)."""
    header = f"{'workload':<11} {'decode seq/cli/srv':>20} {'wait seq/cli/srv':>20}"
    header += f" {'bound cli/srv':>14} {'w.eff.client':>12} {'w.eff.server':>12}"
    lines = [header, "-" * len(header)]
    for name, cells in workloads.items():
        seq, client, server = (cells.get(m, {}) for m in MODES)
        decode = "/".join(_s(c, "decode_s") for c in (seq, client, server))
        wait = "/".join(_s(c, "wait_s") for c in (seq, client, server))
        bound = "/".join(_s(c, "wait_bound_s") for c in (client, server))
        row = f"{name:<11} {decode:>20} {wait:>20} {bound:>14}"
        row += f" {_num(client.get('wait_efficiency')):>12}"
        row += f" {_num(server.get('wait_efficiency')):>12}"
        lines.append(row)
    lines.append(
        "decode: the call's decoding; wait: for the result after it; bound: the least wait "
        "given each run's own decoding (median seconds); w.eff: each run against itself"
    )
    return lines


def _s(cell: Mapping[str, Any], key: str) -> str:
    value = cell.get(key)
    return "skip" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
