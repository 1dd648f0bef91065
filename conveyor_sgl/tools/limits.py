"""Per-tool limits from YAML: ``limits_for("python")`` -> ``Limits``.

Layers, later ones winning field by field: the ``default`` section of the packaged
``limits.yaml``, its ``tools.<name>`` section, the same two sections of the user file named by
``CONVEYOR_SGL_LIMITS``, then the overrides a caller passes. Every value is checked when the
limits are built (in the runtime, before a worker is taken), so a typo fails with its name.

Limits follow the tool class, never a spelling: ``"python"`` and
``"conveyor_sgl.tools.python:PythonTool"`` resolve to one ``ResolvedTool`` whose section is
``python``. A class marked ``untrusted_code`` takes ``network``, ``confine`` and
``max_processes`` only from its own ``tools.<name>`` sections, never from ``default``: with
none (unregistered, or registered under a name without a section) it gets ``UNTRUSTED``.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.tools.registry import ResolvedTool, resolve

ENV_VAR = "CONVEYOR_SGL_LIMITS"
PACKAGED = Path(__file__).with_name("limits.yaml")
_SIZE_FIELDS = ("memory_bytes", "file_bytes", "disk_bytes")
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
# What a tool running model-written code gets where its own section says nothing.
UNTRUSTED: dict[str, Any] = {"network": False, "confine": True, "max_processes": 0}


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Resource limits and sandbox policy of one tool worker (None / defaults: no limit).

    Per-tool values come from ``limits.yaml`` beside this file; they travel to the worker in
    its ``Start`` message; what each field does, and does not, protect against is in
    ``runtime/sandbox/confine.py`` and the README's Sandbox section.
    """

    cpu_s: float | None = None  # CPU seconds of the whole worker process (RLIMIT_CPU)
    memory_bytes: int | None = None  # address space (RLIMIT_AS)
    file_bytes: int | None = None  # largest file the tool may write (RLIMIT_FSIZE)
    disk_bytes: int | None = None  # all it may write in its working directory (a tmpfs)
    max_processes: int | None = None  # child processes the tool may start (0: none)
    network: bool = True  # False: a new network namespace and no inet sockets
    confine: bool = False  # no writes outside the working dir, no signals outside the group

    def __post_init__(self) -> None:
        for name in ("cpu_s", "memory_bytes", "file_bytes", "disk_bytes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"limit {name} must be positive or null, got {value!r}")
        if self.max_processes is not None and self.max_processes < 0:
            raise ValueError(f"limit max_processes must be >= 0 or null, got {self.max_processes}")


class LimitsError(ConveyorError, ValueError):
    """A limits file or override that is not valid; the message names the file and field."""


def limits_for(
    tool: str | ResolvedTool, overrides: Limits | Mapping[str, Any] | None = None
) -> Limits:
    """The limits of ``tool``'s worker: packaged YAML < user YAML < ``overrides``.

    ``tool``: a resolved tool, a registered name or target (resolved here), or any other
    name (its YAML section, if any, over ``default``)."""
    if isinstance(overrides, Limits):
        return overrides
    resolved = _resolved(tool)
    section = resolved.limits_section if resolved else str(tool)
    merged: dict[str, Any] = {}
    own: dict[str, Any] = {}  # what the tool's own tools.<section> entries say
    sources = [PACKAGED]
    user = os.environ.get(ENV_VAR)
    if user:
        sources.append(Path(user))
    for path in sources:
        both, mine = _sections(path, section)
        merged.update(both)
        own.update(mine)
    if resolved is not None and resolved.untrusted_code:
        merged.update({k: own.get(k, v) for k, v in UNTRUSTED.items()})
    if overrides:
        merged.update(overrides)
    name = resolved.name if resolved else tool
    return _build(merged, f"limits of tool {name!r}")


def _resolved(tool: str | ResolvedTool) -> ResolvedTool | None:
    if isinstance(tool, ResolvedTool):
        return tool
    try:
        return resolve(tool)
    except (ValueError, TypeError, ImportError):
        if ":" in tool:
            raise  # a target that does not import is an error, not "default limits"
        return None  # a name nobody registered: its section, if any


def _sections(path: Path, tool: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(default + tools.<tool>, tools.<tool> alone) of one file, each checked."""
    try:
        data = _load_yaml(path)
    except (OSError, yaml.YAMLError) as e:
        raise LimitsError(f"cannot read limits file {path}: {e}") from None
    if not isinstance(data, dict) or not set(data) <= {"default", "tools"}:
        raise LimitsError(f"limits file {path}: expected the keys 'default' and 'tools'")
    tools = data.get("tools") or {}
    out: dict[str, Any] = {}
    own = tools.get(tool) if tool is not None else None
    for where, section in (("default", data.get("default")), (f"tools.{tool}", own)):
        if section is None:
            continue
        if not isinstance(section, dict):
            raise LimitsError(f"limits file {path}: section {where} must be a mapping")
        _build({**out, **section}, f"limits file {path}, section {where}")  # fail early, here
        out.update(section)
    return out, dict(own) if isinstance(own, dict) else {}


def _load_yaml(path: Path) -> Any:
    # Parsed once per version of the file: PyYAML takes ~1 ms, on every session's start.
    stat = path.stat()
    return copy.deepcopy(_parse_yaml(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=16)
def _parse_yaml(path: Path, mtime_ns: int, size: int) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


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
