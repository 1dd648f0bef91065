"""The benchmark's single-call items: every item in every mode, one row per (item, mode).

Per item: a one-token warm-up request with the item's regex (the server compiles and caches
the grammar, which a deployed program would have done long before), then each mode once, the
order rotating from item to item. Each item's modes are summarised against that item's own
sequential run (``results.summarize_workload`` with one round): its latency reduction, the
efficiency against its bound, and the wait efficiency of each run against itself. A group's
figure is the distribution of its items' values, not one median.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import requests
from tqdm import tqdm

from eval.distribution import dist
from eval.modes import MODES, ModeUnavailable, RunRecord, run_once
from eval.results import representative, summarize_workload
from eval.workload import Workload

ROW_KEYS = ("latency_s", "decode_s", "wait_s", "bound_s", "reduction", "efficiency")


class ItemRunner:
    def __init__(self, backend: Any, modes: Sequence[str] = MODES) -> None:
        self.backend = backend
        self.modes = list(modes)
        self.rows: list[dict[str, Any]] = []
        self.records: list[RunRecord] = []
        self.errors: list[dict[str, str]] = []
        self.skipped: dict[str, str] = {}  # mode -> why it cannot run here
        # Seconds outside the timed runs: each tool's first (uncounted) session per pool and
        # each item's one-token regex warm-up; the rest of a group's wall is its runs.
        self.overhead_s = {"first_sessions": 0.0, "warm_up": 0.0}

    def run(self, items: Sequence[Workload], desc: str) -> None:
        # Once per group and mode, uncounted: the tool's first session in each pool (the
        # client's, the server's) loads the tool; later sessions get preloaded workers.
        started = time.monotonic()
        for mode in self.modes:
            if items and mode != "sequential":
                self._one(items[0], mode)
        self.overhead_s["first_sessions"] += time.monotonic() - started
        for i, w in enumerate(tqdm(items, desc=desc, unit="item")):
            modes = [m for m in self.modes if m not in self.skipped]
            started = time.monotonic()
            warm_up(self.backend.base_url, w)
            self.overhead_s["warm_up"] += time.monotonic() - started
            turn = i % len(modes)
            records = [r for m in modes[turn:] + modes[:turn] if (r := self._one(w, m))]
            self.records += records
            self.rows += item_rows(w, records)

    def _one(self, w: Workload, mode: str) -> RunRecord | None:
        try:
            return run_once(w, mode, self.backend)
        except ModeUnavailable as e:
            self.skipped[mode] = str(e)
        except Exception as e:  # noqa: BLE001 - one failed item must not end the benchmark
            self.errors.append({"item": w.name, "mode": mode, "error": repr(e)[:500]})
        return None


def warm_up(url: str, w: Workload) -> None:
    body = {"text": w.prompt, "sampling_params": {"regex": w.call_regex, "max_new_tokens": 1}}
    requests.post(url + "/generate", json=body, timeout=300).raise_for_status()


def item_rows(w: Workload, records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per mode of one item, each paired with the item's sequential run."""
    cells = summarize_workload([replace(r, round=0) for r in records], {})
    rows = []
    for r in records:
        cell = cells[r.mode]
        row = {"group": w.group, "item": w.item, "name": w.name, "mode": r.mode}
        row |= {k: cell.get(k) for k in ROW_KEYS}
        row["latency_s"] = r.latency_s
        row["wait_efficiency"] = cell.get("wait_efficiency")
        row["status"] = r.tool.get("status")
        row["expect"] = w.expect
        if r.mode == "sequential":
            row["reduction"] = row["efficiency"] = None
        rows.append(row)
    return rows


def summarize_group(rows: Sequence[dict[str, Any]], records: Sequence[RunRecord]) -> dict:
    """Per mode: the distributions over the group's items; and the timelines of one item in
    every mode, the item whose sequential latency is nearest the group's median."""
    modes: dict[str, Any] = {}
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode]
        if mine:
            modes[mode] = {"n": len(mine)} | {
                key: dist(r[key] for r in mine) for key in (*ROW_KEYS, "wait_efficiency")
            }
    timeline: dict[str, Any] = {}
    baseline = [r for r in rows if r["mode"] == "sequential"]
    if baseline:
        median = modes["sequential"]["latency_s"]["median"]
        name = min(baseline, key=lambda r: abs(r["latency_s"] - median))["name"]
        for r in records:
            if r.workload == name:
                timeline[r.mode] = representative([r], r.latency_s)
    return {"modes": modes, "timeline": timeline}
