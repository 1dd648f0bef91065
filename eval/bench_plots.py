"""Figures of a benchmark results file (``eval/benchmark.py``), each as PNG and PDF.

    python -m eval.bench_plots [RESULTS_JSON] [--out-dir eval/results/benchmark/plots]

Without a file it draws ``eval/results/benchmark/fast-latest.json`` and ``eval-latest.json``,
those that exist; every file name starts with the results' model name ("fast", "eval").
Each function takes the results and the output directory and returns the paths it wrote
(none where the results lack its part: agents, load and early abort are optional).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from eval.bench_table import ABORT_KEYS, abort_modes, format_table, share
from eval.figures import MODE_COLORS, plt, save
from eval.timeline_plot import timeline_figure

BENCH_DIR = Path(__file__).resolve().parent / "results" / "benchmark"
MODES = ("sequential", "client", "server")
PARTIAL = ("client", "server")  # the modes with a reduction


def item_values(results: Mapping[str, Any], group: str, mode: str, key: str) -> list[float]:
    """The per-item values of ``key`` (``reduction``, ``wait_efficiency``...), nulls left out."""
    return [
        it[key]
        for it in results.get("items") or []
        if it.get("group") == group and it.get("mode") == mode and it.get(key) is not None
    ]


def _stem(results: Mapping[str, Any], name: str) -> str:
    model = results.get("model_name")
    return f"{model}-{name}" if model else name


def _group_colors(results: Mapping[str, Any]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {g: cmap(i % 10) for i, g in enumerate(results.get("groups") or {})}


def cdf_figure(results: Mapping[str, Any], key: str, label: str):
    """Per partial mode, one CDF per group of the items' ``key``; n per group in the legend."""
    share = key == "reduction"  # a share of the sequential latency: shown in percent
    colors = _group_colors(results)
    fig, axes = plt.subplots(1, len(PARTIAL), figsize=(12, 4.5), sharey=True)
    for ax, mode in zip(axes, PARTIAL, strict=True):
        empty = []
        for group, color in colors.items():
            values = sorted(item_values(results, group, mode, key))
            if not values:
                empty.append(group)
                continue
            xs = [100 * v if share else v for v in values]
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            xs, ys = [xs[0], *xs], [0.0, *ys]  # the step up from 0 at the smallest value
            ax.step(xs, ys, where="post", color=color, label=f"{group} (n={len(values)})")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"{mode} mode")
        ax.set_xlabel(f"{label} (%)" if share else label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        if empty:
            note = "no value: " + ", ".join(empty)
            ax.text(0.99, 0.02, note, transform=ax.transAxes, ha="right", fontsize=7)
    axes[0].set_ylabel("share of items at or below x")
    fig.suptitle(f"{results.get('model_name', '')}: per-item {label}, CDF per workload")
    fig.tight_layout()
    return fig


def reduction_cdf(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    fig = cdf_figure(results, "reduction", "latency reduction vs sequential")
    return save(fig, out_dir, _stem(results, "reduction_cdf"))


def wait_efficiency_cdf(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    fig = cdf_figure(results, "wait_efficiency", "wait efficiency")
    return save(fig, out_dir, _stem(results, "wait_efficiency_cdf"))


def _boxes(ax: Any, data: Sequence[Sequence[float]], positions: Sequence[float], color: str):
    """Boxes with n written under each (an empty one gets only "n=0")."""
    drawn = [(p, d) for p, d in zip(positions, data, strict=True) if d]
    if drawn:
        box = ax.boxplot(
            [d for _, d in drawn], positions=[p for p, _ in drawn], widths=0.32,
            patch_artist=True, medianprops={"color": "black"},
        )  # fmt: skip
        for patch in box["boxes"]:
            patch.set_facecolor(color)
    for p, d in zip(positions, data, strict=True):
        y = min(d) if d else 0.0
        ax.annotate(
            f"n={len(d)}", (p, y), xytext=(0, -5), textcoords="offset points",
            ha="center", va="top", fontsize=7,
        )  # fmt: skip


def reduction_box(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    groups = list(results.get("groups") or {})
    fig, ax = plt.subplots(figsize=(max(7, 1.5 * len(groups)), 4.8))
    for j, mode in enumerate(PARTIAL):
        data = [[100 * v for v in item_values(results, g, mode, "reduction")] for g in groups]
        positions = [i + (j - 0.5) * 0.38 for i in range(len(groups))]
        _boxes(ax, data, positions, MODE_COLORS[mode])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.margins(y=0.12)
    ax.set_ylabel("latency reduction vs sequential (%)")
    ax.set_title(f"{results.get('model_name', '')}: per-item latency reduction")
    ax.legend([Patch(color=MODE_COLORS[m]) for m in PARTIAL], [f"{m} mode" for m in PARTIAL])
    fig.tight_layout()
    return save(fig, out_dir, _stem(results, "reduction_box"))


def timelines(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """One figure per group: its representative item's timeline in each mode."""
    paths = []
    for group, cell in (results.get("groups") or {}).items():
        drawn = {m: t for m, t in (cell.get("timeline") or {}).items() if t}
        if drawn:
            title = f"{results.get('model_name', '')} {group}: decoding and tool execution"
            paths += save(
                timeline_figure(title, drawn), out_dir, _stem(results, f"timeline_{group}")
            )
    return paths


def _spread(summary: Mapping[str, Any] | None) -> tuple[float, float, float] | None:
    """(median, median - p10, p90 - median) for error bars; None without a summary."""
    if not summary or summary.get("median") is None:
        return None
    median = summary["median"]
    return median, median - summary.get("p10", median), summary.get("p90", median) - median


def load_figure(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    load = results.get("load") or {}
    levels = sorted(load.get("levels") or {}, key=int)
    if not levels:
        return []
    fig, (lat_ax, tput_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for j, mode in enumerate(MODES):
        cells = [(i, (load["levels"][lvl] or {}).get(mode)) for i, lvl in enumerate(levels)]
        cells = [(i, c) for i, c in cells if c]
        points = [
            (i + (j - 1) * 0.08, s, c) for i, c in cells if (s := _spread(c.get("latency_s")))
        ]
        if points:
            lat_ax.errorbar(
                [x for x, _, _ in points], [s[0] for _, s, _ in points],
                yerr=[[s[1] for _, s, _ in points], [s[2] for _, s, _ in points]],
                marker="o", capsize=3, color=MODE_COLORS[mode], label=mode,
            )  # fmt: skip
        for x, s, c in points:
            if c.get("reduction") is not None:  # one number, or a summary
                text = share(c["reduction"]).split(" [")[0]
                lat_ax.annotate(
                    text, (x, s[0]), xytext=(5, 0), textcoords="offset points", fontsize=7
                )
        rates = [(i, c.get("throughput_per_min")) for i, c in cells]
        rates = [(i, r) for i, r in rates if r is not None]
        tput_ax.bar(
            [i + (j - 1) * 0.27 for i, _ in rates], [r for _, r in rates], 0.27,
            color=MODE_COLORS[mode], label=mode,
        )  # fmt: skip
    for ax in (lat_ax, tput_ax):
        ax.set_xticks(range(len(levels)), levels)
        ax.set_xlabel("programs at once on one server")
        ax.legend()
    lat_ax.set_ylabel("per-program latency (s): median, p10-p90")
    tput_ax.set_ylabel("throughput (programs per minute)")
    fig.suptitle(f"{results.get('model_name', '')}: load, workload {load.get('group', '?')}")
    fig.tight_layout()
    return save(fig, out_dir, _stem(results, "load"))


def agents_figure(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    programs = (results.get("agents") or {}).get("programs") or []
    if not programs:
        return []
    fig, (lat_ax, wait_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    modes = [m for m in MODES if any(p.get("mode") == m for p in programs)]
    for i, mode in enumerate(modes):
        mine = [p for p in programs if p.get("mode") == mode]
        _boxes(lat_ax, [[p["latency_s"] for p in mine]], [i], MODE_COLORS[mode])
        by_round: dict[int, list[float]] = {}
        for p in mine:
            for r in p.get("rounds") or []:
                if r.get("wait_s") is not None:
                    by_round.setdefault(int(r["round"]), []).append(r["wait_s"])
        rounds = sorted(by_round)
        medians = [statistics.median(by_round[k]) for k in rounds]
        wait_ax.plot(rounds, medians, marker="o", color=MODE_COLORS[mode], label=mode)
    lat_ax.set_xticks(range(len(modes)), modes)
    lat_ax.margins(y=0.12)
    lat_ax.set_ylabel("per-program latency (s)")
    wait_ax.set_xlabel("round")
    wait_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    wait_ax.set_ylim(bottom=0)
    wait_ax.set_ylabel("wait for the result after decoding (s), median")
    wait_ax.legend()
    n = (results.get("agents") or {}).get("n", "?")
    fig.suptitle(f"{results.get('model_name', '')}: multi-turn agents ({n} per mode)")
    fig.tight_layout()
    return save(fig, out_dir, _stem(results, "agents"))


def early_abort_figure(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    abort = results.get("early_abort")
    if not abort:
        return []
    modes = abort_modes(abort)
    keys = [
        (k, label)
        for k, label in ABORT_KEYS
        if any((m.get("off") or {}).get(k) for m in modes.values())
    ]
    if not keys:
        return []
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys) + 1, 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], keys, strict=True):
        for i, m in enumerate(modes.values()):
            for j, arm in enumerate(("off", "on")):
                if s := _spread((m.get(arm) or {}).get(key)):
                    color = ("#8c8c8c", "#c44e52")[j]
                    ax.bar(i + (j - 0.5) * 0.38, s[0], 0.36, yerr=[[s[1]], [s[2]]], capsize=4,
                           color=color, label=f"abort {arm}" if i == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(modes)), [f"{m} mode" if m else "" for m in modes])
        ax.set_ylabel(f"{label}: median, p10-p90")
        ax.legend()
    savings = [share(m.get("saving")).split(" [")[0] for m in modes.values()]
    note = ", ".join(f"{m or 'all'} {v}" for m, v in zip(modes, savings, strict=True))
    fig.suptitle(f"Stopping decoding at the first exception: n={abort.get('n')}, saving {note}")
    fig.tight_layout()
    return save(fig, out_dir, _stem(results, "early_abort"))


FIGURES: tuple[Callable[[Mapping[str, Any], Path], list[Path]], ...] = (
    reduction_cdf, wait_efficiency_cdf, reduction_box, timelines, load_figure, agents_figure,
    early_abort_figure,
)  # fmt: skip


def draw_all(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    return [path for figure in FIGURES for path in figure(results, out_dir)]


def default_results(directory: Path = BENCH_DIR) -> list[Path]:
    """The latest results of each model that has them."""
    return [p for m in ("fast", "eval") if (p := directory / f"{m}-latest.json").exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", help="results files; default: the latest ones")
    parser.add_argument("--out-dir", default=str(BENCH_DIR / "plots"))
    args = parser.parse_args(argv)
    files = [Path(p) for p in args.results] or default_results()
    if not files:
        print(f"no results in {BENCH_DIR}: run python -m eval.benchmark first", file=sys.stderr)
        return 1
    for path in files:
        results = json.loads(path.read_text(encoding="utf-8"))
        print(f"== {path}\n{format_table(results)}")
        for written in draw_all(results, Path(args.out_dir)):
            print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
