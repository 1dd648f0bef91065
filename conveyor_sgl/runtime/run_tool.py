"""``run_tool``: the parser -> session -> worker path driven by plain text chunks, no LLM.

Tests, eval and correctness checks use it. An iterator that sleeps between items (or
``chunk_interval``) simulates decoding; ``partial=False`` is the sequential baseline.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.timeline import ToolResult
from conveyor_sgl.runtime.tool_call import CallDriver
from conveyor_sgl.runtime.workers.pool import WorkerPool
from conveyor_sgl.tools.base import Tool
from conveyor_sgl.tools.limits import Limits
from conveyor_sgl.tools.registry import ResolvedTool


def run_tool(
    tool: str | type[Tool] | ResolvedTool,
    chunks: Iterable[str] | str,
    partial: bool = True,
    timeout: float = 30.0,
    config: dict[str, Any] | None = None,
    pool: WorkerPool | None = None,
    chunk_interval: float = 0.0,
    limits: Limits | dict[str, Any] | None = None,
) -> ToolResult:
    """Run ``tool`` on the text in ``chunks``; unit times are relative to this call's start.

    ``decoded_at`` of a unit is when the chunk that finished it arrived. Feeding stops early
    if the tool asks to abort (or the text can never parse); ``timeout`` bounds the wait for
    the result after the last chunk. ``limits`` overrides the tool's limits from
    ``tools/limits.yaml`` (a dict: some fields; a ``Limits``: all of them). ``tool``: a
    registered name, a ``"module:Class"`` target or a Tool class (one resolution).
    """
    t0 = time.monotonic()
    if isinstance(chunks, str):
        chunks = [chunks]
    with ToolSession(tool, pool=pool, partial=partial, config=config, limits=limits, t0=t0) as s:
        call = CallDriver(s)
        for i, chunk in enumerate(chunks):
            if i and chunk_interval > 0:
                time.sleep(chunk_interval)
            if call.feed(chunk, time.monotonic()):
                break
        call.end()
        return call.result(time.monotonic() + timeout)
