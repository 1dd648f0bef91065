"""The in-interpreter line of defence: a ``sys.addaudithook`` policy for a tool worker.

Python raises an audit event before each sensitive operation (PEP 578); the hook refuses the
ones the policy forbids by raising a ``PermissionError`` (``violation``), which the tool sees
as an ordinary exception with a message naming what was refused. Audit hooks cannot be
removed, but they only see what goes through the interpreter: the kernel layers in
``confine.py`` are the ones that hold against code that leaves it (see README "Sandbox").
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_WRITABLE_DEVICES = frozenset({"/dev/null"})
_SPAWN_EVENTS: tuple[str, ...] = ("os.fork", "os.forkpty", "os.posix_spawn", "os.spawn")
_SPAWN_EVENTS += ("os.system", "subprocess.Popen", "pty.spawn")
_LOOKUP_EVENTS: tuple[str, ...] = ("socket.getaddrinfo", "socket.gethostbyname")
_LOOKUP_EVENTS += ("socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo")
# Events whose first argument is a path the tool changes -> the index of their dir_fd.
_MODIFY_EVENTS: dict[str, int | None] = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 2}
_MODIFY_EVENTS |= {"os.chmod": 2, "os.chown": 3}
_MODIFY_EVENTS |= {"os.utime": 3, "os.truncate": None, "os.setxattr": None}
_MODIFY_EVENTS |= {"os.removexattr": None}
# Reaching the interpreter's own objects (the hook included) or loading native code.
_INTROSPECTION_EVENTS = ("gc.get_objects", "gc.get_referrers", "gc.get_referents")
_NATIVE_EVENTS = ("ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle")

Check = Callable[[tuple[Any, ...]], None]


def violation(what: str) -> PermissionError:
    """The error the tool sees: a plain PermissionError, so the tool's report reads
    ``PermissionError: sandbox: ... is not allowed``."""
    return PermissionError(f"sandbox: {what} is not allowed")


@dataclass(frozen=True)
class Policy:
    workdir: str  # real path; the only place the tool may write
    private_root: str | None  # the runtime's directory around workdir: no access
    network: bool
    confine: bool
    max_processes: int | None
    writable: tuple[str, ...] = ()  # real paths the tool's config names for writing (sql)


def install(policy: Policy) -> list[str]:
    """Install the hook for ``policy``; the names of the layers it adds."""
    # For every tool: root could raise the limits it was given.
    checks: dict[str, Check] = dict.fromkeys(
        ("resource.setrlimit", "resource.prlimit"), _refuse("changing resource limits")
    )
    layers = []
    if not policy.network:
        checks.update(_network_events(policy))
        layers.append("no_sockets")
    if policy.max_processes is not None:
        checks.update(_spawn_events(policy.max_processes))
        layers.append("processes")
    if policy.confine:
        checks.update(_path_events(policy))
        checks.update(_signal_events())
        checks.update(
            {e: _refuse(f"{e} (interpreter introspection)") for e in _INTROSPECTION_EVENTS}
        )
        checks.update({e: _refuse(f"{e} (loading native code)") for e in _NATIVE_EVENTS})
        layers.append("confine")
    sys.addaudithook(_hook(checks))
    return layers


def _hook(checks: dict[str, Check]) -> Callable[[str, tuple[Any, ...]], None]:
    busy = threading.local()  # the checks resolve paths: never audit the hook itself

    def hook(event: str, args: tuple[Any, ...]) -> None:
        check = checks.get(event)
        if check is None or getattr(busy, "on", False):
            return
        busy.on = True
        try:
            check(args)
        finally:
            busy.on = False

    return hook


def _refuse(what: str) -> Check:
    def check(args: tuple[Any, ...]) -> None:
        raise violation(what)

    return check


def _network_events(policy: Policy) -> dict[str, Check]:
    def new_socket(args: tuple[Any, ...]) -> None:
        family = args[1]
        if family not in (socket.AF_UNIX, -1):  # -1: family taken from a given fileno
            raise violation(f"opening a network socket (family {family})")

    def address(args: tuple[Any, ...]) -> None:
        sock, addr = args[0], args[1]
        if sock.family != socket.AF_UNIX:
            raise violation(f"network access to {addr!r}")
        if isinstance(addr, (str, bytes)) and addr[:1] not in ("\0", b"\0"):
            _require_inside(policy, os.fsdecode(addr), "connecting to the unix socket")

    checks: dict[str, Check] = {"socket.__new__": new_socket}
    for event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
        checks[event] = address
    checks.update({event: _refuse(f"name lookup ({event})") for event in _LOOKUP_EVENTS})
    return checks


def _spawn_events(max_processes: int) -> dict[str, Check]:
    started = [0]  # inherited by forked children: each may start what is left of the budget

    def spawn(args: tuple[Any, ...]) -> None:
        if started[0] >= max_processes:
            raise violation(f"starting a process (limit: {max_processes})")
        started[0] += 1

    return dict.fromkeys(_SPAWN_EVENTS, spawn)


def _signal_events() -> dict[str, Check]:
    def kill(args: tuple[Any, ...]) -> None:
        pid = args[0]
        own_group = os.getpgrp()
        if pid == 0 or pid == os.getpid() or pid == -own_group:
            return
        if pid > 0 and _group_of(pid) == own_group:
            return
        raise violation(f"sending a signal to pid {pid} outside the tool's process group")

    def killpg(args: tuple[Any, ...]) -> None:
        if args[0] not in (0, os.getpgrp()):
            raise violation(f"signalling process group {args[0]}")

    return {"os.kill": kill, "os.killpg": killpg}


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _path_events(policy: Policy) -> dict[str, Check]:
    def open_(args: tuple[Any, ...]) -> None:
        path, mode, flags = args
        if isinstance(path, int):
            return  # an fd the tool already holds
        writing = (flags or 0) & _WRITE_FLAGS or any(c in (mode or "") for c in "wax+")
        real = _resolve(path)
        if writing and real not in _WRITABLE_DEVICES:
            _require_inside(policy, real, "writing")
        else:
            _check_readable(policy, real)

    def modify(event: str) -> Check:
        fd_at = _MODIFY_EVENTS[event]

        def check(args: tuple[Any, ...]) -> None:
            if not isinstance(args[0], int):
                dir_fd = args[fd_at] if fd_at is not None and len(args) > fd_at else None
                _require_inside(policy, _resolve(args[0], dir_fd), "changing")

        return check

    def two_paths(args: tuple[Any, ...]) -> None:  # rename, link: both ends inside
        src, dst, src_fd, dst_fd = args
        _require_inside(policy, _resolve(src, src_fd), "moving or linking")
        _require_inside(policy, _resolve(dst, dst_fd), "moving or linking to")

    def symlink(args: tuple[Any, ...]) -> None:
        _require_inside(policy, _resolve(args[1], args[2]), "creating a link at")

    def listing(args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], (str, bytes, os.PathLike)):
            _check_readable(policy, _resolve(args[0]))

    def sqlite(args: tuple[Any, ...]) -> None:
        if args[0] not in (":memory:", b":memory:", ""):
            _require_inside(policy, _resolve(args[0]), "opening the database")

    checks: dict[str, Check] = {event: modify(event) for event in _MODIFY_EVENTS}
    checks.update({"open": open_, "os.rename": two_paths, "os.link": two_paths})
    checks.update({"os.symlink": symlink, "os.listdir": listing, "os.scandir": listing})
    checks["sqlite3.connect"] = sqlite
    return checks


def _resolve(path: Any, dir_fd: int | None = None) -> str:
    text = os.fsdecode(path)
    if dir_fd is not None and dir_fd >= 0 and not os.path.isabs(text):  # -1: no dir_fd
        text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
    return os.path.realpath(text)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _require_inside(policy: Policy, path: str, what: str) -> None:
    if not any(_inside(path, root) for root in (policy.workdir, *policy.writable)):
        raise violation(f"{what} {path!r} (only inside the working directory {policy.workdir})")


def _check_readable(policy: Policy, path: str) -> None:
    private = policy.private_root and _inside(path, policy.private_root)
    if private and not _inside(path, policy.workdir):
        raise violation(f"access to the runtime's directory {path!r}")
    parts = path.split(os.sep)
    if (
        len(parts) > 2
        and parts[1] == "proc"
        and parts[2].isdigit()
        and int(parts[2]) != os.getpid()
    ):
        raise violation(f"reading another process's {path!r}")
