"""The session executor: the one process that runs a session's tool, confined as a whole.

A worker forks its executor first thing, before it creates a thread or a ZeroMQ context
(``spawn``): the child has exactly one thread and, where the kernel allows, runs as the child
of PID 1 of a new PID namespace (``_init``). It then waits on an inherited pipe for the
session's ``Start``, loads the tool (trusted code: its ``preload`` already ran before the
fork), confines itself whole (``sandbox.confine.enter``: namespaces, rlimits, Landlock,
seccomp, no capabilities), says which layers hold (``Confined``), and only then runs the tool
on what the worker relays.

What the executor holds is what the fork server imported and preloaded: no ZeroMQ context or
socket, no pool state, no other session, no secret (the runtime scrubbed the environment).
Everything it writes back is checked by its worker (``relay.py``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit

from conveyor_sgl.runtime.sandbox import confine, landlock
from conveyor_sgl.runtime.sandbox import layers as switches
from conveyor_sgl.runtime.sandbox.namespaces import fork_isolated, thread_count
from conveyor_sgl.runtime.workers.messages import Envelope, Start
from conveyor_sgl.runtime.workers.pipe_frames import FrameReader, envelopes_from, write_all
from conveyor_sgl.runtime.workers.tool_runner import ToolRunner
from conveyor_sgl.tools.base import Tool

_PR_SET_PDEATHSIG = 1


@dataclass
class ExecutorProcess:
    """The worker's view of its executor: pid (in the worker's PID namespace) and pipe ends."""

    pid: int
    to_executor: int  # write end
    from_executor: int  # read end
    output: int = -1  # read end of the executor's stdout and stderr (capped by the worker)

    def returncode(self, status: int) -> int:
        """How the tool's process ended, from the wait status of ``pid``, as
        ``Popen.returncode`` gives it (-N: killed by signal N)."""
        code = os.waitstatus_to_exitcode(status)
        # Our executor's own codes are 0, 1 and 70; 128 + N is how a process that waits for
        # the tool's (``_init``, ``_go_on_single_threaded``) reports it was killed by N.
        if 128 < code < 128 + signal.NSIG:
            return -(code - 128)
        return code

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def prepare() -> None:
    """Work every executor would repeat, done once in the process it is forked from."""
    landlock.installed_roots()


def spawn(workdir: str | None) -> ExecutorProcess:
    """Fork the executor (call before any thread exists); the child never returns."""
    prepare()
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    out_r, out_w = os.pipe()
    isolate = "pidns" not in switches.disabled()
    pid, isolated = fork_isolated() if isolate else (os.fork(), False)
    if pid == 0:
        os.close(down_w)
        os.close(up_r)
        os.close(out_r)
        # Raw writes to fd 1 and 2 (native code, os.write) reach the worker, which passes
        # on a capped share: tool code cannot flood the server's log.
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.close(out_w)
        _die_with_parent()
        if isolated:
            _init(down_r, up_w, workdir)
        _exit(lambda: run(down_r, up_w, workdir, isolated))
    os.close(down_r)
    os.close(up_w)
    os.close(out_w)
    return ExecutorProcess(pid, down_w, up_r, out_r)


def _init(fd_in: int, fd_out: int, workdir: str | None) -> None:
    """PID 1 of the session's namespace: fork the executor proper and wait for it. (The tool
    must not be PID 1: the kernel ignores a signal that PID 1 sends itself, so a program's
    ``os.kill(os.getpid(), 9)`` would do nothing.) Ending PID 1 ends the whole namespace; its
    exit code says how the executor ended: a code, or 128 + the signal that killed it."""
    executor = os.fork()
    if executor == 0:
        os.setsid()  # its own group, which it can name (the worker's is outside its namespace)
        _exit(lambda: run(fd_in, fd_out, workdir, True))
    os.close(fd_in)
    os.close(fd_out)
    _close_all_but()
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == executor:
            _exit_as(status)


def _go_on_single_threaded() -> None:
    """Fork: the child, with only this thread, returns and goes on with the session; this
    process waits for it and ends as it ended (a code, or 128 + its signal)."""
    child = os.fork()
    if child == 0:
        return
    _exit_as(os.waitpid(child, 0)[1])


def _exit_as(status: int) -> NoReturn:
    """End as the child whose wait ``status`` this is: its code, or 128 + its signal."""
    os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


def _exit(body: Callable[[], int]) -> NoReturn:
    code = 1
    try:
        code = body()
    except BaseException:  # noqa: BLE001 - printed here: the exit below is forced
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _die_with_parent() -> None:
    parent = os.getppid()
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(70)  # the parent died before the death signal was armed


def run(fd_in: int, fd_out: int, workdir: str | None, isolated: bool) -> int:
    """The executor's life: serve one session from ``fd_in``, answer on ``fd_out``."""
    _close_all_but(fd_in, fd_out)  # nothing of the worker's (or fork server's) descriptors

    def enter_sandbox(start: Start, tool_class: type[Tool]) -> list[str]:
        reach = reach_of(tool_class, dict(start.config))
        if thread_count() > 1:
            _go_on_single_threaded()  # the tool's preload started threads (a BLAS pool)
        return confine.enter(start.limits, workdir, reach, own_pid_namespace=isolated)

    runner = ToolRunner(enter_sandbox)
    try:
        for envelope in envelopes_from(fd_in, FrameReader()):
            for payload in runner.handle(envelope):
                write_all(fd_out, Envelope(session=runner.session, payload=payload))
            if runner.done:
                break
    except BrokenPipeError:
        return 0  # the worker is gone (the session was ended): nobody to answer
    return 0


def _close_all_but(*keep: int) -> None:
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def reach_of(tool_class: type[Tool], config: dict) -> confine.Reach:
    """What the tool opens itself once confined, from what its config names (checked by the
    server's policy before the session started): its own module, the paths (writable where
    the tool writes its files), the ports of its URLs."""
    refs = tool_class.config_references(config)
    paths = [p for p in refs.paths if isinstance(p, str) and p and p != ":memory:"]
    paths = [os.path.abspath(p) for p in paths if not p.startswith("file:")]
    root_option = getattr(tool_class, "files_root_option", None)
    root = config.get(root_option) if root_option else None
    read = [_module_file(tool_class), *paths]
    write: list[str] = []
    if getattr(tool_class, "writes_files", False):
        write = [root] if isinstance(root, str) else [os.path.dirname(p) for p in paths]
    ports = tuple(_port(url) for url in refs.urls) if refs.urls else None
    return confine.Reach(read=tuple(filter(None, read)), write=tuple(write), tcp_ports=ports)


def _module_file(tool_class: type[Tool]) -> str:
    module = sys.modules.get(tool_class.__module__)
    path = getattr(module, "__file__", None) or ""
    return os.path.dirname(path) if path.endswith("__init__.py") else path


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)
