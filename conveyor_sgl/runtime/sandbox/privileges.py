"""Dropping every capability from the worker's main thread: root's powers gone, for good.

The runtime may run as root (uid 0), and so do its workers: they cannot switch to an
unprivileged uid when the interpreter lives under /root (mode 0700). Instead the main thread,
where tool code runs, loses every capability: the bounding set is emptied (no exec can regain
one), ambient capabilities are cleared, the securebits make uid 0 special no more
(SECBIT_NOROOT, NO_SETUID_FIXUP, KEEP_CAPS off, NO_CAP_AMBIENT_RAISE, all locked), and the
effective, permitted and inheritable sets become empty. Uid 0 then only means "owner of
root's files": no CAP_DAC_OVERRIDE (files of other users keep their modes), no CAP_KILL
(no signals to other users' processes), no CAP_SYS_PTRACE (no reading /proc/<pid>/environ of
a process with more capabilities, such as the runtime), no CAP_SYS_RESOURCE (rlimits stay),
no CAP_SYS_ADMIN, no CAP_NET_*, no CAP_SETUID.

Like Landlock, capabilities are per thread: the ZeroMQ I/O and parent-watch threads, started
earlier, keep theirs (see ``landlock``). Threads and processes the tool starts
inherit the empty sets.
"""

from __future__ import annotations

import ctypes
import os

_PR_CAPBSET_READ, _PR_CAPBSET_DROP = 23, 24
_PR_SET_SECUREBITS = 28
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_SECBIT_NOROOT, _SECBIT_NOROOT_LOCKED = 1 << 0, 1 << 1
_SECBIT_NO_SETUID_FIXUP, _SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 2, 1 << 3
_SECBIT_KEEP_CAPS_LOCKED = 1 << 5
_SECBIT_NO_CAP_AMBIENT_RAISE, _SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 6, 1 << 7
SECUREBITS = (
    _SECBIT_NOROOT | _SECBIT_NOROOT_LOCKED | _SECBIT_NO_SETUID_FIXUP
    | _SECBIT_NO_SETUID_FIXUP_LOCKED | _SECBIT_KEEP_CAPS_LOCKED
    | _SECBIT_NO_CAP_AMBIENT_RAISE | _SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
)  # fmt: skip
_CAPABILITY_VERSION_3 = 0x20080522
_CAP_LAST_CAP = "/proc/sys/kernel/cap_last_cap"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def last_cap() -> int:
    """The highest capability number this kernel knows. Read it before Landlock hides /proc/sys."""
    try:
        with open(_CAP_LAST_CAP) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63  # probe every possible bit; unknown ones fail with EINVAL and are skipped


def drop_all(last: int) -> bool:
    """Drop every capability of the calling thread, for it and everything it starts.
    False where the kernel refused a step (nothing is half-applied silently: the caller
    reports the layer as absent)."""
    libc = ctypes.CDLL(None, use_errno=True)
    privileged = _has_setpcap()
    if privileged:
        for cap in range(last + 1):
            held = libc.prctl(_PR_CAPBSET_READ, cap, 0, 0, 0) == 1
            if held and libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                return False
        if libc.prctl(_PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0) != 0:
            return False
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)  # EINVAL on old kernels
    header = _CapHeader(version=_CAPABILITY_VERSION_3, pid=0)
    data = (_CapData * 2)()  # all zero: no effective, permitted or inheritable capability
    return libc.capset(ctypes.byref(header), ctypes.byref(data)) == 0


def effective_caps() -> int:
    """The calling thread's effective capability mask (from /proc/thread-self/status)."""
    with open("/proc/thread-self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _has_setpcap() -> bool:
    try:
        return bool(effective_caps() >> 8 & 1)  # CAP_SETPCAP = 8
    except OSError:
        return os.geteuid() == 0
