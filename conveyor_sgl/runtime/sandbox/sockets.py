"""A seccomp filter on the tool's thread: no new sockets of the families it must not use.

Landlock (ABI 7) does not mediate pathname unix sockets or UDP: a tool running as uid 0
could connect to a root-owned socket such as a database's or a container daemon's, and,
where the network namespace is missing, send UDP. Under ``confine`` the worker therefore
refuses ``socket(AF_UNIX, ...)`` (``socketpair`` stays allowed: multiprocessing pipes and
``socket.socketpair()`` keep working) and, with ``network: false``, ``socket(AF_INET*)`` and
packet sockets, with EACCES. Like Landlock it is installed without TSYNC, on the calling (main)
thread only, and inherited by the threads and processes the tool starts; the worker's ZeroMQ
I/O thread, which owns the runtime channel, is not affected. Syscalls of another ABI (i386's
``socketcall``, x32) are refused.
"""

from __future__ import annotations

import errno
import platform
import socket

from conveyor_sgl.runtime.sandbox.seccomp import _ARCHES, assemble, install

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_X32_BIT = 0x40000000
_NR, _ARCH, _ARG0 = 0, 4, 16
_SOCKET_NR = {"x86_64": 41, "aarch64": 198}
NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_PACKET)


def refuse_families(families: tuple[int, ...]) -> bool:
    """Make ``socket()`` of ``families`` fail with EACCES on this thread; False where the
    architecture is unknown or the kernel refuses the filter."""
    machine = platform.machine()
    if machine not in _SOCKET_NR or not families:
        return False
    arch = _ARCHES[machine]
    return install(arch, _program(arch.audit, _SOCKET_NR[machine], families))


def _program(audit_arch: int, socket_nr: int, families: tuple[int, ...]) -> bytes:
    # (code, k, jump-if-true label, jump-if-false label); None: the next instruction.
    body: list[tuple[int, int, str | None, str | None]] = [
        (_LD_W_ABS, _ARCH, None, None),
        (_JEQ_K, audit_arch, None, "foreign"),
        (_LD_W_ABS, _NR, None, None),
        (_JGE_K, _X32_BIT, "foreign", None),
        (_JEQ_K, socket_nr, None, "allow"),
        (_LD_W_ABS, _ARG0, None, None),
        *((_JEQ_K, family, "deny", None) for family in families),
        (_JEQ_K, 0xFFFFFFFF, "deny", "allow"),  # never true: ends the family list
    ]
    returns = {
        "allow": _RET_ALLOW,
        "deny": _RET_ERRNO | errno.EACCES,
        "foreign": _RET_ERRNO | errno.EPERM,
    }
    return assemble(body, returns)
