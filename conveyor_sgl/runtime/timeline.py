"""Per-unit and per-session timings of a partial tool, in one clock.

All times are absolute ``time.monotonic()`` values (CLOCK_MONOTONIC is system-wide on Linux,
so the runtime and the worker processes stamp in the same clock). ``to_dict(t0)`` turns them
into seconds since ``t0``, the moment the generation's request was sent; eval and plots read
only that dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class UnitTiming:
    text: str
    decoded_at: float | None = None  # the delta that finished the unit arrived
    sent_at: float | None = None  # handed to the worker channel
    started_at: float | None = None  # the tool began work on it: feed(), or as it reported
    finished_at: float | None = None  # ... and ended it (worker clock = same clock)
    after: list[int] | None = None  # units whose work it waited for; None: the previous one

    def to_dict(self, t0: float) -> dict[str, Any]:
        return {
            "text": self.text,
            "decoded_at": _since(self.decoded_at, t0),
            "sent_at": _since(self.sent_at, t0),
            "started_at": _since(self.started_at, t0),
            "finished_at": _since(self.finished_at, t0),
            "after": self.after,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], t0: float = 0.0) -> UnitTiming:
        """The inverse of ``to_dict(t0)``: times since ``t0`` back to the absolute clock."""
        times = {key: _at(data.get(key), t0) for key in _UNIT_TIMES}
        return cls(text=data["text"], after=data.get("after"), **times)


_UNIT_TIMES = ("decoded_at", "sent_at", "started_at", "finished_at")


@dataclass
class ToolTimeline:
    mode: str = "client"  # where the parser and the session ran: "client" or "server"
    units: list[UnitTiming] = field(default_factory=list)
    decode_finished_at: float | None = None
    result_ready_at: float | None = None
    status: str | None = None  # None until the result is known
    output: str = ""
    error: str | None = None
    sandbox: list[str] | None = None  # confinement layers in force in the worker

    def to_dict(self, t0: float) -> dict[str, Any]:
        return {
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "mode": self.mode,
            "sandbox": self.sandbox,
            "units": [unit.to_dict(t0) for unit in self.units],
            "decode_finished_at": _since(self.decode_finished_at, t0),
            "result_ready_at": _since(self.result_ready_at, t0),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], t0: float = 0.0) -> ToolTimeline:
        """The inverse of ``to_dict(t0)``: how the client reads the server's timeline (its
        times count from the server's receipt of the request: ``t0`` moves them to the
        client's zero)."""
        return cls(
            mode=data["mode"],
            units=[UnitTiming.from_dict(unit, t0) for unit in data.get("units", [])],
            decode_finished_at=_at(data.get("decode_finished_at"), t0),
            result_ready_at=_at(data.get("result_ready_at"), t0),
            status=data.get("status"),
            output=data.get("output", ""),
            error=data.get("error"),
            sandbox=data.get("sandbox"),
        )


def _since(t: float | None, t0: float) -> float | None:
    return None if t is None else t - t0


def _at(t: float | None, t0: float) -> float | None:
    return None if t is None else t + t0


@dataclass
class ToolResult:
    """What a partial tool returned, with its timeline; a view, so there is one source."""

    timeline: ToolTimeline
    t0: float  # the default zero of ``units`` and ``to_dict()``

    @property
    def status(self) -> str:
        return self.timeline.status or "error"

    @property
    def output(self) -> str:
        return self.timeline.output

    @property
    def error(self) -> str | None:
        return self.timeline.error

    @property
    def sandbox(self) -> list[str] | None:
        """The worker's confinement layers in force (None: it never entered its sandbox)."""
        return self.timeline.sandbox

    @property
    def units(self) -> list[dict[str, Any]]:
        return [unit.to_dict(self.t0) for unit in self.timeline.units]

    def to_dict(self, t0: float | None = None) -> dict[str, Any]:
        return self.timeline.to_dict(self.t0 if t0 is None else t0)


def appended_text(status: str, output: str, error: str | None) -> str:
    """What the model reads after the tool ran (``tool_result`` in a program, the tool message
    of an OpenAI tool call): its output, then the error, if any and not already in it."""
    if status == "ok" or not error or error in output:
        return output
    sep = "" if not output or output.endswith("\n") else "\n"
    return f"{output}{sep}{error}"
