"""One evaluation on one server: availability, warm-up, the alternating rounds, the summary.

A workload whose tool is not registered, or a mode this build or server cannot run, becomes
a skipped cell with its reason; a run that fails is recorded under ``errors`` and the others
go on. Nothing here crashes the whole evaluation for one cell.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import sglang as sgl
from tqdm import tqdm

from conveyor_sgl.tools.registry import resolve_tool
from eval import model as eval_model
from eval.modes import MODES, ModeUnavailable, RunRecord, mode_arguments, run_once
from eval.parser_cpu import ParserMeter, parser_share
from eval.results import summarize_workload
from eval.workload import Workload

PARSING_MODES = ("sequential", "client")  # where this process runs the parser
MAX_REPS_FACTOR = 5  # a short workload runs at most this many times --reps


class EvalSession:
    def __init__(
        self,
        url: str,
        workloads: list[Workload],
        server_note: str | None = None,
        min_cell_s: float = 0.0,
    ):
        self.url = url
        # Short workloads are repeated until each cell holds about this many seconds of
        # runs: their run-to-run noise is a larger share of their latency.
        self.min_cell_s = min_cell_s
        self.warm_latency: dict[str, float] = {}
        self.workloads = workloads
        self.backend = sgl.RuntimeEndpoint(url)
        # (workload, mode) -> why it cannot run
        self.skipped: dict[tuple[str, str], str] = {}
        self.records: list[RunRecord] = []
        self.errors: list[dict[str, str]] = []
        self.meter = ParserMeter()
        if server_note:
            for w in workloads:
                self.skipped[(w.name, "server")] = server_note

    def run(self, reps: int, model_config: Any, model_path: Path) -> dict[str, Any]:
        ms = eval_model.ms_per_token(self.url)
        with self.meter:
            self._check_availability()
            self._warm_up()
            self._rounds(reps)
        return self._results(ms, model_config, model_path, reps)

    def available(self, w: Workload) -> list[str]:
        return [m for m in MODES if (w.name, m) not in self.skipped]

    def _check_availability(self) -> None:
        for w in self.workloads:
            for mode in self.available(w):
                try:
                    resolve_tool(w.tool)
                    mode_arguments(mode)
                except (ValueError, ModeUnavailable) as e:
                    self.skipped[(w.name, mode)] = str(e)

    def _warm_up(self) -> None:
        """One uncounted run per workload: compiles its regex (the grammar cache is the
        server's, shared by all modes) and caches its prompt. In server mode where the
        server may run tools, so it also finds out whether it does (else: skipped)."""
        for w in tqdm(self.workloads, desc="warm-up", unit="run"):
            modes = self.available(w)
            record = self._one(w, "server") if "server" in modes else None
            if record is None and self.available(w):
                record = self._one(w, self.available(w)[-1])
            if record is not None:
                self.warm_latency[w.name] = record.latency_s

    def reps_for(self, w: Workload, reps: int) -> int:
        """``reps``, or more for a short workload (up to MAX_REPS_FACTOR times)."""
        latency = self.warm_latency.get(w.name)
        if not latency or self.min_cell_s <= 0:
            return reps
        return max(reps, min(MAX_REPS_FACTOR * reps, math.ceil(self.min_cell_s / latency)))

    def _rounds(self, reps: int) -> None:
        counts = {w.name: self.reps_for(w, reps) for w in self.workloads}
        rounds = max(counts.values(), default=0)
        order = [(r, w) for r in range(rounds) for w in self.workloads if r < counts[w.name]]
        total = sum(len(self.available(w)) for _, w in order)
        with tqdm(total=total, desc="runs", unit="run") as bar:
            for r, w in order:
                modes = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]  # rotate the order
                for mode in [m for m in modes if (w.name, m) not in self.skipped]:
                    record = self._one(w, mode)
                    if record is not None:
                        self.records.append(replace(record, round=r))
                    bar.update()

    def _one(self, w: Workload, mode: str) -> RunRecord | None:
        try:
            return run_once(w, mode, self.backend, self.meter)
        except ModeUnavailable as e:
            self.skipped[(w.name, mode)] = str(e)
        except Exception as e:  # noqa: BLE001 (one failed run must not end the evaluation)
            self.errors.append({"workload": w.name, "mode": mode, "error": repr(e)[:500]})
        return None

    def _results(self, ms: float, config: Any, path: Path, reps: int) -> dict[str, Any]:
        workloads = {}
        for w in self.workloads:
            skipped = {m: why for (name, m), why in self.skipped.items() if name == w.name}
            records = [r for r in self.records if r.workload == w.name]
            workloads[w.name] = summarize_workload(records, skipped)
        parsing = [r for r in self.records if r.mode in PARSING_MODES]
        parser_cpu = sum(r.parser_cpu_s for r in parsing)
        process_cpu = sum(r.process_cpu_s for r in parsing)
        return {
            "ms_per_token": ms,
            "model": eval_model.describe(config, path),
            "workloads": workloads,
            "workload_info": {w.name: _info(w) for w in self.workloads},
            "parser_cpu": {
                "parser_cpu_s": parser_cpu,
                "process_cpu_s": process_cpu,
                "parser_calls": self.meter.calls,  # every run, warm-up and server mode too
                "share": parser_share(parser_cpu, process_cpu),
                # Pooled, the workload with the most runs weighs most; each one alone:
                "share_by_workload": {
                    w.name: parser_share(
                        sum(r.parser_cpu_s for r in parsing if r.workload == w.name),
                        sum(r.process_cpu_s for r in parsing if r.workload == w.name),
                    )
                    for w in self.workloads
                },
                "how": "time.thread_time in parser feed/close over time.process_time "
                "of the client process, sequential and client runs",
            },
            "reps": reps,
            "errors": self.errors,
            "server_url": self.url,
            "machine": {"cpus": _cpus(), "platform": platform.platform()},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def _info(w: Workload) -> dict[str, Any]:
    info = asdict(w)
    info["reference_chars"] = len(w.reference)
    del info["reference"]
    return info


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
