"""The benchmark's figures as text: per workload and mode, n, median and p10/p90 of the
latency reduction and of the wait efficiency (the runner's own summaries), then the agents,
load and early-abort lines, the errors and what was skipped; a legend under each part, and
any figure from fewer than ``MIN_ITEMS`` items marked too few to read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MODES = ("sequential", "client", "server")
LABELS = {"sequential": "sequential (baseline)", "client": "client", "server": "server"}
MIN_ITEMS = 5  # below this, a median is within this shared machine's run-to-run noise
SUMMARY_LEGEND = (
    f"median [p10, p90] n=N: over N items (10th and 90th percentile); n under {MIN_ITEMS}: "
    "too few to read (decoding alone varies 10-30% between runs here)"
)


def summary(s: Mapping[str, Any] | None, percent: bool = False) -> str:
    """``median [p10, p90] n=N`` of a runner summary; ``-`` where there is none."""
    if not s or s.get("median") is None:
        return "-"

    def f(v: float | None) -> str:
        if v is None:
            return "?"
        if percent:
            return f"{100 * v:+.1f}%"
        return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"  # seconds, ratios; characters

    return f"{f(s['median'])} [{f(s.get('p10'))}, {f(s.get('p90'))}] {count(s.get('n'))}"


def count(n: int | None) -> str:
    """``n=N``, marked where N is too few to read."""
    if n is None:
        return "n=?"
    return f"n={n}" if n >= MIN_ITEMS else f"n={n} (too few to read)"


def share(value: Mapping[str, Any] | float | None) -> str:
    """A reduction given as a runner summary or as one number (the load's: of the medians)."""
    if isinstance(value, int | float):
        return f"{100 * value:+.1f}%"
    return summary(value, percent=True)


def abort_modes(abort: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Early abort's figures per mode (``{"modes": {mode: {"off", "on", "saving"}}}``), or
    under one unnamed mode where the results give ``off``/``on``/``saving`` at the top."""
    return dict(abort["modes"]) if abort.get("modes") else {"": abort}


ABORT_KEYS = (
    ("latency_s", "latency (s)"),
    ("decode_s", "decoding (s)"),
    ("decoded_chars", "chars decoded"),
)


def format_table(results: Mapping[str, Any]) -> str:
    lines = [_header(results), *_groups(results), *_agents(results), *_load(results)]
    lines += _early_abort(results)
    errors = len(results.get("errors") or []) + len(
        (results.get("agents") or {}).get("errors") or []
    )
    lines.append(f"errors: {errors} failed runs")
    for what, why in (results.get("skipped") or {}).items():
        lines.append(f"skipped {what}: {why}")
    return "\n".join(lines)


def _header(results: Mapping[str, Any]) -> str:
    return (
        f"model {results.get('model_name', '?')}: {results.get('ms_per_token', '?')} ms/token; "
        f"created {results.get('created', '?')}, seed {results.get('seed', '?')}"
    )


def _groups(results: Mapping[str, Any]) -> list[str]:
    head = ["group", "mode", "n", "latency s median [p10, p90]", "reduction median [p10, p90]"]
    head.append("wait efficiency median [p10, p90]")
    rows, sampled = [], []
    for group, cell in (results.get("groups") or {}).items():
        if cell.get("sampled"):
            of = f" of {cell['of']}" if cell.get("of") else ""
            sampled.append(f"{group} {cell.get('n_items', '?')}{of}")
        for mode in MODES:
            m = (cell.get("modes") or {}).get(mode)
            if not m:
                continue
            # The baseline against itself would only measure noise.
            partial = mode != "sequential"
            rows.append([
                group, LABELS[mode], str(m.get("n", 0)), summary(m.get("latency_s")),
                summary(m.get("reduction"), percent=True) if partial else "-",
                summary(m.get("wait_efficiency")) if partial else "-",
            ])  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["", _row(head, widths), "-" * (sum(widths) + 2 * (len(widths) - 1))]
    lines += [_row(r, widths) for r in rows]
    lines += [
        "sequential (baseline): partial=False, the tool gets the whole call once decoding "
        "ends; client / server: partial execution, the tool in the client / inside the server",
        "reduction: share of the item's own sequential latency saved (negative: slower); "
        "wait efficiency: the wait after decoding that was hidden, of what could be (each run "
        "against itself)",
        SUMMARY_LEGEND,
    ]
    if sampled:
        lines.append("seeded samples: " + ", ".join(sampled))
    return lines


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _agents(results: Mapping[str, Any]) -> list[str]:
    agents = results.get("agents")
    if not agents:
        return []
    lines = ["", f"agents: {agents.get('n', '?')} multi-turn programs"]
    for mode, m in (agents.get("modes") or {}).items():
        lines.append(
            f"  {mode:<10} latency {summary(m.get('latency_s'))}; reduction "
            f"{summary(m.get('reduction'), percent=True)}; wait per round "
            f"{summary(m.get('round_wait_s'))}"
        )
    lines.append(
        "  latency: the whole program; reduction: against its own sequential run; wait per "
        "round: for the tool after each round's decoding (n counts rounds)"
    )
    return lines


def _load(results: Mapping[str, Any]) -> list[str]:
    load = results.get("load")
    if not load or not load.get("levels"):
        return []
    lines = ["", f"load: workload {load.get('group', '?')}, programs at once on one server"]
    for level in sorted(load["levels"], key=int):
        for mode, m in (load["levels"][level] or {}).items():
            rate = m.get("throughput_per_min")
            lines.append(
                f"  {level:>2} at once {mode:<10} latency {summary(m.get('latency_s'))}; "
                f"reduction {share(m.get('reduction'))}; throughput "
                + ("-" if rate is None else f"{rate:.1f}/min")
            )
    lines.append(
        "  reduction: of the level's median latencies (one number); throughput: programs "
        "completed per minute"
    )
    return lines


def _early_abort(results: Mapping[str, Any]) -> list[str]:
    abort = results.get("early_abort")
    if not abort:
        return []
    lines = ["", f"early abort at the first exception: n={abort.get('n', '?')}"]
    for mode, m in abort_modes(abort).items():
        off, on = m.get("off") or {}, m.get("on") or {}
        for key, label in ABORT_KEYS:
            if off.get(key) or on.get(key):
                lines.append(
                    f"  {mode:<7} {label:<13} off {summary(off.get(key))}; "
                    f"on {summary(on.get(key))}"
                )
        lines.append(f"  {mode:<7} {'saving':<13} {share(m.get('saving'))}")
    lines.append("  off / on: abort_on_error; saving: share of the same item's latency with it off")
    return lines


def markdown_groups(results: Mapping[str, Any]) -> str:
    """The per-group table as Markdown (the README's results): n, and the median [p10, p90]
    of the reduction and of the wait efficiency, client and server mode."""
    rows = [
        "| workload | n | sequential s | reduction client | reduction server "
        "| wait eff. client | wait eff. server |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, cell in (results.get("groups") or {}).items():
        modes = cell.get("modes") or {}
        seq, client, server = (modes.get(m) or {} for m in MODES)
        n = f"{cell.get('n_items', '?')}" + (f" of {cell['of']}" if cell.get("sampled") else "")
        rows.append(
            f"| {group} | {n} | {summary(seq.get('latency_s')).split(' n=')[0]} "
            f"| {_short(client.get('reduction'), True)} | {_short(server.get('reduction'), True)} "
            f"| {_short(client.get('wait_efficiency'))} | {_short(server.get('wait_efficiency'))} |"
        )
    return "\n".join(rows)


def _short(s: Mapping[str, Any] | None, percent: bool = False) -> str:
    return summary(s, percent).split(" n=")[0]
