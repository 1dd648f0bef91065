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
import time
from collections.abc import Callable

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
_KILL_WAIT_S = 2.0


class WorkerStartError(RuntimeError):
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
    preload: str = "",
    forkserver: ForkServerClient | None = None,
    track: Callable[[Process], None] = lambda proc: None,
    on_close: Callable[[WorkerHandle], None] = lambda handle: None,
) -> WorkerHandle:
    """Start one worker on ``endpoint`` (forked by ``forkserver`` when given, else a new
    ``command`` process) and wait (deadline) for its ready."""
    channel = Channel(endpoint, bind=True)
    try:
        if forkserver is not None:
            proc: Process = forkserver.fork(endpoint, preload, timeout_s)
            preloaded = proc.preloaded
        else:
            proc = _popen(command, endpoint, preload)
            preloaded = frozenset(filter(None, preload.split(",")))
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


def _popen(command: tuple[str, ...] | list[str], endpoint: str, preload: str) -> Process:
    argv = [*command, "--endpoint", endpoint, "--parent-pid", str(os.getpid())]
    return subprocess.Popen(
        [*argv, "--preload", preload] if preload else argv,
        env=worker_env(),
        stdin=subprocess.DEVNULL,
        stdout=2,  # stray prints of tool code go to stderr, not the program's stdout
        start_new_session=True,
        close_fds=True,
    )


def _await_ready(proc: Process, channel: Channel, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        envelope = channel.recv(min(max(remaining, 0.0), _READY_POLL_S))
        if envelope is not None and isinstance(envelope.payload, Ready):
            return
        code = proc.poll()
        if code is not None:
            raise WorkerStartError(f"tool worker {describe_exit(code)} before it was ready")
        if remaining <= 0:
            raise WorkerStartError(f"tool worker sent no ready within {timeout_s:.3g}s")


def end_processes(procs: list[Process], grace_s: float) -> None:
    """Wait ``grace_s`` for the processes to exit, then SIGTERM, then SIGKILL; reap all."""
    alive = _wait_all(procs, grace_s)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, _KILL_WAIT_S)):
        if not alive:
            return
        for proc in alive:
            _signal_group(proc, sig)
        alive = _wait_all(alive, wait_s)


def _wait_all(procs: list[Process], timeout_s: float) -> list[Process]:
    # One deadline shared by all: ending N workers takes one grace period, not N.
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    return [proc for proc in procs if proc.poll() is None]


def terminate(proc: Process) -> None:
    """SIGTERM the worker and everything it started (no wait)."""
    _signal_group(proc, signal.SIGTERM)


def _signal_group(proc: Process, sig: signal.Signals) -> None:
    if proc.poll() is not None:
        return  # reaped: its pid (and group id) may belong to someone else by now
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)


def describe_exit(code: int) -> str:
    """``exited with code N``, naming the signal for a negative code."""
    text = f"exited with code {code}"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            return text
        hint = _SIGNAL_HINTS.get(name)
        text += f" (killed by {name}: {hint})" if hint else f" (killed by {name})"
    return text


_SIGNAL_HINTS = {
    "SIGXCPU": "CPU time limit exceeded",
    "SIGXFSZ": "file size limit exceeded",
    "SIGSEGV": "crashed, e.g. a C stack overflow from deep recursion",
    "SIGKILL": "the hard CPU time limit, the kernel's out-of-memory killer, or a kill",
}


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
