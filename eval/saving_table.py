"""The one table ``make demo`` prints: per program or workload, what partial execution saved
against the sequential baseline, in seconds and percent, with a legend under it.

Each row pairs every item with its own baseline run (the same item's sequential run; for
early abort, the same item and mode with ``abort_on_error`` off) and gives, per mode, the
median latency and the median of the items' savings. A row from fewer than ``MIN_ITEMS``
items says so: on this shared machine decoding alone varies by 10-30% between runs.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PARTIAL_MODES = ("client", "server")
MIN_ITEMS = 5  # below this, a median is within run-to-run noise
HEADERS = (
    ("program / workload", ""),
    ("n", ""),
    ("sequential", "(baseline)"),
    ("client mode", "(partial execution)"),
    ("server mode", "(partial execution)"),
)
LEGEND = (
    "sequential (baseline): partial=False, the tool gets the whole call once decoding ends "
    "(stock tool calling)",
    "client mode: partial execution, each finished unit runs while the model writes the "
    "rest, the tool in this process; server mode: the same inside the server "
    "(--tool-partial-execution)",
    "latency: the whole program, median over the items (seconds); saved: median over the "
    "items of (its baseline latency - this one), and that as a share of the baselines' "
    "median; negative: slower",
    f"n: items (for a program: runs) per mode; under {MIN_ITEMS}, too few to read (run-to-run "
    "noise on this shared machine is 10-30%)",
)


@dataclass(frozen=True)
class Row:
    label: str
    # mode -> (baseline latency, this mode's latency) per item
    pairs: Mapping[str, Sequence[tuple[float, float]]]
    baseline: Sequence[float] = ()  # the items' sequential latencies; empty: none to show
    note: str = ""  # a legend line for this row


def paired(runs: Sequence[tuple[str, str, float]], label: str, note: str = "") -> Row:
    """A row from (item, mode, latency) runs, each paired with its item's sequential run."""
    sequential = {item: latency for item, mode, latency in runs if mode == "sequential"}
    pairs = {
        mode: [(sequential[i], latency) for i, m, latency in runs if m == mode and i in sequential]
        for mode in PARTIAL_MODES
    }
    return Row(label, pairs, list(sequential.values()), note)


def benchmark_rows(results: Mapping[str, Any]) -> list[Row]:
    """One row per workload of a benchmark results dict, then its agents and early abort."""
    items = results.get("items") or []
    rows = [
        paired([(r["name"], r["mode"], r["latency_s"]) for r in items if r["group"] == g], g)
        for g in results.get("groups") or {}
    ]
    agents = (results.get("agents") or {}).get("programs")
    if agents:
        runs = [(p["item"], p["mode"], p["latency_s"]) for p in agents]
        rows.append(paired(runs, "agents", "agents: multi-turn programs, 3-5 tool calls each"))
    abort = (results.get("early_abort") or {}).get("rows")
    if abort:
        rows.append(early_abort_row(abort))
    return rows


def early_abort_row(rows: Sequence[Mapping[str, Any]]) -> Row:
    """Each item against itself in the same mode with ``abort_on_error`` off."""
    off = {(r["item"], r["mode"]): r["latency_s"] for r in rows if not r["on"]}
    pairs = {
        mode: [
            (off[(r["item"], mode)], r["latency_s"])
            for r in rows
            if r["mode"] == mode and r["on"] and (r["item"], mode) in off
        ]
        for mode in PARTIAL_MODES
    }
    note = (
        "early abort: HumanEval solutions with a seeded bug, abort_on_error on; its baseline is "
        "the same item and mode with it off (decoding runs to the end), not a sequential run"
    )
    return Row("early abort", pairs, (), note)


def format_saving_table(rows: Sequence[Row], title: str) -> str:
    cells = [[*HEADERS[i]] for i in range(len(HEADERS))]
    body = [_cells(row) for row in rows]
    widths = [max(len(c) for c in [*cells[i], *(b[i] for b in body)]) for i in range(len(cells))]
    lines = [title, ""]
    for k in range(2):
        lines.append("  ".join(cells[i][k].ljust(widths[i]) for i in range(len(cells))).rstrip())
    lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    lines += ["  ".join(b[i].ljust(widths[i]) for i in range(len(b))).rstrip() for b in body]
    legend = [*LEGEND, *(row.note for row in rows if row.note)]
    lines += ["", *(textwrap.fill(line, width=100, subsequent_indent="  ") for line in legend)]
    return "\n".join(lines)


def _cells(row: Row) -> list[str]:
    counts = [len(p) for p in row.pairs.values() if p]
    n = min(counts, default=0)
    baseline = f"{statistics.median(row.baseline):.2f} s" if row.baseline else "-"
    return [row.label, items(n), baseline, *(saving(row.pairs.get(m) or []) for m in PARTIAL_MODES)]


def items(n: int) -> str:
    return f"n={n}" if n >= MIN_ITEMS else f"n={n} (too few to read)"


def saving(pairs: Sequence[tuple[float, float]]) -> str:
    """``latency s, saved X s, Y%`` (medians over the items, Y of the baselines' median);
    ``-`` without a run."""
    if not pairs:
        return "-"
    latency = statistics.median(p for _, p in pairs)
    seconds = statistics.median(b - p for b, p in pairs)
    # Of the baselines' median, so the two figures never disagree in sign.
    share = seconds / statistics.median(b for b, _ in pairs)
    return f"{latency:.2f} s, saved {seconds:.2f} s, {percent(share)}"


def percent(share: float) -> str:
    """Whole percents; one decimal under 10% (a 1.2% saving is not 1%)."""
    value = 100 * share
    return f"{value:.0f}%" if abs(value) >= 9.95 else f"{value:.1f}%"
