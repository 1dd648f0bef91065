"""The server the evaluation runs on, and the CPU split between decoding and the tools.

``server(url, model_path)`` yields the given server, or starts the embedded CPU one with
``--tool-partial-execution`` (without that flag if the launcher rejects it; server mode is
then skipped, with the reason).

CPU split: on a GPU host decoding runs on the accelerator and tools on spare host cores; on
this CPU-only host a tool's CPU work would instead slow decoding itself. So by default the
embedded server (torch threads included) runs on all CPUs but the last, and the evaluating
client and every tool worker (client or server mode) on the last one (``0:1`` on two
cores). The results record the split.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor_sgl.runtime.workers.cpu_affinity import TOOL_CPUS_ENV, format_cpus, parse_cpus, pin

PARTIAL_FLAG = "--tool-partial-execution"
# The evaluation runs many programs at once from one address: past the per-client cap.
EVAL_CAPS = ["--tool-max-sessions-per-client", "64"]


def cpu_split(text: str) -> tuple[str, str] | None:
    """(server CPUs, tool CPUs) as CPU lists from ``SERVER:TOOLS``, ``auto`` (all CPUs but
    the last : the last) or ``none`` (None: no split)."""
    if text == "none":
        return None
    if text == "auto":
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        return format_cpus(set(cpus[:-1])), str(cpus[-1])
    server, sep, tools = text.partition(":")
    if not sep:
        raise ValueError(f"--cpu-split must be SERVER:TOOLS, auto or none, got {text!r}")
    server_cpus, tool_cpus = parse_cpus(server), parse_cpus(tools)
    if server_cpus & tool_cpus:
        raise ValueError(f"--cpu-split {text!r}: the server and the tools share CPUs")
    return format_cpus(server_cpus), format_cpus(tool_cpus)


def apply_cpu_split(split: tuple[str, str] | None, embedded: bool) -> dict[str, str | None]:
    """Pin this client to the tool CPUs, and its tool workers (they read the environment);
    what was done, for the results. A server given by URL is not ours to pin."""
    if split is None:
        return {"server": None, "tools": None, "note": "no split: server and tools share CPUs"}
    server_cpus, tool_cpus = split
    os.environ[TOOL_CPUS_ENV] = tool_cpus
    pin(parse_cpus(tool_cpus))
    return {
        "server": server_cpus if embedded else None,
        "tools": tool_cpus,
        "note": "decoding on the server CPUs, this client and every tool worker on the tool "
        "CPUs, as on a GPU host where tools do not take decoding's compute",
    }


@contextmanager
def server(
    url: str | None, model_path: Path, extra_args: list[str] | None = None
) -> Iterator[tuple[str, str | None]]:
    """(url, why server mode cannot run or None): the given server, or the embedded one."""
    if url:
        yield url, None
        return
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer, ServerStartError

    model_args = ["--model-path", str(model_path), *(extra_args or [])]
    try:
        with EmbeddedServer(extra_args=[*model_args, PARTIAL_FLAG, *EVAL_CAPS]) as embedded:
            yield embedded.url, None
        return
    except ServerStartError as e:
        if PARTIAL_FLAG not in str(e):
            raise
        note = f"the launcher rejected {PARTIAL_FLAG}"
    with EmbeddedServer(extra_args=model_args) as embedded:
        yield embedded.url, note
