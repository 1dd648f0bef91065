"""Tools for the resolution tests, importable by workers as ``resolution_tools:Class``."""

from __future__ import annotations

import os
from typing import Any

from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.base import Tool, ToolOutput


class UntrustedProbe(Tool):
    """Runs "model-written" actions: reports what its worker's confinement let through."""

    parser = "line"
    untrusted_code = True

    def start(self, config: dict[str, Any]) -> None:
        self.lines: list[str] = []

    def feed(self, unit: Unit) -> None:
        path = unit.text.strip()
        try:
            with open(path, "w") as f:  # a write outside the worker's directory
                f.write("escaped")
            self.lines.append(f"WROTE {path}")
        except OSError as e:
            self.lines.append(f"refused: {e}")

    def finish(self) -> ToolOutput:
        return ToolOutput("\n".join(self.lines) + f"\npid {os.getpid()}")


class TrustedProbe(UntrustedProbe):
    untrusted_code = False


class CountingTool(Tool):
    """Counts, in each process, how often its config was checked."""

    parser = "line"
    checks = 0

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        cls.checks += 1

    def finish(self) -> ToolOutput:
        return ToolOutput(output="done")
