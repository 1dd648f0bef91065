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

from eval.figures import MODE_COLORS, plt, save
from eval.timeline_plot import timeline_figure as draw_timelines

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def timeline_figure(name: str, cells: dict[str, Any]):
    """The timelines of one workload's cells (mode -> cell with its representative run)."""
    timelines = {mode: cell.get("timeline") for mode, cell in cells.items()}
    return draw_timelines(f"{name}: decoding and tool execution", timelines)


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
        paths += save(fig, out_dir, filename.removesuffix(".png"), formats=("png",))
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
