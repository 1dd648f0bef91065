"""Starting one tool worker process and ending worker processes with escalation.

A worker is forked by the pool's fork server (``forkserver.py``: a fresh process in ~2 ms,
imports already done), or started with ``subprocess.Popen`` from a custom command; never a
fork of the runtime, which may hold an SGLang client with threads. Either way it leads a new
process group, so that ending it also ends any process that model-written code started, and
a Ctrl-C at the terminal reaches only the runtime, which then shuts its workers down in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

from conveyor_sgl.process_group import (
    ProcessStartError,
    end_groups,
    signal_group,
    start_group,
    wait_ready,
)
from conveyor_sgl.runtime.sandbox import confine as sandbox
from conveyor_sgl.runtime.workers.channel import Channel, ChannelError
from conveyor_sgl.runtime.workers.cpu_affinity import move_to_tool_cpus
from conveyor_sgl.runtime.workers.forkserver_client import (
    ForkedProcess,
    ForkServerClient,
    ForkServerError,
)
from conveyor_sgl.runtime.workers.messages import Envelope, Ready, Shutdown

# A worker is either our child or the fork server's; both answer pid/poll/wait/send_signal.
Process = subprocess.Popen | ForkedProcess
WORKER_COMMAND = (sys.executable, "-m", "conveyor_sgl.runtime.workers.worker")
_READY_POLL_S = 0.02  # how quickly a worker that dies during start-up is noticed


class WorkerStartError(ProcessStartError):
    """A tool worker could not be started (it crashed, or sent no ready in time)."""


class WorkerHandle:
    """One started, ready worker and the runtime end of its channel."""

    def __init__(
        self,
        proc: Process,
        channel: Channel,
        on_close: Callable[[WorkerHandle], None] = lambda handle: None,
        preloaded: frozenset[str] = frozenset(),
    ) -> None:
        self.proc = proc
        self.channel = channel
        self.preloaded = preloaded  # "module:Class" of the tools preloaded before any session
        self._on_close = on_close
        self.closed = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def ask_shutdown(self) -> None:
        """Ask the worker to exit (no wait); a worker that is gone or stuck is not waited on."""
        if not self.channel.closed and self.proc.poll() is None:
            try:
                self.channel.send(Envelope(session="", payload=Shutdown()), timeout_s=0.0)
            except ChannelError:
                pass

    def close(self, grace_s: float = 1.0) -> None:
        """End the worker (ask, then SIGTERM, then SIGKILL) and release the channel."""
        if self.closed:
            return
        self.closed = True
        try:
            if grace_s > 0:
                self.ask_shutdown()
            end_processes([self.proc], grace_s)
        finally:
            self.channel.close()
            sandbox.remove_workdir(self.channel.endpoint)
            self._on_close(self)

    def kill(self) -> None:
        """End the worker now: it is stuck in tool code or no longer wanted."""
        self.close(grace_s=0.0)


def spawn_worker(
    endpoint: str,
    *,
    timeout_s: float,
    command: tuple[str, ...] | list[str] = WORKER_COMMAND,
    preload: tuple[str, ...] = (),
    forkserver: ForkServerClient | None = None,
    track: Callable[[Process], None] = lambda proc: None,
    on_close: Callable[[WorkerHandle], None] = lambda handle: None,
) -> WorkerHandle:
    """Start one worker on ``endpoint`` (forked by ``forkserver`` when given, else a new
    ``command`` process) and wait (deadline) for its ready."""
    channel = Channel(endpoint, bind=True)
    try:
        if forkserver is not None:
            forked = forkserver.fork(endpoint, preload, timeout_s)
            proc: Process = forked
            preloaded = forked.preloaded
        else:
            proc = _popen(command, endpoint, preload)
            preloaded = frozenset(preload)
    except (OSError, ForkServerError) as e:
        channel.close()
        raise WorkerStartError(f"cannot start tool worker: {e}") from None
    move_to_tool_cpus(proc.pid)
    try:
        track(proc)
        _await_ready(proc, channel, timeout_s)
    except BaseException:
        end_processes([proc], 0.0)
        channel.close()
        sandbox.remove_workdir(endpoint)
        raise
    sandbox.forget_endpoint(endpoint)
    return WorkerHandle(proc, channel, on_close, preloaded)


def _popen(
    command: tuple[str, ...] | list[str], endpoint: str, preload: tuple[str, ...]
) -> Process:
    argv = [*command, "--endpoint", endpoint, "--parent-pid", str(os.getpid())]
    return start_group(
        [*argv, *(arg for target in preload for arg in ("--preload", target))],
        env=worker_env(),
        stdout=2,  # stray prints of tool code go to stderr, not the program's stdout
    )


def _await_ready(proc: Process, channel: Channel, timeout_s: float) -> None:
    def said_ready(max_wait_s: float) -> bool:
        envelope = channel.recv(min(max_wait_s, _READY_POLL_S))
        return envelope is not None and isinstance(envelope.payload, Ready)

    try:
        wait_ready(proc, said_ready, timeout_s, "tool worker", not_ready="sent no ready")
    except ProcessStartError as e:
        raise WorkerStartError(str(e)) from None


def end_processes(procs: Sequence[Process], grace_s: float) -> None:
    """Wait ``grace_s`` for the workers to exit, then SIGTERM, then SIGKILL; reap all."""
    end_groups(procs, grace_s, asked_s=grace_s)


def terminate(proc: Process) -> None:
    """SIGTERM the worker and everything it started (no wait)."""
    signal_group(proc, signal.SIGTERM)


def worker_env() -> dict[str, str]:
    """The runtime's environment without secrets (``sandbox.scrub_env``), with its sys.path
    as PYTHONPATH.

    Tool classes registered from modules the runtime can import (test modules that pytest
    put on sys.path, a program's own package) must be importable in the worker too.
    """
    env = sandbox.scrub_env(dict(os.environ))
    paths = [os.path.abspath(p or os.curdir) for p in sys.path]
    paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
