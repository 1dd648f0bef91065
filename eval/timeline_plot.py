"""One program's timeline per mode: decoding above, the tool's work below, every mark named.

A timeline is what the tool returns in ``state.get_meta_info(name)["tool"]``
(``ToolTimeline.to_dict``): per unit when it was decoded and when the tool started and
finished it, when the call's decoding ended and when the result was ready, in seconds since
the tool-call generation was sent (time 0; building the prompt before it takes milliseconds).
Given the program's latency too, the decoding after the result (the final answer) is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from eval.figures import plt

COLORS = {"decode": "#4c72b0", "answer": "#8da0cb", "unit": "#dd8452", "finish": "#f2c3a0"}
# Every mark drawn, in the legend's order: (handle, label).
LEGEND = {
    "decode": (Patch(color=COLORS["decode"]), "decoding the tool call"),
    "answer": (Patch(color=COLORS["answer"]), "decoding after the result"),
    "decoded": (
        Line2D([], [], marker="|", color="black", linestyle="", markersize=8),
        "a unit fully decoded",
    ),
    "unit": (Patch(facecolor=COLORS["unit"], edgecolor="black"), "tool working on a unit"),
    "finish": (Patch(color=COLORS["finish"]), "tool finishing the call"),
    "decode_end": (Line2D([], [], color="black", linestyle="--"), "decoding of the call ends"),
    "ready": (Line2D([], [], color="#c44e52", linewidth=2), "tool result ready"),
}


def unwrap(timeline: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
    """(the tool's timeline, the program's latency or None) from either shape: eval.results'
    ``{"latency_s", "tool"}`` or the tool's own dict (with ``latency_s`` if the writer added it)."""
    if "tool" in timeline and isinstance(timeline["tool"], Mapping):
        return dict(timeline["tool"]), timeline.get("latency_s")
    return dict(timeline), timeline.get("latency_s")


def timeline_figure(title: str, timelines: Mapping[str, Mapping[str, Any] | None]):
    """One figure, one row of two lanes per mode (mode -> timeline; None: not drawn)."""
    modes = [m for m, t in timelines.items() if t]
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.9 * len(modes)))
    drawn: set[str] = set()
    for row, mode in enumerate(reversed(modes)):
        drawn |= draw_timeline(ax, 2 * row, timelines[mode])
    ax.set_yticks(
        [y for row in range(len(modes)) for y in (2 * row, 2 * row + 0.8)],
        [f"{m} {lane}" for m in reversed(modes) for lane in ("tool", "decode")],
    )
    ax.set_xlabel("seconds since the tool-call generation was sent")
    ax.set_title(title)
    marks = [LEGEND[key] for key in LEGEND if key in drawn]
    ax.legend(
        [h for h, _ in marks], [label for _, label in marks],
        loc="upper center", bbox_to_anchor=(0.5, -0.45 if len(modes) < 3 else -0.25), ncol=4,
        fontsize=8,
    )  # fmt: skip
    fig.tight_layout()
    return fig


def draw_timeline(ax: Any, y: float, timeline: Mapping[str, Any]) -> set[str]:
    """Draw one run with its tool lane at ``y`` and its decode lane above; the marks drawn."""
    tool, latency = unwrap(timeline)
    start = tool.get("decode_started_at") or 0.0
    decode_end = tool.get("decode_finished_at") or start
    ready = tool.get("result_ready_at")
    drawn = {"decode", "decode_end"}
    ax.broken_barh([(start, decode_end - start)], (y + 0.5, 0.6), color=COLORS["decode"])
    if ready is not None and latency is not None and latency > ready:
        ax.broken_barh([(ready, latency - ready)], (y + 0.5, 0.6), color=COLORS["answer"])
        drawn.add("answer")
    units = tool.get("units", [])
    spans = [
        (u["started_at"], u["finished_at"] - u["started_at"])
        for u in units
        if u.get("started_at") is not None and u.get("finished_at") is not None
    ]
    if spans:
        ax.broken_barh(spans, (y - 0.3, 0.6), color=COLORS["unit"], edgecolor="black", lw=0.3)
        drawn.add("unit")
    last = max([decode_end, *(s + d for s, d in spans)])
    if ready is not None and ready > last:
        ax.broken_barh([(last, ready - last)], (y - 0.3, 0.6), color=COLORS["finish"])
        drawn.add("finish")
    decoded = [u["decoded_at"] for u in units if u.get("decoded_at") is not None]
    if decoded:
        ax.plot(decoded, [y + 0.45] * len(decoded), "|", color="black", markersize=6)
        drawn.add("decoded")
    if ready is not None:  # under the decode-end line: in partial modes they often meet
        ax.plot([ready] * 2, [y - 0.4, y + 1.2], color="#c44e52", linewidth=2)
        drawn.add("ready")
    ax.plot([decode_end] * 2, [y - 0.4, y + 1.2], "--", color="black", linewidth=1)
    return drawn
