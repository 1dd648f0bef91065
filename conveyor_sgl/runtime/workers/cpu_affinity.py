"""Keeping tools off the cores that serve: CPU lists, and pinning a process to one.

On a GPU server decoding runs on the accelerator and tools on spare host cores, so a tool's
CPU work does not slow decoding. On a CPU-only host both compete for the same cores unless
they are split: ``launch_server --cpus 0 --tool-cpus 1`` serves (torch threads included) on
core 0 and runs every tool worker on core 1. Tool workers started by a client pin themselves
to ``$CONVEYOR_SGL_TOOL_CPUS`` the same way.
"""

from __future__ import annotations

import os

TOOL_CPUS_ENV = "CONVEYOR_SGL_TOOL_CPUS"


def parse_cpus(text: str) -> frozenset[int]:
    """``"0-2,5"`` -> {0, 1, 2, 5}; a CPU this host does not have is an error naming it.
    (Not this process's own mask: a worker started by a pinned server pins elsewhere.)"""
    cpus: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"bad CPU list {text!r}: {part!r} is not N or N-M") from None
        if first < 0 or last < first:
            raise ValueError(f"bad CPU list {text!r}: {part!r} is not an ascending range")
        cpus.update(range(first, last + 1))
    count = os.cpu_count() or 1
    missing = sorted(cpu for cpu in cpus if cpu >= count)
    if missing:
        raise ValueError(f"CPU list {text!r} names CPUs {missing}; this host has 0-{count - 1}")
    return frozenset(cpus)


def format_cpus(cpus: frozenset[int] | set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def pin(cpus: frozenset[int] | set[int]) -> None:
    """Run this process on ``cpus``. Call before starting threads: on Linux the mask is per
    thread, and threads started afterwards inherit it (so do child processes)."""
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:  # EINVAL: none of them is in this container's cpuset
        raise ValueError(f"cannot run on CPUs {format_cpus(cpus)}: {e.strerror}") from None


def cpus_from_env(name: str = TOOL_CPUS_ENV) -> frozenset[int] | None:
    """The CPU list in ``$name``, or None when it is not set."""
    text = os.environ.get(name, "").strip()
    return parse_cpus(text) if text else None


def pin_from_env(name: str = TOOL_CPUS_ENV) -> frozenset[int] | None:
    """Pin to the CPU list in ``$name`` if it is set; the CPUs pinned to, or None."""
    cpus = cpus_from_env(name)
    if cpus is not None:
        pin(cpus)
    return cpus


def move_to_tool_cpus(pid: int) -> None:
    """Move a just-started child (one thread so far) to the tool CPUs, if they are set.

    A child inherits its parent's mask: a worker started by the server would run its start-up
    (interpreter, imports) on the decoding CPUs before it pins itself. Best effort: the child
    pins itself anyway, and one that already exited has nothing to move.
    """
    try:
        cpus = cpus_from_env()
        if cpus is not None:
            os.sched_setaffinity(pid, cpus)
    except (OSError, ValueError):
        pass
