"""Where the project keeps what it builds once per machine (the default model, the search
index): ``$CONVEYOR_SGL_CACHE``, else ``~/.cache/conveyor_sgl``. A leaf module, so the tools
and the embedded server share it without depending on each other."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CACHE_ENV = "CONVEYOR_SGL_CACHE"


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    value = (os.environ if environ is None else environ).get(CACHE_ENV)
    return Path(value) if value else Path.home() / ".cache" / "conveyor_sgl"
