"""What the plot modules share: the file-only backend, the modes' colours, saving a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display (a notebook's inline backend still shows them)
import matplotlib.pyplot as plt

MODE_COLORS = {"sequential": "#8c8c8c", "client": "#55a868", "server": "#c44e52"}


def save(
    fig: Any, out_dir: Path, stem: str, formats: tuple[str, ...] = ("png", "pdf")
) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<format>`` for each format, close it, return the paths.
    ``bbox_inches="tight"`` keeps legends placed below the axes inside the file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{fmt}" for fmt in formats]
    for path in paths:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths
