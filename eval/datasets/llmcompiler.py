"""LLMCompiler's public datasets (Kim et al., ICML 2024; MIT), vendored in data/llmcompiler/.

``CONVEYOR_SGL_LLMCOMPILER_DATA`` names another copy (the same three JSON files).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

DATA_ENV = "CONVEYOR_SGL_LLMCOMPILER_DATA"
VENDORED = Path(__file__).resolve().parent / "data" / "llmcompiler"
CITATION = (
    "LLMCompiler (Kim et al., 'An LLM Compiler for Parallel Function Calling', ICML 2024), "
    "MIT license, github.com/SqueezeAILab/LLMCompiler datasets/ at commit a00c9d3"
)
FILES = {
    "parallelqa": "parallelqa_dataset.json",
    "hotpotqa": "hotpotqa_comparison.json",
    "movie": "movie_recommendations_formatted.json",
}


def data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV) or VENDORED)


@functools.cache
def _load(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(path.read_text(encoding="utf-8")))


def dataset(name: str) -> tuple[dict[str, Any], ...]:
    """The items of one dataset (``parallelqa``, ``hotpotqa``, ``movie``), in file order."""
    return _load(data_dir() / FILES[name])
