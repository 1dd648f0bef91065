"""The HTTP routes that server mode adds to SGLang's own FastAPI app.

- ``GET /conveyor/info``: discovery (the frontend asks once per backend) and facts for tests:
  version, the tools and what else requests may use (the operator's policy), parsers, the
  pids of the tool workers this server started.
- ``POST /conveyor/partial_tool``: a generation whose output feeds a tool inside the server
  (see ``tool_run.py`` for the body and the SSE stream it answers with). The request
  is admitted under the policy (``admission.py``) before anything is imported, opened
  or fetched: a refusal is a 4xx naming the rule; a server that cannot serve now (no free
  tool worker, no kernel confinement for untrusted code) answers 503. Before that, the
  operator's caps: a body over ``--tool-max-body-bytes`` is a 413 (``carrier.py``), a
  ``result_timeout`` over ``--tool-max-session-s`` a 403, a client that already holds
  ``--tool-max-sessions-per-client`` sessions a 429 (``fair_share.py``); a session that
  passes its wall time cap is ended by the server (``tool_run.py``).
  SGLang's own ``--api-key`` middleware covers these routes as it covers every route.
- Both also through sglang-router, carried on ``/v1/completions`` (``carrier.py``).

The tool worker pool lives in the HTTP process, next to the ``TokenizerManager`` whose output
stream feeds the sessions; its workers watch this process and die with it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from fastapi import Request

from conveyor_sgl.parsers import PARSERS
from conveyor_sgl.runtime.function_call import FunctionSession
from conveyor_sgl.runtime.sandbox import layers as sandbox_layers
from conveyor_sgl.runtime.server import metrics as server_metrics
from conveyor_sgl.runtime.server.admission import PolicyError, admit, check_session_time
from conveyor_sgl.runtime.server.carrier import CarrierMiddleware
from conveyor_sgl.runtime.server.fair_share import ClientSessions, client_of_request
from conveyor_sgl.runtime.server.mcp_servers import OperatorMcpServers, is_mcp_tool
from conveyor_sgl.runtime.server.policy import ServerPolicy
from conveyor_sgl.runtime.server.prefix_holds import HoldSettings
from conveyor_sgl.runtime.server.protocol import (
    ELAPSED_HEADER,
    INFO_PATH,
    PARTIAL_TOOL_PATH,
    PartialToolRequest,
    decode_request,
)
from conveyor_sgl.runtime.server.tool_run import ServerToolRun
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.tool_call import CallSession
from conveyor_sgl.runtime.workers.pool import PoolBusyError, WorkerPool
from conveyor_sgl.runtime.workers.process import WorkerStartError
from conveyor_sgl.tools.limits import limits_for

WARM_WORKERS = 4
# Threads for blocking session calls (taking a worker, waiting for results): enough for
# every request SGLang runs at once, so one slow tool never queues another's wait.
SESSION_THREADS = 64
# How long a request waits for a tool worker when all are busy before it gets a 503.
ACQUIRE_TIMEOUT_S = 10.0


class ServerMode:
    """What the routes share: the worker pool and the threads for blocking session calls."""

    def __init__(
        self,
        pool: WorkerPool | None = None,
        policy: ServerPolicy | None = None,
        acquire_timeout_s: float = ACQUIRE_TIMEOUT_S,
    ) -> None:
        self.policy = policy or ServerPolicy()
        self.acquire_timeout_s = acquire_timeout_s
        self.pool = pool or WorkerPool(size=WARM_WORKERS)
        self.executor = ThreadPoolExecutor(SESSION_THREADS, thread_name_prefix="conveyor")
        self.clients = ClientSessions(self.policy.max_sessions_per_client)
        # The operator's MCP servers start now, in the background; requests wait for theirs.
        self.mcp = OperatorMcpServers(self.policy)
        self.mcp.start_all()

    def info(self) -> dict[str, Any]:
        server_metrics.ensure(self.pool)
        return {
            "name": "conveyor_sgl",
            "version": _version(),
            "tool_partial_execution": True,
            "tools": list(self.policy.allowed_tools()),  # what requests may name
            "policy": self.policy.describe(),
            "parsers": sorted(PARSERS),
            "sandbox": sandbox_layers.report(),  # what the kernel enforces on executors here
            # Each tool's session limits (CPU, memory, disk per session, network...): the
            # packaged limits.yaml under the operator's CONVEYOR_SGL_LIMITS file.
            "limits": {
                name: msgspec.structs.asdict(limits_for(name))
                for name in self.policy.allowed_tools()
            },
            "worker_pids": self.pool.pids(),
            # The operator's MCP servers: state, tools ("mcp/<server>/<tool>"), sandbox layers.
            "mcp_servers": self.mcp.describe(),
            # Prefixes kept cached while tools run (live state: /server_info's
            # internal_states, key "conveyor_prefix_holds").
            "prefix_hold": HoldSettings.from_env().to_dict(),
        }

    async def partial_tool(self, request: Any) -> Any:
        from fastapi.responses import StreamingResponse
        from sglang.srt.entrypoints.http_server import get_global_state
        from sglang.srt.managers.io_struct import GenerateReqInput
        from sglang.srt.utils.json_response import dumps_json

        t0 = time.monotonic()  # the zero of this call's timeline
        server_metrics.ensure(self.pool)  # first request: SGLang's metrics setup is done
        try:
            spec = decode_request(await request.body())
            obj = GenerateReqInput(**{**spec.generate, "stream": True})
        except (ValueError, TypeError) as e:
            return _error(400, f"bad {PARTIAL_TOOL_PATH} request: {e}", "bad_request")
        try:
            check_session_time(self.policy, spec.result_timeout)
            slot = self.clients.take(client_of_request(request))
        except PolicyError as e:
            return _error(e.status, str(e), e.rule)
        lock = threading.Lock()
        try:
            session = await self._in_thread(self.start_session, spec, t0)
        except BaseException as e:
            slot.release()  # no session: the client's place is free again
            if isinstance(e, Exception) and (answer := _start_error(spec, e)) is not None:
                return answer
            raise
        server_metrics.record_session_started(session.tool)
        # From here the run gives the client's place back, however the session ends.
        run = ServerToolRun(
            get_global_state().tokenizer_manager,
            obj,
            session,
            t0=t0,
            result_timeout=spec.result_timeout,
            executor=self.executor,
            dumps=dumps_json,
            lock=lock,
            max_session_s=self.policy.max_session_s,
            on_end=slot.release,
        )
        # With this, the client converts our times (since receipt) to its own zero.
        elapsed = {ELAPSED_HEADER: f"{time.monotonic() - t0:.6f}"}
        return StreamingResponse(
            run.events(request), media_type="text/event-stream", headers=elapsed
        )

    def start_session(self, spec: PartialToolRequest, t0: float) -> CallSession:
        """Admit the request under the policy, then take a worker (blocking: in a thread)."""
        if is_mcp_tool(spec.tool):
            return self.start_mcp_call(spec, t0)
        admitted = admit(self.policy, spec.tool, spec.config, spec.limits)
        return ToolSession(
            admitted.checked,
            pool=self.pool,
            partial=spec.partial,
            limits=admitted.limits,
            mode="server",
            t0=t0,
            acquire_timeout_s=self.acquire_timeout_s,
        )

    def start_mcp_call(self, spec: PartialToolRequest, t0: float) -> FunctionSession:
        """A call of one of the operator's MCP servers' tools: its JSON arguments, checked
        against the tool's inputSchema, go to the server the moment they close."""
        if spec.config or spec.limits:
            raise PolicyError(
                f"tool {spec.tool!r}: an MCP tool takes no config or limits (its server's "
                "confinement is the operator's)",
                400,
                "bad_request",
            )
        function, layers = self.mcp.resolve(spec.tool)
        session = FunctionSession(
            function,
            partial=spec.partial,
            mode="server",
            t0=t0,
            result_timeout_s=spec.result_timeout,
        )
        session.tool = spec.tool  # results and metrics name it as the request did
        session.timeline.sandbox = layers
        return session

    async def _in_thread(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import asyncio

        return await asyncio.wrap_future(self.executor.submit(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self.mcp.shutdown()
        self.pool.shutdown()
        self.executor.shutdown(wait=False, cancel_futures=True)


def install_routes(app: Any, mode: ServerMode | None = None) -> ServerMode:
    mode = mode or ServerMode()
    app.add_api_route(INFO_PATH, mode.info, methods=["GET"])
    app.add_api_route(PARTIAL_TOOL_PATH, _bound(mode), methods=["POST"])
    # The same routes, carried through sglang-router; and the body cap, on both.
    app.add_middleware(CarrierMiddleware, max_body_bytes=mode.policy.max_body_bytes)
    return mode


def _bound(mode: ServerMode) -> Any:
    # FastAPI reads the signature to inject the request: a plain function, not a bound method.
    async def partial_tool(request: Request) -> Any:
        return await mode.partial_tool(request)

    return partial_tool


def _start_error(spec: PartialToolRequest, e: Exception) -> Any:
    """The answer to a session that could not start, or None for an unexpected error."""
    if isinstance(e, PolicyError):
        return _error(e.status, str(e), e.rule)
    if isinstance(e, PoolBusyError):  # the server is full: try again later
        return _error(503, f"tool {spec.tool!r} could not start: {e}", "pool_busy")
    if isinstance(e, WorkerStartError):
        return _error(503, f"tool {spec.tool!r} could not start: {e}", "worker_start")
    # What the request asked for is wrong (a config that cannot travel, a tool's check).
    if isinstance(e, ValueError | TypeError | ImportError):
        return _error(400, f"tool {spec.tool!r} could not start: {e}", "bad_request")
    return None


def _error(status: int, message: str, rule: str) -> Any:
    """A refusal before any session started; ``rule`` labels it in the refusals metric."""
    from sglang.srt.utils.json_response import orjson_response

    server_metrics.record_refusal(rule)
    return orjson_response({"error": {"message": message}}, status_code=status)


def _version() -> str:
    try:
        return version("conveyor_sgl")
    except PackageNotFoundError:
        return "unknown"
