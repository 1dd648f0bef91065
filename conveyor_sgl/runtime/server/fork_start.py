"""SGLang's CPU server processes started by fork, not spawn: none re-imports torch and SGLang.

SGLang starts its scheduler and detokenizer with multiprocessing's ``spawn``, which a CUDA
context needs. Each spawned child imports torch and SGLang again, ~14 s of this 2-core
host's CPU per server start (of ~28 s) for modules the launching process already holds. On
the CPU engine there is no CUDA context, and when SGLang starts those processes the
launching process has run no torch kernel (no OpenMP pool to inherit) and, checked at that
moment, runs no other thread whose locks a fork could copy held.

Our launch plans (the launcher, ``sglang serve --model-type conveyor``, ``start_runtime``)
set ``FORK_ENV=1`` on CPU unless the environment already says otherwise (``0`` keeps
spawn); the plugin then registers these hooks in every SGLang process, and they act where
SGLang starts its processes: the launcher, the HTTP process, or ``sgl.Runtime``'s child.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from conveyor_sgl.runtime.server.sglang_hooks import register_once

FORK_ENV = "CONVEYOR_SGL_FORK_SERVER"
THREADS_ENV = "OMP_NUM_THREADS"  # torch's intra-op threads, read when torch is imported
ENGINE = "sglang.srt.entrypoints.engine.Engine"
TARGETS = (f"{ENGINE}._launch_scheduler_processes", f"{ENGINE}._launch_detokenizer_subprocesses")
FORKED = "conveyor_sgl: SGLang's CPU server processes start by fork"
KEPT_SPAWN = "conveyor_sgl: SGLang's server processes start by spawn"


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(FORK_ENV) == "1"


def register() -> None:
    """Hook where SGLang starts its processes, once per process; applied by load_plugins."""
    for target in TARGETS:
        register_once(target, start_by_fork, "AROUND")


def start_by_fork(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``original`` (which starts processes) with the fork start method, then put back
    the one that was set; with another thread alive, leave it (spawn) and say why."""
    threads = threading.active_count()
    if threads > 1:
        print(f"{KEPT_SPAWN}: {threads} threads are running", file=sys.stderr, flush=True)
        return original(*args, **kwargs)
    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("fork", force=True)
    print(FORKED, file=sys.stderr, flush=True)
    try:
        with threads_as_spawn_would():
            return original(*args, **kwargs)
    finally:
        multiprocessing.set_start_method(before, force=True)


@contextlib.contextmanager
def threads_as_spawn_would(environ: Mapping[str, str] = os.environ) -> Iterator[None]:
    """Give torch the intra-op thread count a spawned child would read (``OMP_NUM_THREADS``)
    while the children fork, then put this process's back.

    A forked child keeps its parent's count, which torch read from the environment when the
    parent imported it, before a launch plan set the variable. Setting it starts no thread.
    """
    torch = sys.modules.get("torch")
    wanted = environ.get(THREADS_ENV, "")
    if torch is None or not wanted.isdigit() or int(wanted) < 1:
        yield
        return
    own = torch.get_num_threads()
    torch.set_num_threads(int(wanted))
    try:
        yield
    finally:
        torch.set_num_threads(own)
