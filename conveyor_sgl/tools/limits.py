"""Per-tool limits from YAML: ``limits_for("python")`` -> ``Limits``.

Layers, later ones winning field by field: the ``default`` section of the packaged
``limits.yaml``, its ``tools.<name>`` section, the same two sections of the user file named by
``CONVEYOR_SGL_LIMITS``, then the overrides a caller passes. Every value is checked when the
limits are built (in the runtime, before a worker is taken), so a typo fails with its name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from conveyor_sgl.runtime.messages import Limits

ENV_VAR = "CONVEYOR_SGL_LIMITS"
PACKAGED = Path(__file__).with_name("limits.yaml")
_SIZE_FIELDS = ("memory_bytes", "file_bytes")
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


class LimitsError(ValueError):
    """A limits file or override that is not valid; the message names the file and field."""


def limits_for(tool: str, overrides: Limits | Mapping[str, Any] | None = None) -> Limits:
    """The limits of ``tool``'s worker: packaged YAML < user YAML < ``overrides``."""
    if isinstance(overrides, Limits):
        return overrides
    merged: dict[str, Any] = {}
    sources = [PACKAGED]
    user = os.environ.get(ENV_VAR)
    if user:
        sources.append(Path(user))
    for path in sources:
        merged.update(_sections(path, tool))
    if overrides:
        merged.update(overrides)
    return _build(merged, f"limits of tool {tool!r}")


def _sections(path: Path, tool: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise LimitsError(f"cannot read limits file {path}: {e}") from None
    if not isinstance(data, dict) or not set(data) <= {"default", "tools"}:
        raise LimitsError(f"limits file {path}: expected the keys 'default' and 'tools'")
    tools = data.get("tools") or {}
    out: dict[str, Any] = {}
    for where, section in (("default", data.get("default")), (f"tools.{tool}", tools.get(tool))):
        if section is None:
            continue
        if not isinstance(section, dict):
            raise LimitsError(f"limits file {path}: section {where} must be a mapping")
        _build({**out, **section}, f"limits file {path}, section {where}")  # fail early, here
        out.update(section)
    return out


def _build(values: dict[str, Any], where: str) -> Limits:
    values = dict(values)
    try:
        for name in _SIZE_FIELDS:
            if isinstance(values.get(name), str):
                values[name] = parse_size(values[name])
        return msgspec.convert(values, Limits)
    except (msgspec.ValidationError, ValueError) as e:
        raise LimitsError(f"{where}: {e}") from None


def parse_size(text: str) -> int:
    """``"512 MiB"`` -> 536870912 (K, M, G, T are powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (write e.g. 512 MiB or 2 GiB)")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.upper()])
