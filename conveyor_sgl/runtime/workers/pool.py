"""A bounded pool of started, ready tool workers, so that a session does not pay start-up.

Each worker serves one session and exits; the pool keeps ``size`` fresh ones warm in a
background thread and starts a replacement as soon as one is handed out. At most
``max_workers`` workers live at once (warm, starting or handed out): under load a session
waits, up to its deadline, for one to be freed, rather than the host running out of memory
or processes. ``acquire`` is thread-safe (SGLang's ``run_batch`` runs programs on many
threads); a handed-out worker and its socket then belong to the one session that uses it.

A warm worker also preloads the tools of the pool's recent sessions (``Tool.preload``: a
search index, heavy imports) while it waits, so a session of a tool in use starts at once.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from typing import Self

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.workers.forkserver_client import ForkServerClient
from conveyor_sgl.runtime.workers.process import (
    WORKER_COMMAND,
    Process,
    WorkerHandle,
    WorkerStartError,
    end_processes,
    spawn_worker,
    terminate,
    worker_env,
)

_MAX_BACKOFF_S = 5.0  # between failed warm starts, so a broken setup does not spin
MAX_WORKERS_ENV = "CONVEYOR_MAX_TOOL_WORKERS"
_DEFAULT_MAX_WORKERS = 16  # a Python worker holds ~30-60 MB; 16 tools at once is a lot for 2 cores
_RECENT_SESSIONS = 8  # whose tools a new warm worker preloads


class PoolClosedError(ConveyorError, RuntimeError):
    """The pool was shut down."""


class PoolBusyError(WorkerStartError):
    """Every worker slot stayed in use until the deadline."""


def default_max_workers() -> int:
    """The cap on live workers: ``$CONVEYOR_MAX_TOOL_WORKERS``, else 16."""
    raw = os.environ.get(MAX_WORKERS_ENV, "")
    try:
        value = int(raw) if raw else _DEFAULT_MAX_WORKERS
    except ValueError:
        raise ValueError(f"{MAX_WORKERS_ENV} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{MAX_WORKERS_ENV} must be at least 1, got {value}")
    return value


class WorkerPool:
    def __init__(
        self,
        size: int = 2,
        *,
        max_workers: int | None = None,
        start_timeout_s: float = 10.0,
        command: tuple[str, ...] | list[str] = WORKER_COMMAND,
    ) -> None:
        max_workers = default_max_workers() if max_workers is None else max_workers
        if size < 0 or max_workers < 1 or start_timeout_s <= 0:
            raise ValueError(
                "need size >= 0, max_workers >= 1 and start_timeout_s > 0, "
                f"got {size}, {max_workers}, {start_timeout_s}"
            )
        self.size = min(size, max_workers)
        self.max_workers = max_workers
        self.start_timeout_s = start_timeout_s
        self.last_error: str | None = None  # the latest failed warm start, for diagnosis
        self._command = tuple(command)
        # A private 0700 directory: only this user can connect to the ipc endpoints.
        self._dir = tempfile.mkdtemp(prefix="conveyor-")
        self._names = itertools.count()
        self._cond = threading.Condition()
        self._warm: deque[WorkerHandle] = deque()
        self._procs: set[Process] = set()  # every worker alive, warm or handed out
        self._starting = 0
        self._slots = 0  # live workers plus starts in progress; never above max_workers
        self._recent_tools: deque[str] = deque(maxlen=_RECENT_SESSIONS)  # "module:Class"
        # The stock worker is forked by a fork server (started on first use); a custom
        # command (tests of broken workers) is started as its own process.
        self._use_forkserver = self._command == tuple(WORKER_COMMAND)
        self._forkserver: ForkServerClient | None = None
        self._forkserver_lock = threading.Lock()
        self._closed = False
        atexit.register(self.shutdown)
        self._filler = threading.Thread(target=self._fill, name="conveyor-pool", daemon=True)
        self._filler.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self, timeout_s: float = 10.0, tool: str | None = None) -> WorkerHandle:
        """A ready worker: a warm one if there is one, else one started now; when all
        ``max_workers`` are in use, wait for a free slot (deadline: PoolBusyError).
        ``tool`` (its ``"module:Class"``): the workers started from now on preload it."""
        deadline = time.monotonic() + timeout_s
        if tool:
            with self._cond:
                self._recent_tools.append(tool)
        while True:
            handle = self._take_warm_or_slot(deadline, timeout_s, tool)
            if handle is not None:
                return handle
            try:
                return self._spawn(min(deadline - time.monotonic(), self.start_timeout_s))
            except BaseException:
                self._release_slot()
                raise

    def in_use(self) -> int:
        """Workers live or starting (at most ``max_workers``)."""
        with self._cond:
            return self._slots

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until ``size`` workers are warm; False at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._warm) < self.size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return not self._closed

    def pids(self) -> list[int]:
        """Process ids of every live worker of this pool (warm or handed out)."""
        with self._cond:
            return sorted(proc.pid for proc in self._procs if proc.poll() is None)

    def shutdown(self, grace_s: float = 1.0) -> None:
        """End every worker (ask, SIGTERM, SIGKILL); idempotent, also run at exit."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            warm, procs = list(self._warm), list(self._procs)
            self._warm.clear()
            self._cond.notify_all()
        atexit.unregister(self.shutdown)
        for handle in warm:
            handle.ask_shutdown()
        # Handed-out workers' sockets belong to their sessions' threads: terminate those
        # workers directly (their sessions see them exit); the warm ones were asked.
        asked = {handle.proc for handle in warm}
        for proc in procs:
            if proc not in asked:
                terminate(proc)
        end_processes(procs, grace_s)
        with self._cond:
            self._procs.difference_update(procs)
        for handle in warm:
            handle.close(grace_s=0.0)
        self._filler.join(timeout=self.start_timeout_s)
        with self._forkserver_lock:
            forkserver, self._forkserver = self._forkserver, None
        if forkserver is not None:
            forkserver.close(grace_s)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _take_warm_or_slot(
        self, deadline: float, timeout_s: float, tool: str | None = None
    ) -> WorkerHandle | None:
        """A live warm worker (one that preloaded ``tool`` if any did), or None with a slot
        reserved for a start by the caller."""
        dead = []
        try:
            with self._cond:
                while True:
                    self._check_open()
                    while self._warm:
                        handle = self._pop_warm(tool)
                        self._cond.notify_all()  # the filler starts a replacement
                        if handle.exit_code() is None:
                            return handle
                        dead.append(handle)  # died while idle: never hand it out
                    if self._slots < self.max_workers:
                        self._slots += 1
                        return None
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolBusyError(
                            f"all {self.max_workers} tool workers stayed busy for "
                            f"{timeout_s:.3g}s (raise ${MAX_WORKERS_ENV} or the deadline)"
                        )
                    self._cond.wait(remaining)  # woken by a freed slot or a warm worker
        finally:
            for handle in dead:
                handle.kill()  # frees its slot through _forget

    def _pop_warm(self, tool: str | None) -> WorkerHandle:
        # The oldest warm worker that preloaded the tool, else the oldest: a worker forked
        # before the tool's first session would make that session pay the preload itself.
        for handle in self._warm:
            if tool in handle.preloaded:
                self._warm.remove(handle)
                return handle
        return self._warm.popleft()

    def _release_slot(self) -> None:
        with self._cond:
            self._slots -= 1
            self._cond.notify_all()

    def _spawn(self, timeout_s: float) -> WorkerHandle:
        self._check_open()
        if timeout_s <= 0:
            raise WorkerStartError("no tool worker was ready before the deadline")
        endpoint = f"ipc://{self._dir}/w{next(self._names)}"
        with self._cond:
            preload = tuple(dict.fromkeys(self._recent_tools))
        return spawn_worker(
            endpoint,
            timeout_s=timeout_s,
            command=self._command,
            preload=preload,
            forkserver=self._live_forkserver() if self._use_forkserver else None,
            track=self._track,
            on_close=self._forget,
        )

    def _live_forkserver(self) -> ForkServerClient:
        """The fork server, started (again, if it died) on demand."""
        with self._forkserver_lock:
            self._check_open()
            if self._forkserver is None or not self._forkserver.alive:
                if self._forkserver is not None:
                    self._forkserver.close(grace_s=0.0)
                self._forkserver = ForkServerClient(worker_env())
            return self._forkserver

    def _track(self, proc: Process) -> None:
        with self._cond:
            self._check_open()  # a worker started during shutdown would escape it
            self._procs.add(proc)

    def _forget(self, handle: WorkerHandle) -> None:
        with self._cond:
            self._procs.discard(handle.proc)
            self._slots -= 1
            self._cond.notify_all()  # a waiting acquire or the filler may start one now

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosedError("the tool worker pool is shut down")

    def _fill(self) -> None:
        failures = 0
        while self._reserve_start():
            try:
                handle = self._spawn(self.start_timeout_s)
            except Exception as e:  # noqa: BLE001 - any failed start: back off, keep filling
                self._release_slot()
                failures += 1
                self._end_start(
                    None, error=str(e), backoff_s=min(_MAX_BACKOFF_S, 0.05 * 2**failures)
                )
                continue
            failures = 0
            self._end_start(handle)

    def _reserve_start(self) -> bool:
        with self._cond:
            while not self._closed and (
                len(self._warm) + self._starting >= self.size or self._slots >= self.max_workers
            ):
                self._cond.wait()
            if self._closed:
                return False
            self._starting += 1
            self._slots += 1
            return True

    def _end_start(
        self, handle: WorkerHandle | None, error: str = "", backoff_s: float = 0.0
    ) -> None:
        with self._cond:
            self._starting -= 1
            if handle is not None and not self._closed:
                self._warm.append(handle)
                self._cond.notify_all()
                return
            if error and not self._closed:
                self.last_error = error
                self._cond.wait(backoff_s)  # woken early by shutdown
        if handle is not None:
            handle.kill()  # started while the pool was shutting down


_default_lock = threading.Lock()
_default: WorkerPool | None = None


def default_pool() -> WorkerPool:
    """The process-wide pool, created on first use and shut down at exit."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = WorkerPool()
        return _default


def shutdown_default_pool() -> None:
    global _default
    with _default_lock:
        pool, _default = _default, None
    if pool is not None:
        pool.shutdown()
