"""Kernel-enforced filesystem, TCP, signal and abstract-socket confinement: Landlock, via ctypes.

``restrict(workdir, network, ...)`` puts the calling process (the session executor, which has
one thread when it calls it, so every thread and process it starts later) in a Landlock domain
where:
- files may be read, executed and listed only beneath an allow-list: the interpreter's
  installation and standard library, site-packages, the conveyor_sgl package, /usr (and /bin,
  /lib... which lead there), a few harmless /etc files (never all of /etc: /etc/shadow is
  readable by uid 0), /dev/null, /dev/zero, /dev/urandom, /dev/random,
  /sys/devices/system/cpu, /proc/cpuinfo, /proc/meminfo, its own /proc/<pid>, and what the
  tool's config names (``read``). Never the directory the runtime was started from, the home
  directory, or a directory above either (``allowed_roots``);
- files may be written, created, renamed, truncated and removed only in the working directory,
  the roots the tool's config names (``write``, e.g. sql's files root) and /dev/null;
- (ABI >= 4) without ``network``: no TCP bind or connect, whatever the namespace; with it and
  ``tcp_ports``: TCP connect only to those ports;
- (ABI >= 6) no signals to, and no abstract unix sockets of, processes outside the domain;
- as for every Landlock domain: no ptrace of processes outside it.

Landlock before ABI 8 (TSYNC) binds only the calling thread and what it starts: that is why the
executor is forked with a single thread and confined before it starts any. UDP, pathname unix
sockets, stat() and path walks are not restricted by Landlock (the network namespace and the
socket filter cover the first two; dropped capabilities and file modes the rest).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import stat
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS = 38

# <linux/landlock.h> filesystem rights, and the ABI that introduced each.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
MAKE_SYM, REFER, TRUNCATE, IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_RIGHTS = (
    EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
)  # rights a file rule may hold
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
WRITE = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO
WRITE |= MAKE_SYM | REFER | TRUNCATE
ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "passwd",
    "group", "hosts", "host.conf", "gai.conf", "mime.types", "ssl/certs", "ssl/openssl.cnf",
    "ca-certificates", "os-release", "debian_version", "locale.alias", "timezone", "protocols",
    "services", "magic", "fonts", "matplotlibrc",
)  # fmt: skip
SYSTEM_READ: tuple[str, ...] = ("/usr", "/lib", "/lib64", "/bin", "/sbin")
SYSTEM_READ += ("/sys/devices/system/cpu",)
SYSTEM_READ += ("/proc/cpuinfo", "/proc/meminfo", "/dev/zero", "/dev/urandom", "/dev/random")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _NetPortAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel header
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The Landlock ABI the kernel offers; 0 where it has none (or the arch is unknown)."""
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        return 0
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(numbers[0], None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(0, int(version))


def handled_fs(abi: int) -> int:
    """Every filesystem right that ``abi`` knows (so that none is left unrestricted)."""
    known = [mask for since, mask in _FS_BY_ABI.items() if abi >= since]
    return max(known) if known else 0


def read_roots(workdir: str) -> list[str]:
    """Where a tool may read and execute: the interpreter's installation and standard library,
    the installed packages (site-packages), the conveyor_sgl package, /usr and friends, a few
    /etc files, its own /proc entry. Never sys.path as such: it holds the working directory
    the runtime was started from (and so, often, the home directory or the checkout)."""
    return allowed_roots([*installed_roots(), f"/proc/{os.getpid()}"], workdir)


@functools.cache
def installed_roots() -> tuple[str, ...]:
    """The part of ``read_roots`` that never changes: computed once, before the executor's
    fork (``sysconfig`` and ``realpath`` take milliseconds)."""
    paths = sysconfig.get_paths()
    roots = [sys.base_prefix, sys.base_exec_prefix, _package_dir()]
    roots += [paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")]
    roots += [os.path.join(sys.prefix, "bin"), os.path.join(sys.prefix, "pyvenv.cfg")]
    roots += [*SYSTEM_READ, *(os.path.join("/etc", name) for name in ETC_FILES)]
    return tuple(_forbidden_removed(roots, _forbidden()))


def allowed_roots(roots: Iterable[str], workdir: str) -> list[str]:
    """``roots`` less any that holds the working directory of this or the runtime's process,
    the home directory, or the workers' private directory above ``workdir``."""
    return _forbidden_removed(roots, (*_forbidden(), os.path.realpath(workdir)))


@functools.cache
def _forbidden() -> tuple[str, ...]:
    places = (os.getcwd(), os.path.expanduser("~"), *_STARTED_IN)
    return tuple(dict.fromkeys(os.path.realpath(p) for p in places))


def _forbidden_removed(roots: Iterable[str], forbidden: Iterable[str]) -> list[str]:
    forbidden = tuple(forbidden)
    out = []
    for root in dict.fromkeys(os.path.realpath(r) for r in roots if r):
        if root != "/" and not any(_above(root, place) for place in forbidden):
            out.append(root)
    return out


def restrict(
    workdir: str,
    network: bool,
    read: Iterable[str] = (),
    write: Iterable[str] = (),
    tcp_ports: Iterable[int] | None = None,
) -> int:
    """Enter a Landlock domain for this process (its one thread, and all it starts); the ABI
    used, 0 if the kernel has none. ``read``/``write``: extra roots the tool opens itself;
    ``tcp_ports``: with ``network``, the only ports it may connect to (None: any).
    Raises OSError if the kernel offers Landlock but refuses the ruleset."""
    abi = abi_version()
    if abi < 1:
        return 0
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    fs = handled_fs(abi)
    ports = None if tcp_ports is None else sorted(set(tcp_ports))
    restrict_tcp = abi >= 4 and (not network or ports is not None)
    attr = _RulesetAttr(
        handled_access_fs=fs,
        handled_access_net=NET_BIND_TCP | NET_CONNECT_TCP if restrict_tcp else 0,
        scoped=SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET if abi >= 6 else 0,
    )
    create, add_rule, restrict_self = _SYSCALLS[platform.machine()]
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        raise _os_error("landlock_create_ruleset")
    try:
        rules = [(root, READ) for root in read_roots(workdir)]
        rules += [(root, READ) for root in allowed_roots(read, workdir)]
        rules += [(root, READ | WRITE) for root in allowed_roots(write, workdir)]
        rules += [("/dev/null", READ_FILE | WRITE_FILE), (workdir, READ | WRITE)]
        _add_rules(libc, add_rule, ruleset, rules, fs)
        if restrict_tcp and network:
            _add_port_rules(libc, add_rule, ruleset, ports or [])
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _os_error("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(restrict_self, ruleset, 0) != 0:
            raise _os_error("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _add_port_rules(libc: ctypes.CDLL, add_rule: int, ruleset: int, ports: list[int]) -> None:
    for port in ports:
        rule = _NetPortAttr(allowed_access=NET_CONNECT_TCP, port=port)
        if libc.syscall(add_rule, ruleset, _RULE_NET_PORT, ctypes.byref(rule), 0) != 0:
            raise _os_error(f"landlock_add_rule(port {port})")


def _add_rules(
    libc: ctypes.CDLL, add_rule: int, ruleset: int, rules: Iterable[tuple[str, int]], fs: int
) -> None:
    for path, access in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # not on this machine: nothing to allow
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                access &= _FILE_RIGHTS  # a file rule may only hold a file's rights
            rule = _PathBeneathAttr(allowed_access=access & fs, parent_fd=fd)
            if libc.syscall(add_rule, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                raise _os_error(f"landlock_add_rule({path})")
        finally:
            os.close(fd)


# Where the runtime was started from (the fork server and workers inherit its cwd).
_STARTED_IN = [os.getcwd()]


def _package_dir() -> str:
    # conveyor_sgl/runtime/sandbox/this_file: where the package lives, whatever sys.path says.
    return str(Path(os.path.realpath(__file__)).parents[2])


def _above(root: str, path: str) -> bool:
    """Whether ``path`` is ``root`` or beneath it (both real paths)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _os_error(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")
