"""The executor's syscall baseline: a seccomp filter refusing what no tool needs.

What Docker's default profile and the sandboxes of coding agents refuse (``sandbox-notes``):
namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag; a user namespace needs no
capability and would hand back root's powers inside it), mounts, ``pivot_root``/``chroot``,
``ptrace`` and ``process_vm_*``, ``bpf``, ``perf_event_open``, the kernel keyring,
``userfaultfd``, ``io_uring`` (its operations bypass filters written for the plain syscalls),
module and kexec loading, ``acct``, ``quotactl``, clock setting, swap, reboot, file handles,
``pidfd_getfd``. ``clone3`` (whose flags a filter cannot read) fails with ENOSYS so that the
C library falls back to ``clone``, whose flags it can. Refused calls fail with EPERM; syscalls
of another ABI (i386, x32) too. Installed on the executor's only thread, so on every thread
and process the tool starts.
"""

from __future__ import annotations

import errno
import platform
from collections.abc import Iterable

from conveyor_sgl.runtime.sandbox.seccomp import _ARCHES, _CLONE3, assemble, install

_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K = 0x20, 0x15, 0x35, 0x45
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_X32_BIT = 0x40000000
_NR, _ARCH, _ARG0 = 0, 4, 16
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000
NAMESPACE_FLAGS |= 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080

# The new mount API (open_tree .. mount_setattr) and io_uring share numbers on both arches.
_COMMON = {
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "pidfd_getfd": 438, "mount_setattr": 442,
}  # fmt: skip
DENIED = {
    "x86_64": {
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
        "chroot": 161, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248, "request_key": 249,
        "userfaultfd": 323, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "acct": 163, "quotactl": 179,
        "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
        "swapon": 167, "swapoff": 168, "reboot": 169, "open_by_handle_at": 304,
        "name_to_handle_at": 303, **_COMMON,
    },
    "aarch64": {
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41,
        "chroot": 51, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "bpf": 280, "perf_event_open": 241, "keyctl": 219, "add_key": 217, "request_key": 218,
        "userfaultfd": 282, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "acct": 89, "quotactl": 60,
        "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171,
        "swapon": 224, "swapoff": 225, "reboot": 142, "open_by_handle_at": 265,
        "name_to_handle_at": 264, **_COMMON,
    },
}  # fmt: skip


def refuse_dangerous() -> bool:
    """Install the baseline filter on this thread; False where the architecture is unknown or
    the kernel refuses the filter."""
    machine = platform.machine()
    if machine not in DENIED:
        return False
    arch = _ARCHES[machine]
    return install(arch, _program(arch.audit, arch.clone, DENIED[machine].values()))


def _program(audit_arch: int, clone_nr: int, denied: Iterable[int]) -> bytes:
    body: list[tuple[int, int, str | None, str | None]] = [
        (_LD_W_ABS, _ARCH, None, None),
        (_JEQ_K, audit_arch, None, "deny"),
        (_LD_W_ABS, _NR, None, None),
        (_JGE_K, _X32_BIT, "deny", None),
        *((_JEQ_K, nr, "deny", None) for nr in sorted(denied)),
        (_JEQ_K, _CLONE3, "nosys", None),
        (_JEQ_K, clone_nr, None, "allow"),
        (_LD_W_ABS, _ARG0, None, None),
        (_JSET_K, NAMESPACE_FLAGS, "deny", "allow"),
    ]
    returns = {
        "allow": _RET_ALLOW,
        "deny": _RET_ERRNO | errno.EPERM,
        "nosys": _RET_ERRNO | errno.ENOSYS,
    }
    return assemble(body, returns)
