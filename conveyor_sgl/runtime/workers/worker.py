"""The tool worker process: ``python -m conveyor_sgl.runtime.workers.worker --endpoint ipc://...``.

A worker serves exactly one tool session (start, feed..., finish or cancel) and exits, so
model-written code never leaks state into the next session. It preloads the tools it is told
to (``--preload``, see ``Tool.preload``), then forks the session's executor
(``executor.py``) while it still has one thread: the executor runs the tool, confined as a
whole process. Only then does the worker start threads of its own (the parent watch,
ZeroMQ's I/O thread), connect to the runtime, say ``ready`` and relay the session
(``relay.py``), checking all the executor sends. It watches its parent and dies with it (the
executor dies with the worker), so nothing outlives the runtime. It must stay cheap to start:
it imports neither sglang nor torch.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback

import zmq

from conveyor_sgl.runtime.sandbox import confine as sandbox
from conveyor_sgl.runtime.workers.channel import Channel
from conveyor_sgl.runtime.workers.cpu_affinity import pin_from_env
from conveyor_sgl.runtime.workers.executor import spawn as spawn_executor
from conveyor_sgl.runtime.workers.messages import Envelope, Ready
from conveyor_sgl.runtime.workers.relay import Relay, mirror_exit
from conveyor_sgl.tools.registry import load_tool_class

EXIT_ORPHANED = 70
PARENT_POLL_S = 0.2
FLUSH_S = 2.0  # how long the last frames (the result) may take to leave at exit


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    pin_from_env()  # before any fork or thread: the executor and the threads inherit the mask
    preload(args.preload)  # trusted tool code, before the executor's fork
    executor = spawn_executor(sandbox.workdir_for(args.endpoint))  # while single-threaded
    if args.parent_pid:
        _watch_parent(args.parent_pid)
    context = zmq.Context()
    channel = Channel(args.endpoint, bind=False, context=context)
    relay = Relay(channel, executor)
    try:
        channel.send(Envelope(session="", payload=Ready(pid=os.getpid())))
        relay.serve()
    finally:
        relay.close()
        channel.close(linger_s=FLUSH_S)
        context.term()
    assert relay.exit_status is not None  # noqa: S101 - close() reaps
    return 0 if relay.result_sent else mirror_exit(executor.returncode(relay.exit_status))


def preload(targets: list[str]) -> None:
    """Call ``preload`` of each ``"module:Class"``. Our own code, before the executor's fork;
    a failure only costs speed (the session's start reports real errors)."""
    for target in targets:
        try:
            load_tool_class(target).preload()
        except Exception as e:  # noqa: BLE001 - see above
            print(f"conveyor worker: preload of {target} failed: {e!r}", file=sys.stderr)


def _watch_parent(parent_pid: int) -> None:
    # A thread, not a socket deadline: it fires even while tool code blocks the main thread.
    # (PR_SET_PDEATHSIG is not used: it fires when the spawning *thread* exits.)
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        _die_with_group()

    threading.Thread(target=watch, name="conveyor-parent-watch", daemon=True).start()


def _die_with_group() -> None:
    # The pool starts each worker as a process-group leader; model-written code may have
    # started processes of its own, and they go too.
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(EXIT_ORPHANED)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="conveyor_sgl tool worker (one session)")
    parser.add_argument("--endpoint", required=True, help="runtime channel, e.g. ipc:///tmp/x")
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when this pid is gone")
    parser.add_argument(
        "--preload", action="append", default=[], help="a tool to preload, module:Class"
    )
    return parser.parse_args(argv)


def _exit(code: int) -> None:
    # os._exit: model-written code may have left non-daemon threads or atexit hooks behind;
    # the session is over, so nothing of it may delay the exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # noqa: BLE001 - printed here, because the exit below is forced
        traceback.print_exc()
        code = 1
    _exit(code)
