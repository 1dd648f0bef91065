"""A distribution as the benchmark reports it: median, p10, p90 and n."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def dist(values: Iterable[float | None]) -> dict[str, Any] | None:
    """Median, 10th and 90th percentile (linear interpolation) of the non-None values;
    None if there are none."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return None
    p10, median, p90 = np.percentile(kept, [10, 50, 90])
    return {"median": float(median), "p10": float(p10), "p90": float(p90), "n": len(kept)}
