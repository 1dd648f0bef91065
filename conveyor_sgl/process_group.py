"""One lifecycle for every process this project starts: tool workers, the embedded SGLang
server and the search service.

Each runs as the leader of its own process group (``start_group``), so that ending it also
ends what it started (SGLang's scheduler and detokenizer; processes of model-written code),
and a Ctrl-C at the terminal reaches only its owner. ``wait_ready`` waits for it with a
deadline, failing early if it exits; ``end_groups`` stops any number of them with one
escalation: wait, SIGTERM the groups, wait, SIGKILL, wait; ``members=True`` also waits until
no process of the group is left (the leader may go first).

A leaf module: standard library only, so tools, runtime and eval can all use it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from conveyor_sgl.errors import ConveyorError

_KILL_WAIT_S = 2.0
_GROUP_POLL_S = 0.05


class Process(Protocol):
    """What ``subprocess.Popen`` and a forked worker's stand-in both offer."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...


class ProcessStartError(ConveyorError, RuntimeError):
    """A process exited, or was not ready, before its deadline."""


def start_group(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen:
    """Start ``argv`` as the leader of a new process group (stdin: /dev/null by default)."""
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(  # noqa: S603 - our own command (sys.executable -m ...), not model text
        list(argv), start_new_session=True, close_fds=True, **popen_kwargs
    )


def wait_ready(
    proc: Process,
    ready: Callable[[float], bool],
    timeout_s: float,
    what: str,
    not_ready: str = "was not ready",
) -> None:
    """Call ``ready(remaining_s)`` until it is true; raise if ``proc`` exits or time runs out.
    ``ready`` may block, but briefly (a socket read of a fraction of a second, one health
    request): an exit is seen between two calls."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if ready(max(0.0, remaining)):
            return
        code = proc.poll()
        if code is not None:
            raise ProcessStartError(f"{what} {describe_exit(code)} before it was ready")
        if remaining <= 0:
            raise ProcessStartError(f"{what} {not_ready} within {timeout_s:.3g}s")


def end_groups(
    procs: Sequence[Process], grace_s: float, *, asked_s: float = 0.0, members: bool = False
) -> None:
    """Wait ``asked_s`` for leaders that were asked to exit, then SIGTERM their groups, wait
    ``grace_s``, then SIGKILL; reap every leader. ``members``: also wait (and escalate) until
    their whole groups are gone."""
    pgids = [proc.pid for proc in procs]
    alive = _wait_all(procs, pgids, asked_s, members)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, _KILL_WAIT_S)):
        if not alive:
            return
        for proc in alive:
            signal_group(proc, sig, members)
        alive = _wait_all(alive, [p.pid for p in alive], wait_s, members)


def signal_group(proc: Process, sig: int, members: bool = False) -> None:
    """Signal ``proc``'s group; a reaped leader's pid may be someone else's by now, so only
    while it is unreaped, unless the caller tracks the group by ``members``."""
    if proc.poll() is not None and not (members and group_pids(proc.pid)):
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)


def group_pids(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    return sorted(pid for pid, group, state in _proc_table() if group == pgid and state != "Z")


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


def _wait_all(
    procs: Sequence[Process], pgids: Sequence[int], timeout_s: float, members: bool
) -> list[Process]:
    # One deadline shared by all: ending N processes takes one grace period, not N.
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    if members:
        while any(group_pids(pgid) for pgid in pgids) and time.monotonic() < deadline:
            time.sleep(_GROUP_POLL_S)
        return [p for p, g in zip(procs, pgids, strict=True) if p.poll() is None or group_pids(g)]
    return [proc for proc in procs if proc.poll() is None]


def _proc_table() -> list[tuple[int, int, str]]:
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        rows.append((int(entry.name), int(fields[2]), fields[0]))
    return rows
