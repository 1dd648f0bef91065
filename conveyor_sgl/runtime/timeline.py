"""Per-unit and per-session timings of a partial tool, in one clock.

All times are absolute ``time.monotonic()`` values (CLOCK_MONOTONIC is system-wide on Linux,
so the runtime and the worker processes stamp in the same clock). ``to_dict(t0)`` turns them
into seconds since ``t0``, the moment the generation's request was sent; eval and plots read
only that dict. In server mode the timeline crosses the wire as ``protocol.Timeline``, the
same fields in seconds since the server received the request (``moved``), converted by
msgspec from and to these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import msgspec


@dataclass
class UnitTiming:
    text: str
    decoded_at: float | None = None  # the delta that finished the unit arrived
    sent_at: float | None = None  # handed to the worker channel
    started_at: float | None = None  # the tool began work on it: feed(), or as it reported
    finished_at: float | None = None  # ... and ended it (worker clock = same clock)
    after: list[int] | None = None  # units whose work it waited for; None: the previous one

    def moved(self, by: float) -> UnitTiming:
        """A copy with each time ``by`` seconds later (``-t0``: in seconds since ``t0``)."""
        return replace(
            self,
            decoded_at=_plus(self.decoded_at, by),
            sent_at=_plus(self.sent_at, by),
            started_at=_plus(self.started_at, by),
            finished_at=_plus(self.finished_at, by),
        )


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

    def moved(self, by: float) -> ToolTimeline:
        """A copy with each time ``by`` seconds later (``-t0``: in seconds since ``t0``)."""
        return replace(
            self,
            units=[unit.moved(by) for unit in self.units],
            decode_finished_at=_plus(self.decode_finished_at, by),
            result_ready_at=_plus(self.result_ready_at, by),
        )

    def to_dict(self, t0: float) -> dict[str, Any]:
        """Its fields as plain data, times in seconds since ``t0``."""
        data: dict[str, Any] = msgspec.to_builtins(self.moved(-t0))
        return data


def _plus(t: float | None, by: float) -> float | None:
    return None if t is None else t + by


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
        units: list[dict[str, Any]] = self.to_dict()["units"]
        return units

    def to_dict(self, t0: float | None = None) -> dict[str, Any]:
        return self.timeline.to_dict(self.t0 if t0 is None else t0)


def appended_text(status: str, output: str, error: str | None) -> str:
    """What the model reads after the tool ran (``tool_result`` in a program, the tool message
    of an OpenAI tool call): its output, then the error, if any and not already in it."""
    if status == "ok" or not error or error in output:
        return output
    sep = "" if not output or output.endswith("\n") else "\n"
    return f"{output}{sep}{error}"
