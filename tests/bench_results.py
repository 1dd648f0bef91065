"""A small benchmark results dict in ``eval/benchmark.py``'s shape, for the plot and notebook
tests: 2 groups, 3 modes, 5 items each, summaries computed from the items as the runner does
(median, p10, p90 over the items), optional parts (agents, load, early abort) on request."""

from __future__ import annotations

import statistics
from typing import Any

GROUPS = {"code-light": (2.0, 0.05), "search": (4.0, 0.15)}  # sequential s, saved share
MODES = ("sequential", "client", "server")
ITEMS = 5


def summarize(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"median": statistics.median(values), "p10": at(0.1), "p90": at(0.9), "n": len(values)}


def timeline(mode: str, units: int = 3) -> dict[str, Any]:
    """A tool timeline (the tool's own dict, as the runner stores it): units decoded 0.2 s
    apart, each 0.15 s of tool work, started at once (partial) or after decoding."""
    decode_end = 0.2 * units + 0.05
    rows, t = [], decode_end
    for i in range(units):
        decoded = 0.2 * (i + 1)
        start = t if mode == "sequential" else decoded
        rows.append({"text": f"u{i}\n", "decoded_at": decoded, "sent_at": decoded,
                     "started_at": start, "finished_at": start + 0.15, "after": None})  # fmt: skip
        t = start + 0.15
    ready = max(decode_end, t) + 0.01
    return {"mode": "client" if mode == "sequential" else mode, "status": "ok", "output": "",
            "error": None, "units": rows, "decode_finished_at": decode_end,
            "result_ready_at": ready}  # fmt: skip


def _items(group: str, base: float, saved: float) -> list[dict[str, Any]]:
    items = []
    for k in range(ITEMS):
        seq = base + 0.3 * k
        for j, mode in enumerate(MODES):
            latency = seq if mode == "sequential" else seq * (1 - saved - 0.02 * (k - j))
            partial = mode != "sequential"
            items.append({
                "group": group, "item": f"{group}/{k}", "name": f"{group}:{k}", "mode": mode,
                "latency_s": latency, "decode_s": 0.7 * seq, "wait_s": latency - 0.7 * seq,
                "bound_s": seq * (1 - saved - 0.05),
                "reduction": (seq - latency) / seq if partial else None,
                "efficiency": 0.9 + 0.02 * k if partial else None,
                # One item per mode without a wait to hide: its wait efficiency is null.
                "wait_efficiency": (0.8 + 0.04 * k + 0.01 * j) if partial and k else None,
                "status": "ok", "expect": "ok",
            })  # fmt: skip
    return items


def _cell(items: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    mine = [it for it in items if it["mode"] == mode]

    def of(key: str) -> dict[str, Any] | None:
        return summarize([it[key] for it in mine if it[key] is not None])

    keys = ("latency_s", "reduction", "wait_efficiency", "efficiency", "decode_s", "wait_s")
    return {"n": len(mine), **{key: of(key) for key in keys}}


def make_results(agents: bool = True, load: bool = True, early_abort: bool = True):
    items = [it for g, (base, saved) in GROUPS.items() for it in _items(g, base, saved)]
    groups = {
        g: {"source": {"group": g, "source": "this test"}, "n_items": ITEMS, "of": 164,
            "sampled": True,
            "modes": {m: _cell([it for it in items if it["group"] == g], m) for m in MODES},
            "timeline": {m: timeline(m) for m in MODES}}
        for g in GROUPS
    }  # fmt: skip
    return {
        "kind": "benchmark", "created": "2026-11-27T00:00:00Z", "seed": 0, "model_name": "fast",
        "ms_per_token": 6.1, "model": {"parameters": 1_300_000}, "machine": {"cpus": 2},
        "cpu_split": {"server": "0", "tools": "1"}, "groups": groups, "items": items,
        "agents": _agents() if agents else None, "load": _load() if load else None,
        "early_abort": _early_abort() if early_abort else None, "errors": [], "skipped": {},
    }  # fmt: skip


def _agents() -> dict[str, Any]:
    programs = [
        {"item": f"agent/{k}", "mode": mode, "latency_s": 6.0 - j + 0.2 * k,
         "rounds": [{"round": r, "status": "error" if r < 2 else "ok", "decode_s": 1.0,
                     "wait_s": 0.5 if mode == "sequential" else 0.05} for r in range(3)]}
        for k in range(3) for j, mode in enumerate(MODES)
    ]  # fmt: skip
    modes = {
        m: {"latency_s": summarize([p["latency_s"] for p in programs if p["mode"] == m]),
            "reduction": None if m == "sequential" else summarize([0.15, 0.17, 0.2]),
            "round_wait_s": summarize([0.5 if m == "sequential" else 0.05] * 9)}
        for m in MODES
    }  # fmt: skip
    return {"n": 3, "programs": programs, "modes": modes}


def _load() -> dict[str, Any]:
    levels = {}
    for level in (1, 4, 8):
        levels[str(level)] = {
            m: {"latency_s": summarize([2.0 * level ** 0.5 * (1 - 0.1 * j), 2.5 * level ** 0.5]),
                "reduction": None if m == "sequential" else 0.1 * j,  # of the medians
                "throughput_per_min": 60 * level / (2.2 * level ** 0.5), "n": level * 2}
            for j, m in enumerate(MODES)
        }  # fmt: skip
    return {"group": "code-light", "levels": levels}


SAVINGS = [0.5, 0.41, 0.35, 0.48]  # early abort's per-program saving (client mode)


def _early_abort() -> dict[str, Any]:
    """eval/bench_abort.py's shape: per mode, the option off and on."""
    modes = {
        mode: {"off": {"latency_s": summarize([3.0, 3.2, 3.4, 3.1]),
                       "decode_s": summarize([2.8, 3.0, 3.2, 2.9])},
               "on": {"latency_s": summarize([1.5, 1.9, 2.2, 1.6]),
                      "decode_s": summarize([1.3, 1.7, 2.0, 1.4])},
               "saving": summarize([v - 0.01 * k for v in SAVINGS]),
               "statuses_on": ["error"]}
        for k, mode in enumerate(("client", "server"))
    }  # fmt: skip
    return {"n": 4, "rows": [], "modes": modes}
