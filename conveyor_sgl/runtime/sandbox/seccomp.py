"""A kernel-enforced "no new processes" rule for a tool worker: a seccomp filter.

The audit hook refuses ``os.fork``/``subprocess`` in the interpreter, but private C entry
points (``_posixsubprocess.fork_exec``) raise no audit event, and a program started that way
runs without the hook. With ``max_processes: 0`` the worker therefore also installs this
filter on all its threads: ``execve``/``execveat`` and process-creating ``fork``/``vfork``/
``clone`` fail with EPERM; ``clone`` with CLONE_THREAD (a thread) is allowed, and ``clone3``
(whose flags a filter cannot read) fails with ENOSYS so that the C library falls back to
``clone``. Syscalls of another ABI (i386, x32) are refused. Only x86_64 and aarch64 are
known; elsewhere the filter is not installed and the audit hook is the only rule.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# <linux/filter.h>, <linux/seccomp.h>
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC = 1, 1
_CLONE_THREAD = 0x00010000
_X32_BIT = 0x40000000
# seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (args[0]'s low word at 16 on LE).
_NR, _ARCH, _ARG0 = 0, 4, 16


class _Arch:
    def __init__(self, audit: int, seccomp: int, spawn: dict[str, int], clone: int) -> None:
        self.audit, self.seccomp, self.spawn, self.clone = audit, seccomp, spawn, clone


_ARCHES = {
    "x86_64": _Arch(
        0xC000003E, 317, {"execve": 59, "execveat": 322, "fork": 57, "vfork": 58}, clone=56
    ),
    "aarch64": _Arch(0xC00000B7, 277, {"execve": 221, "execveat": 281}, clone=220),
}
_CLONE3 = 435  # the same number on both


class _Sock_fprog(ctypes.Structure):  # the kernel struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def supported() -> bool:
    """Whether this architecture's filter is known (the kernel may still refuse it)."""
    return platform.machine() in _ARCHES


def forbid_new_processes() -> bool:
    """Install the filter on every thread of this process; False where it cannot be."""
    arch = _ARCHES.get(platform.machine())
    if arch is None:
        return False
    return install(arch, _program(arch), tsync=True)


def install(arch: _Arch, program: bytes, tsync: bool = False) -> bool:
    """Install a classic BPF ``program`` as a seccomp filter (no_new_privs first); on every
    thread of the process with ``tsync``, else on the calling thread (and all it starts).
    False where the kernel refuses it. The one installer of every filter of the sandbox."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    fprog = _Sock_fprog(len(program) // 8, program)
    flags = _SECCOMP_FILTER_FLAG_TSYNC if tsync else 0
    return libc.syscall(arch.seccomp, _SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(fprog)) == 0


def _program(arch: _Arch) -> bytes:
    deny, nosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    # (code, k, jump-if-true label, jump-if-false label); labels resolve to the return
    # instructions at the end. None: fall through to the next instruction.
    body: list[tuple[int, int, str | None, str | None]] = [
        (_LD_W_ABS, _ARCH, None, None),
        (_JEQ_K, arch.audit, None, "deny"),
        (_LD_W_ABS, _NR, None, None),
        (_JGE_K, _X32_BIT, "deny", None),
        *((_JEQ_K, nr, "deny", None) for nr in arch.spawn.values()),
        (_JEQ_K, _CLONE3, "nosys", None),
        (_JEQ_K, arch.clone, None, "allow"),
        (_LD_W_ABS, _ARG0, None, None),
        (_JSET_K, _CLONE_THREAD, "allow", "deny"),
    ]
    returns = {"allow": _RET_ALLOW, "deny": deny, "nosys": nosys}
    return assemble(body, returns)


Instruction = tuple[int, int, str | None, str | None]


def assemble(body: list[Instruction], returns: dict[str, int]) -> bytes:
    """A classic BPF program: ``body`` is (code, k, jump-if-true label, jump-if-false label)
    (None: the next instruction); each label is one of the ``returns`` placed after it."""
    at = {label: len(body) + i for i, label in enumerate(returns)}
    out = bytearray()
    for i, (code, k, jt, jf) in enumerate(body):
        hop = [0 if label is None else at[label] - i - 1 for label in (jt, jf)]
        out += struct.pack("=HBBI", code, hop[0], hop[1], k)
    for value in returns.values():
        out += struct.pack("=HBBI", _RET_K, 0, 0, value)
    return bytes(out)
