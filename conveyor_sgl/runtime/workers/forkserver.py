"""The fork server: ``python -m conveyor_sgl.runtime.workers.forkserver --parent-pid P``.

Every tool session gets a fresh worker process, and a fresh interpreter costs ~50-100 ms of
CPU (start-up and imports): at a session every 50 ms that is most of a core, and the warm
pool drained under a steady stream. This process pays it once: it imports everything a
worker needs (and the tools' ``preload``), then forks one worker per request, in ~2 ms.

It must stay single-threaded (a fork copies only the calling thread), so it creates no
ZeroMQ context: the forked child does, in ``worker.main``. Requests come as JSON lines on
stdin (``ForkRequest``); it answers on stdout with ``Forked`` once forked and ``Exited`` once a
child is reaped (``forkserver_messages.py``). When stdin closes (the runtime is gone or shut the
pool down), it kills its workers' process groups, reports them and exits.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import traceback

from conveyor_sgl.runtime.workers import executor, worker
from conveyor_sgl.runtime.workers.forkserver_messages import (
    Exited,
    Forked,
    ForkRequest,
    Reply,
    decode_request,
    encode_line,
)

_POLL_S = 0.5  # also how quickly a vanished parent is noticed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="conveyor_sgl tool worker fork server")
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    executor.prepare()  # inherited by every worker and executor forked from here
    server = ForkServer(args.parent_pid)
    try:
        server.serve()
    finally:
        server.end_children()
    return 0


class ForkServer:
    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid
        self.children: set[int] = set()
        self.preloaded: list[str] = []
        self._buffer = b""
        # SIGCHLD wakes the select below, so exits are reported at once.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def serve(self) -> None:
        while os.getppid() == self.parent_pid:
            ready, _, _ = select.select([0, self._wake_r], [], [], _POLL_S)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            self.reap()
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    return  # the runtime closed the pool (or died)
                for line in self._lines(data):
                    self.handle(decode_request(line))

    def handle(self, request: ForkRequest) -> None:
        for target in request.preload:
            if target not in self.preloaded:
                worker.preload([target])  # trusted tool code, before any fork and sandbox
                self.preloaded.append(target)
        pid = os.fork()
        if pid == 0:
            self._child(request.endpoint)
        self.children.add(pid)
        self._reply(Forked(id=request.id, pid=pid, preloaded=tuple(self.preloaded)))

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            try:
                self._reply(Exited(pid=pid, code=_returncode(status)))
            except BrokenPipeError:
                pass  # the parent is gone (that is why we end): reap the rest quietly

    def end_children(self) -> None:
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)  # each worker leads its own group
            except OSError:
                pass
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            self.children.discard(pid)
            try:
                self._reply(Exited(pid=pid, code=_returncode(status)))
            except BrokenPipeError:
                pass  # the parent is gone (that is why we end): reap the rest quietly

    def _child(self, endpoint: str) -> None:
        # What Popen(start_new_session=True, stdin=DEVNULL, stdout=2) gave a worker.
        code = 1
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(self._wake_r)
            os.close(self._wake_w)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
            os.dup2(2, 1)  # stray prints of tool code go to stderr, never into our replies
            code = worker.main(["--endpoint", endpoint, "--parent-pid", str(os.getppid())])
        except BaseException:  # noqa: BLE001 - printed here: the exit below is forced
            traceback.print_exc()
        worker._exit(code)

    def _lines(self, data: bytes) -> list[bytes]:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        return [line for line in lines if line.strip()]

    def _reply(self, message: Reply) -> None:
        data = encode_line(message)
        while data:
            data = data[os.write(1, data) :]


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    try:
        exit_code = main()
    except Exception:  # noqa: BLE001 - printed, then the forced exit of a worker process
        traceback.print_exc()
        exit_code = 1
    sys.stdout.flush()
    os._exit(exit_code)
