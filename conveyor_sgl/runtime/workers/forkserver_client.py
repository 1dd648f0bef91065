"""The runtime's end of the fork server (``forkserver.py``): ask for a worker, watch it.

A forked worker is the fork server's child, not ours, so ``ForkedProcess`` stands in for
``subprocess.Popen`` (``pid``, ``poll``, ``wait``, ``send_signal``): its exit code comes from
the fork server's report. The pool uses one fork server; a fork server that dies takes its
workers with it (they watch it) and is reported as their SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import IO

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.workers.cpu_affinity import move_to_tool_cpus
from conveyor_sgl.runtime.workers.forkserver_messages import (
    Exited,
    Forked,
    ForkRequest,
    decode_reply,
    encode_line,
)

FORKSERVER_COMMAND = (sys.executable, "-m", "conveyor_sgl.runtime.workers.forkserver")


class ForkServerError(ConveyorError, RuntimeError):
    """The fork server could not start a worker (it is gone, or did not answer in time)."""


class ForkedProcess:
    """A worker forked by the fork server; the part of ``Popen``'s interface the pool uses."""

    def __init__(self, pid: int, preloaded: frozenset[str]) -> None:
        self.pid = pid
        self.preloaded = preloaded  # the tools whose preload ran before this fork
        self.returncode: int | None = None
        self._exited = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        assert self.returncode is not None  # noqa: S101 - set before _exited
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def _set_exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class ForkServerClient:
    def __init__(self, env: dict[str, str], command: tuple[str, ...] = FORKSERVER_COMMAND) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own command (FORKSERVER_COMMAND)
            [*command, "--parent-pid", str(os.getpid())],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C at the terminal reaches only the runtime
            close_fds=True,
        )
        move_to_tool_cpus(self.proc.pid)  # its forks (and their start-up) run there too
        assert self.proc.stdin is not None and self.proc.stdout is not None  # noqa: S101 - PIPEs
        self._stdin: IO[bytes] = self.proc.stdin
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, Future[ForkedProcess]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._exits: dict[int, int] = {}  # reported before the fork reply was read
        self._gone = False
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="conveyor-forkserver", daemon=True
        )
        self._reader.start()

    @property
    def alive(self) -> bool:
        return not self._gone and self.proc.poll() is None

    def fork(self, endpoint: str, preload: tuple[str, ...], timeout_s: float) -> ForkedProcess:
        """A new worker on ``endpoint`` (it connects there and says ready by itself)."""
        future: Future[ForkedProcess] = Future()
        with self._lock:
            if self._gone:
                raise ForkServerError("the tool worker fork server is gone")
            request_id, self._next_id = self._next_id, self._next_id + 1
            self._pending[request_id] = future
            request = ForkRequest(id=request_id, endpoint=endpoint, preload=preload)
            try:
                self._stdin.write(encode_line(request))
                self._stdin.flush()
            except OSError as e:
                self._pending.pop(request_id, None)
                raise ForkServerError(f"the tool worker fork server is gone: {e}") from None
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            raise ForkServerError(
                f"the fork server forked no worker within {timeout_s:.3g}s"
            ) from None

    def close(self, grace_s: float = 1.0) -> None:
        """Closing stdin asks it to kill its workers and exit; then escalate."""
        with self._lock:
            try:
                self._stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=grace_s + 2.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=2.0)

    def _read(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            message = decode_reply(line)
            with self._lock:
                if isinstance(message, Exited):
                    self._on_exit(message.pid, message.code)
                else:
                    self._on_fork(message)
        stdout.close()
        self._on_gone()

    def _on_fork(self, message: Forked) -> None:
        pid = message.pid
        child = ForkedProcess(pid, frozenset(message.preloaded))
        if pid in self._exits:
            child._set_exit(self._exits.pop(pid))
        else:
            self._children[pid] = child
        future = self._pending.pop(message.id, None)
        if future is not None:
            future.set_result(child)

    def _on_exit(self, pid: int, code: int) -> None:
        child = self._children.pop(pid, None)
        if child is None:
            self._exits[pid] = code
        else:
            child._set_exit(code)

    def _on_gone(self) -> None:
        with self._lock:
            self._gone = True
            children, self._children = list(self._children.values()), {}
            pending, self._pending = list(self._pending.values()), {}
        for child in children:
            # Orphans end themselves (they watch the fork server); make sure, then report.
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except OSError:
                pass
            child._set_exit(-signal.SIGKILL)
        for future in pending:
            future.set_exception(ForkServerError("the tool worker fork server exited"))
