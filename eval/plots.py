"""Plots from a results file only: timelines per workload, latency reduction, efficiency.

    python -m eval.plots [--results eval/results/latest.json] [--out eval/results/plots]

Timelines are the paper's figures: per mode, one row for decoding (the tool-call generation,
then the final answer) and one for the tool (each unit's work, and the wait in ``finish``),
from the representative run of each cell (the one nearest the median). Time 0 is when the
tool-call generation was sent; the part before it (building the prompt) is milliseconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
COLORS = {"decode": "#4c72b0", "answer": "#8da0cb", "tool": "#dd8452", "wait": "#f2c3a0"}
MODE_COLORS = {"client": "#55a868", "server": "#c44e52"}


def timeline_figure(name: str, cells: dict[str, Any]):
    modes = [m for m, c in cells.items() if c.get("timeline")]
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.9 * len(modes)))
    for row, mode in enumerate(reversed(modes)):
        draw_timeline(ax, 2 * row, cells[mode]["timeline"])
    ax.set_yticks(
        [y for row in range(len(modes)) for y in (2 * row, 2 * row + 0.8)],
        [f"{m} {lane}" for m in reversed(modes) for lane in ("tool", "decode")],
    )
    ax.set_xlabel("seconds since the tool-call generation was sent")
    ax.set_title(f"{name}: decoding and tool execution")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    labels = ["decode tool call", "decode answer", "tool work", "tool finishing"]
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=4)
    fig.tight_layout()
    return fig


def draw_timeline(ax: Any, y: float, timeline: dict[str, Any]) -> None:
    tool, latency = timeline["tool"], timeline["latency_s"]
    decode_end, ready = tool["decode_finished_at"], tool["result_ready_at"]
    ax.broken_barh([(0, decode_end)], (y + 0.5, 0.6), color=COLORS["decode"])
    ax.broken_barh([(ready, max(0.0, latency - ready))], (y + 0.5, 0.6), color=COLORS["answer"])
    spans = [
        (u["started_at"], u["finished_at"] - u["started_at"])
        for u in tool["units"]
        if u.get("started_at") is not None and u.get("finished_at") is not None
    ]
    ax.broken_barh(spans, (y - 0.3, 0.6), color=COLORS["tool"], edgecolor="black", linewidth=0.3)
    last = max([decode_end, *(s + d for s, d in spans)])
    if ready > last:
        ax.broken_barh([(last, ready - last)], (y - 0.3, 0.6), color=COLORS["wait"])
    decoded = [u["decoded_at"] for u in tool["units"] if u.get("decoded_at") is not None]
    ax.plot(decoded, [y + 0.45] * len(decoded), "|", color="black", markersize=6)


WAIT_EFFICIENCY = (
    "wait_efficiency",
    "Wait efficiency: (seq wait - wait) / (seq wait - bound wait), decoding left out",
    "wait efficiency",
)


def bar_figure(results: dict[str, Any], key: str, title: str, ylabel: str):
    names = list(results["workloads"])
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.38
    for i, mode in enumerate(("client", "server")):
        values = [results["workloads"][n].get(mode, {}).get(key) for n in names]
        xs = [j + (i - 0.5) * width for j in range(len(names))]
        heights = [100 * v if v is not None and key == "reduction" else v or 0 for v in values]
        ax.bar(xs, heights, width, label=mode, color=MODE_COLORS[mode])
        for x, v in zip(xs, values, strict=True):
            if v is None:
                ax.annotate("n/a", (x, 0), ha="center", va="bottom", fontsize=7)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def make_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        f"timeline_{name}.png": timeline_figure(name, cells)
        for name, cells in results["workloads"].items()
        if any(c.get("timeline") for c in cells.values())
    }
    figures["latency_reduction.png"] = bar_figure(
        results, "reduction", "Latency reduction vs sequential (median)", "reduction (%)"
    )
    figures["efficiency.png"] = bar_figure(
        results, "efficiency", "Efficiency: (seq - partial) / (seq - bound)", "efficiency"
    )
    figures["wait_efficiency.png"] = bar_figure(results, *WAIT_EFFICIENCY)
    paths = []
    for filename, fig in figures.items():
        fig.savefig(out_dir / filename, dpi=110)
        plt.close(fig)
        paths.append(out_dir / filename)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--out", default=str(RESULTS.parent / "plots"))
    args = parser.parse_args()
    results = json.loads(Path(args.results).read_text(encoding="utf-8"))
    for path in make_plots(results, Path(args.out)):
        print(path)


if __name__ == "__main__":
    main()
