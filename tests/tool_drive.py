"""Helpers shared by the tool-suite tests: drive a tool in this process, read orderings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor_sgl.parsers import make_parser, parse_chunks
from conveyor_sgl.tools.base import Abort, Tool, ToolOutput


@dataclass
class Driven:
    out: ToolOutput
    abort: str | None  # the reason of the first Abort feed returned
    fed: int  # units fed before finishing (all of them unless the tool aborted)


def drive(tool_class: type[Tool], chunks: list[str] | str, config: dict[str, Any] | None = None):
    """start -> feed each unit (stopping at an Abort, as the runtime does) -> finish."""
    tool = tool_class()
    tool.start(dict(config or {}))
    units = parse_chunks(
        make_parser(tool_class.parser), [chunks] if isinstance(chunks, str) else chunks
    )
    abort, fed = None, 0
    for unit in units:
        fed += 1
        verdict = tool.feed(unit)
        if isinstance(verdict, Abort):
            abort = verdict.reason
            break
    return Driven(tool.finish(), abort, fed)


def first_started_before_last_decoded(units: list[dict[str, Any]]) -> bool:
    """Partial execution happened: the tool began on unit 1 before the last unit was decoded.

    ``units`` are a timeline's units (``ToolResult.units`` or ``meta_info["tool"]["units"]``).
    """
    return len(units) > 1 and units[0]["started_at"] < units[-1]["decoded_at"]
