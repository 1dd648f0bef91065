"""Early abort on the first exception (the Python tool's ``abort_on_error``), measured on
programs whose attempt fails: HumanEval solutions with a seeded bug (``datasets.bugs``),
each run with the option off and on, in client and server mode. Decoding stops at the
statement that raised, so the saving is the decoding of the rest of the program."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from eval import latency_bound
from eval.distribution import dist
from eval.modes import run_once
from eval.workload import Workload

OPTION = "abort_on_error"


def run_early_abort(items: Sequence[Workload], backend: Any, modes: Sequence[str]) -> dict:
    rows: list[dict[str, Any]] = []
    for w in items:
        for mode in modes:
            for on in (False, True):
                item = replace(w, config={**w.config, OPTION: on})
                run_once(item, mode, backend)  # warm-up: the regex, the prompt
                r = run_once(item, mode, backend)
                rows.append(
                    {
                        "item": w.item,
                        "mode": mode,
                        "on": on,
                        "latency_s": r.latency_s,
                        "decode_s": r.tool["decode_finished_at"],
                        "status": r.tool.get("status"),
                        "units": len(r.tool.get("units", [])),
                    }
                )
    return {"n": len(items), "rows": rows, "modes": _summary(rows, modes)}


def _summary(rows: Sequence[dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in modes:
        off = {r["item"]: r for r in rows if r["mode"] == mode and not r["on"]}
        on = [r for r in rows if r["mode"] == mode and r["on"]]
        out[mode] = {
            "off": {k: dist(r[k] for r in off.values()) for k in ("latency_s", "decode_s")},
            "on": {k: dist(r[k] for r in on) for k in ("latency_s", "decode_s")},
            "saving": dist(
                latency_bound.reduction(off[r["item"]]["latency_s"], r["latency_s"]) for r in on
            ),
            "statuses_on": sorted({str(r["status"]) for r in on}),
        }
    return out
