"""The HTTP routes that server mode adds to SGLang's own FastAPI app.

- ``GET /conveyor/info``: discovery (the frontend asks once per backend) and facts for tests:
  version, tools, parsers, the pids of the tool workers this server started.
- ``POST /conveyor/partial_tool``: a generation whose output feeds a tool inside the server
  (see ``server_session.py`` for the body and the SSE stream it answers with).

The tool worker pool lives in the HTTP process, next to the ``TokenizerManager`` whose output
stream feeds the sessions; its workers watch this process and die with it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import Request

from conveyor_sgl.runtime.parsers import PARSERS
from conveyor_sgl.runtime.pool import WorkerPool
from conveyor_sgl.runtime.server_session import (
    ELAPSED_HEADER,
    INFO_PATH,
    PARTIAL_TOOL_PATH,
    PartialToolRequest,
    ServerToolRun,
)
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.tools import registry

WARM_WORKERS = 4
# Threads for blocking session calls (taking a worker, waiting for results): enough for
# every request SGLang runs at once, so one slow tool never queues another's wait.
SESSION_THREADS = 64


class ServerMode:
    """What the routes share: the worker pool and the threads for blocking session calls."""

    def __init__(self, pool: WorkerPool | None = None) -> None:
        self.pool = pool or WorkerPool(size=WARM_WORKERS)
        self.executor = ThreadPoolExecutor(SESSION_THREADS, thread_name_prefix="conveyor")

    def info(self) -> dict[str, Any]:
        return {
            "name": "conveyor_sgl",
            "version": _version(),
            "tool_partial_execution": True,
            # Tools registered in this process (builtins); "module:Class" targets work too.
            "tools": sorted(registry._targets),
            "parsers": sorted(PARSERS),
            "worker_pids": self.pool.pids(),
        }

    async def partial_tool(self, request: Any) -> Any:
        from fastapi.responses import StreamingResponse
        from sglang.srt.entrypoints.http_server import get_global_state
        from sglang.srt.managers.io_struct import GenerateReqInput
        from sglang.srt.utils.json_response import dumps_json

        t0 = time.monotonic()  # the zero of this call's timeline
        try:
            spec = PartialToolRequest.from_body(await request.json())
            obj = GenerateReqInput(**{**spec.generate, "stream": True})
        except (ValueError, TypeError) as e:
            return _error(400, f"bad {PARTIAL_TOOL_PATH} request: {e}")
        lock = threading.Lock()
        try:
            session = await self._in_thread(
                ToolSession,
                spec.tool,
                pool=self.pool,
                partial=spec.partial,
                config=spec.config,
                mode="server",
                t0=t0,
            )
        # An unknown or broken tool, a config that cannot travel, no worker in time.
        except (ValueError, TypeError, ImportError, RuntimeError) as e:
            return _error(400, f"tool {spec.tool!r} could not start: {e}")
        run = ServerToolRun(
            get_global_state().tokenizer_manager,
            obj,
            session,
            t0=t0,
            result_timeout=spec.result_timeout,
            executor=self.executor,
            dumps=dumps_json,
            lock=lock,
        )
        # With this, the client converts our times (since receipt) to its own zero.
        elapsed = {ELAPSED_HEADER: f"{time.monotonic() - t0:.6f}"}
        return StreamingResponse(
            run.events(request), media_type="text/event-stream", headers=elapsed
        )

    async def _in_thread(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import asyncio

        return await asyncio.wrap_future(self.executor.submit(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self.pool.shutdown()
        self.executor.shutdown(wait=False, cancel_futures=True)


def install_routes(app: Any, mode: ServerMode | None = None) -> ServerMode:
    mode = mode or ServerMode()
    app.add_api_route(INFO_PATH, mode.info, methods=["GET"])
    app.add_api_route(PARTIAL_TOOL_PATH, _bound(mode), methods=["POST"])
    return mode


def _bound(mode: ServerMode) -> Any:
    # FastAPI reads the signature to inject the request: a plain function, not a bound method.
    async def partial_tool(request: Request) -> Any:
        return await mode.partial_tool(request)

    return partial_tool


def _error(status: int, message: str) -> Any:
    from sglang.srt.utils.json_response import orjson_response

    return orjson_response({"error": {"message": message}}, status_code=status)


def _version() -> str:
    try:
        return version("conveyor_sgl")
    except PackageNotFoundError:
        return "unknown"
