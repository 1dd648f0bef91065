"""Simple and deliberately broken tools for the runtime tests.

Tool workers import these classes by their dotted path ("tools_for_tests:EchoTool"), so this
module sits at the top level of tests/ (which pytest puts on sys.path, and the pool passes
sys.path on to workers) and imports nothing heavy: no pytest, no sglang.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.base import Abort, Tool, ToolOutput, UnitWork


class EchoTool(Tool):
    """Upper-cases each line; ``config["delay_s"]`` of work per unit."""

    parser = "line"

    def start(self, config: dict[str, Any]) -> None:
        self.delay_s = float(config.get("delay_s", 0.0))
        self.lines: list[str] = []

    def feed(self, unit: Unit) -> Abort | None:
        time.sleep(self.delay_s)
        self.lines.append(unit.text.strip().upper())
        return None

    def finish(self) -> ToolOutput:
        return ToolOutput(output="\n".join(self.lines))


class ReportingTool(EchoTool):
    """Reports its own work spans: unit 1 waited for unit 0; one entry names no unit fed."""

    def finish(self) -> ToolOutput:
        work = [UnitWork(0, 100.0, 101.0), UnitWork(1, 101.0, 103.0, after=(0,))]
        return ToolOutput("done", work=[*work, UnitWork(7, 1.0, 2.0)])


class BatchEchoTool(EchoTool):
    """Cannot use partial input: gets every unit right before finish()."""

    partial = False

    def finish(self) -> ToolOutput:
        return ToolOutput(output=f"pid={os.getpid()} " + " ".join(self.lines))


class CrashOnStartTool(EchoTool):
    def start(self, config: dict[str, Any]) -> None:
        os._exit(3)


class HangTool(EchoTool):
    """Hangs in feed on a line "hang", and in finish if ``config["hang_in_finish"]``."""

    def start(self, config: dict[str, Any]) -> None:
        super().start(config)
        self.hang_in_finish = bool(config.get("hang_in_finish"))

    def feed(self, unit: Unit) -> Abort | None:
        if unit.text.strip() == "hang":
            time.sleep(3600)
        return super().feed(unit)

    def finish(self) -> ToolOutput:
        if self.hang_in_finish:
            time.sleep(3600)
        return super().finish()


class DieMidSessionTool(EchoTool):
    """The process dies in the second feed."""

    def feed(self, unit: Unit) -> Abort | None:
        if len(self.lines) == 1:
            os._exit(5)
        return super().feed(unit)


class RaisingTool(EchoTool):
    """Raises in feed on a line "raise", or in start if ``config["raise_in_start"]``."""

    def start(self, config: dict[str, Any]) -> None:
        if config.get("raise_in_start"):
            raise RuntimeError("start failed on purpose")
        super().start(config)

    def feed(self, unit: Unit) -> Abort | None:
        if unit.text.strip() == "raise":
            raise ValueError(f"bad unit {unit.text.strip()!r}")
        return super().feed(unit)


class AbortingTool(EchoTool):
    """Asks to stop decoding at a line starting with "stop"."""

    def feed(self, unit: Unit) -> Abort | None:
        if unit.text.startswith("stop"):
            return Abort(f"invalid argument: {unit.text.strip()}")
        return super().feed(unit)

    def finish(self) -> ToolOutput:
        return ToolOutput(output=f"executed {len(self.lines)} lines")


class ProbeTool(EchoTool):
    """Reports facts about its worker process: pid, heavy imports, session count."""

    sessions = 0  # a class attribute: it would count up if a worker served two sessions

    def start(self, config: dict[str, Any]) -> None:
        super().start(config)
        type(self).sessions += 1

    def finish(self) -> ToolOutput:
        heavy = [m for m in ("sglang", "torch") if m in sys.modules]
        return ToolOutput(output=f"pid={os.getpid()} sessions={self.sessions} heavy={heavy}")


class MemoryHogTool(EchoTool):
    """Allocates ``int(line)`` MiB per line (for RLIMIT_AS)."""

    def feed(self, unit: Unit) -> Abort | None:
        self.block = bytearray(int(unit.text) << 20)
        return super().feed(unit)


class CpuBurnTool(EchoTool):
    def feed(self, unit: Unit) -> Abort | None:
        while True:
            pass


class BadOutputTool(EchoTool):
    def finish(self) -> ToolOutput:
        return "not a ToolOutput"  # type: ignore[return-value]


class NotATool:
    parser = "line"


class JsonEchoTool(EchoTool):
    """Takes JSON arguments: one unit per key/value pair, structured in ``unit.data``."""

    parser = "json"

    def feed(self, unit: Unit) -> Abort | None:
        self.lines.append(f"{unit.data['key']}={unit.data['value']!r}")
        return None


class StubbornTool(EchoTool):
    """Ignores SIGTERM and hangs in feed: only SIGKILL ends it."""

    def start(self, config: dict[str, Any]) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        super().start(config)

    def feed(self, unit: Unit) -> Abort | None:
        time.sleep(3600)
        return None


class PreloadProbeTool(Tool):
    """Says whether its worker ran ``preload`` before the session."""

    parser = "line"
    # The pid of the process whose preload ran: the fork server's when the worker was forked
    # after the pool had seen the tool (warm), else the worker's own (at the session's start).
    preloaded_by: int | None = None

    @classmethod
    def preload(cls) -> None:
        if cls.preloaded_by is None:  # the first preload counts (a session's start repeats it)
            cls.preloaded_by = os.getpid()

    def finish(self) -> ToolOutput:
        warm = type(self).preloaded_by not in (None, os.getpid())
        return ToolOutput(output=f"preloaded={warm}")
