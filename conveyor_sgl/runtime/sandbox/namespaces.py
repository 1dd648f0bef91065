"""Namespaces for the session executor: its own PID, mount and network view of the machine.

``fork_isolated()`` forks the executor as PID 1 of a new PID namespace: it cannot name (signal,
ptrace, open ``/proc/<pid>`` of) any process outside it, and when it dies the kernel kills
everything it started. The parent (the worker, which goes on to start threads) resets its own
namespace for children at once: a process whose children would land in another PID namespace
may not create threads (``clone`` refuses ``CLONE_THREAD`` with EINVAL).

In the executor, ``private_mounts()`` enters a new mount namespace (nothing propagates back),
mounts a fresh ``/proc`` that shows only the executor's own namespace (so ``/proc`` lists only
itself and what it started), and a size-limited tmpfs on its working directory: the disk a
session may fill is bounded by the kernel, and its files vanish with it. ``private_network()``
is the empty network namespace (only a down loopback).
Each needs CAP_SYS_ADMIN (root); where the kernel refuses one, the layer is not named.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def fork_isolated() -> tuple[int, bool]:
    """``os.fork()`` whose child is PID 1 of a new PID namespace where the kernel allows one;
    (pid as ``os.fork`` returns it, whether the child is in a new PID namespace)."""
    libc = _libc()
    try:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return os.fork(), False
    try:
        isolated = libc.unshare(CLONE_NEWPID) == 0
        pid = os.fork()
        if pid != 0 and isolated and libc.setns(own, CLONE_NEWPID) != 0:
            # Without the reset this process could start no thread: fail loudly instead.
            os.kill(pid, 9)
            raise _os_error("setns(CLONE_NEWPID) back to the worker's own namespace")
        return pid, isolated
    finally:
        os.close(own)


def private_mounts(workdir: str, disk_bytes: int | None, own_pid_namespace: bool) -> list[str]:
    """Mount layers for the calling process: ``proc`` (a /proc of its own PID namespace) and
    ``disk`` (a tmpfs of ``disk_bytes`` on ``workdir``); the names of those that held."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        return []
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return []  # mounts could propagate to the host: make none
    layers = []
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    if own_pid_namespace and libc.mount(b"proc", b"/proc", b"proc", flags, None) == 0:
        layers.append("proc")
    if disk_bytes is not None:
        options = f"size={disk_bytes},mode=0700".encode()
        if libc.mount(b"tmpfs", workdir.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) == 0:
            layers.append("disk")
    return layers


def private_network() -> bool:
    """Enter a new, empty network namespace; False where the kernel refuses."""
    return _libc().unshare(CLONE_NEWNET) == 0


def thread_count() -> int:
    """Threads of this process, from the kernel (``/proc/self/status``); 0 if unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _os_error(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")
