"""Load: 1, 4 and 8 programs at once on one server, per mode.

At each level a fixed queue of programs (the same items in every mode) runs with that many
in flight at all times; per-program latency is each program's own, throughput is programs
finished per minute of wall time. The reduction compares a mode's median latency with the
sequential mode's at the same level.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eval import latency_bound
from eval.distribution import dist
from eval.modes import run_once
from eval.workload import Workload


def run_level(items: Sequence[Workload], level: int, mode: str, backend: Any) -> dict:
    started = time.monotonic()
    with ThreadPoolExecutor(level) as pool:
        records = list(pool.map(lambda w: run_once(w, mode, backend), items))
    wall = time.monotonic() - started
    return {
        "n": len(records),
        "latency_s": dist(r.latency_s for r in records),
        "throughput_per_min": 60 * len(records) / wall,
        "statuses": sorted({str(r.tool.get("status")) for r in records}),
    }


def run_load(
    items: Sequence[Workload], levels: Sequence[int], modes: Sequence[str], backend: Any
) -> dict[str, Any]:
    """``items``: the queue at level 1; at level L it repeats to at least 2 L programs."""
    out: dict[str, Any] = {}
    for level in levels:
        queue = [items[i % len(items)] for i in range(max(len(items), 2 * level))]
        cells = {mode: run_level(queue, level, mode, backend) for mode in modes}
        base = cells.get("sequential", {}).get("latency_s")
        for mode, cell in cells.items():
            mine = cell["latency_s"]
            cell["reduction"] = (
                latency_bound.reduction(base["median"], mine["median"])
                if base and mine and mode != "sequential"
                else None
            )
        out[str(level)] = cells
    return out
