"""Server mode vs client mode on one server launched with --tool-partial-execution.

    python -m eval.server_mode_bench [--url URL] [--units 1000] [--runs 3]

Prints (a benchmark, not a test):
1. dispatch latency, from the moment the server's HTTP process has a unit's last token
   (``meta_info["conveyor_server_time"]``, stamped by the plugin where ``/generate`` and the
   partial tool route both read the request's output) to the moment the tool worker starts
   on the unit (``started_at``): median and p99 over at least ``--units`` units per mode.
   Client mode is the executor's own path (``/generate`` SSE -> ``CallDriver.take``),
   driven here so that each unit can be paired with the server stamp of its chunk.
2. end-to-end latency of the forced code program of ``programs/code_solver.py``: client
   mode, server mode and the sequential baseline (client mode, ``partial=False``), as
   medians over ``--runs`` interleaved runs and ratios;
3. the final generation's ``cached_tokens`` as a share of the tokens before the tool output.
Server and client run on one machine here, so one monotonic clock covers both.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import sglang as sgl
from sglang.lang.ir import SglSamplingParams

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.primitives.endpoint import Endpoint, build_payload
from conveyor_sgl.runtime.server.plugin import SERVER_TIME_KEY
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.tool_call import CallDriver
from programs.code_solver import REFERENCE_CODE, TASK, forced, solve

STATEMENTS_PER_REQUEST = 50  # short requests: CPU decoding slows down with the context
CONCURRENT_REQUESTS = 4


@sgl.function
def statements(s, code_regex, mode=None):
    s += "Code:\n" + partial_tool(
        "code", tool="python", mode=mode, max_tokens=1024, regex=code_regex
    )
    s += "\nDone:\n" + tool_result("code", timeout=120)


def statement_code(request: int) -> str:
    return "".join(f"v{request}_{i} = {i}\n" for i in range(STATEMENTS_PER_REQUEST))


def server_dispatch(backend: Any, request: int) -> list[tuple[float, float]]:
    """Server mode through the real program: started_at - decoded_at, both stamped by the
    server (decoded_at is the plugin's stamp of the chunk that finished the unit)."""
    state = statements.run(forced(statement_code(request)), backend=backend)
    if state.error():
        raise state.error()
    tool = state.get_meta_info("code")["tool"]
    assert tool["mode"] == "server" and tool["status"] == "ok", tool
    return [
        (u["sent_at"] - u["decoded_at"], u["started_at"] - u["decoded_at"])
        for u in tool["units"]
        if u["started_at"] is not None
    ]


def client_dispatch(backend: Any, request: int) -> list[tuple[float, float]]:
    """Client mode: the executor's path (SSE -> CallDriver.take), each unit paired with the server
    stamp of the chunk that finished it."""
    endpoint = Endpoint.of_backend(backend)
    params = SglSamplingParams(max_new_tokens=1024, regex=forced(statement_code(request)))
    payload = build_payload(backend, params, {"text": "Code:\n"})
    stamps: list[float] = []
    with ToolSession("python", mode="client") as session:
        call = CallDriver(session, payload.get("sampling_params", {}).get("stop"))
        for event in endpoint.generate_stream(payload):
            before = len(session.timeline.units)
            call.take(event.text, event.meta_info, event.finished, None)
            new_units = len(session.timeline.units) - before
            stamps += [event.meta_info[SERVER_TIME_KEY]] * new_units
        call.end()
        result = call.result(time.monotonic() + 120)
    assert result.status == "ok", result.error
    units = result.timeline.units
    return [
        (u.sent_at - stamp, u.started_at - stamp)
        for u, stamp in zip(units, stamps, strict=False)
        if u.started_at is not None and u.sent_at is not None
    ]


def dispatch(backend: Any, units: int) -> None:
    print("dispatch latency: server has the unit's last token -> worker starts on it")
    print(f"  ({CONCURRENT_REQUESTS} requests at a time; in brackets: until the unit was sent)")
    for mode, measure in (("client", client_dispatch), ("server", server_dispatch)):
        pairs: list[tuple[float, float]] = []
        request = 0
        with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
            while len(pairs) < units:
                batch = range(request, request + CONCURRENT_REQUESTS)
                for result in pool.map(measure, [backend] * len(batch), batch):
                    pairs += result
                request += CONCURRENT_REQUESTS
        sent = [p[0] * 1000 for p in pairs]
        started = [p[1] * 1000 for p in pairs]
        print(
            f"  {mode:6s} median {statistics.median(started):7.3f} ms "
            f"({statistics.median(sent):6.3f})  p99 {_p99(started):7.3f} ms "
            f"({_p99(sent):6.3f})  over {len(pairs)} units ({request} requests)"
        )


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def end_to_end(backend: Any, runs: int) -> None:
    variants = {
        "client": {"mode": "client"},
        "server": {"mode": None},
        "sequential": {"mode": "client", "partial": False},
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    shares: dict[str, list[float]] = {name: [] for name in variants}
    _run_solve(backend, {"mode": None})  # warm-up: regex compilation, worker pool
    for _ in range(runs):
        for name, kwargs in variants.items():
            backend.flush_cache()
            elapsed, share = _run_solve(backend, kwargs)
            times[name].append(elapsed)
            shares[name].append(share)
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"end to end, forced code program (median of {runs} interleaved runs)")
    for name in variants:
        print(
            f"  {name:10s} {med[name]:7.3f} s   cached_tokens after tool_result: "
            f"{statistics.median(shares[name]):.1%} of the preceding tokens"
        )
    print(
        f"  ratios: server/client {med['server'] / med['client']:.3f}  "
        f"server/sequential {med['server'] / med['sequential']:.3f}  "
        f"client/sequential {med['client'] / med['sequential']:.3f}"
    )


def _run_solve(backend: Any, kwargs: dict[str, Any]) -> tuple[float, float]:
    start = time.monotonic()
    state = solve.run(TASK, forced(REFERENCE_CODE, "```"), backend=backend, **kwargs)
    state.sync()  # run() returns at once; the program runs on the executor's thread
    elapsed = time.monotonic() - start
    if state.error():
        raise state.error()
    code, answer = state.get_meta_info("code"), state.get_meta_info("answer")
    assert code["tool"]["status"] == "ok", code["tool"]["error"]
    preceding = code["prompt_tokens"] + code["completion_tokens"]
    return elapsed, answer["cached_tokens"] / preceding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a server launched with --tool-partial-execution")
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    flagged = EmbeddedServer(
        extra_args=["--tool-partial-execution", "--tool-max-sessions-per-client", "64"]
    )
    with nullcontext(args.url) if args.url else flagged as server:
        url = server if isinstance(server, str) else server.url
        backend = sgl.RuntimeEndpoint(url)
        dispatch(backend, args.units)
        end_to_end(backend, args.runs)


if __name__ == "__main__":
    main()
