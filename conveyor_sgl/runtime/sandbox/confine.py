"""Confining the session executor before any tool code runs (``enter``), and cleaning up.

The executor is a process of its own, forked per session with one thread and PID 1 of a new
PID namespace (``runtime/workers/executor.py``); ``enter`` confines that whole process, so
every thread and process the tool starts inherits every layer. Kernel layers, each named in
the result only when it holds (a layer the kernel refuses is skipped, the others still apply):
- ``pidns``, ``proc``: its own PID namespace and a ``/proc`` that shows only it;
- ``disk``: a tmpfs of ``disk_bytes`` on its working directory (cwd, HOME and the temp dir),
  in a private mount namespace; the runtime removes the directory when the worker ends;
- ``cpu``, ``memory``, ``file_size``, ``nproc``: rlimits (SIGXCPU becomes
  ``CpuLimitExceeded`` in the tool, SIGKILL one second later; writes past RLIMIT_FSIZE fail
  with EFBIG; RLIMIT_NPROC is a backstop that does not bind root);
- ``netns``: with ``network: false``, a new, empty network namespace;
- ``seccomp``: with ``max_processes: 0``, no fork or exec whatever the route;
- under ``confine``: ``landlock`` (``landlock.py``: reads only beneath the interpreter and the
  packages tools import, writes only in the working directory and what the tool's config
  names, TCP only where allowed, no signals or ptrace outside the domain), ``sockets`` (no
  unix sockets, no inet ones without network), ``syscalls`` (``syscalls.py``: no namespaces,
  mounts, ptrace, bpf, io_uring...) and ``caps`` (``privileges.py``: root's powers dropped).
The environment is scrubbed by the runtime when it spawns workers (``scrub_env``). The audit
hook (``audit_hook.py``) is installed last for clear messages; the code it watches can switch
it off, so it is never reported as a layer. ``CONVEYOR_SGL_SANDBOX_DISABLE`` switches layers
off (``layers.py``). See README "Sandbox".
"""

from __future__ import annotations

import math
import os
import re
import resource
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.sandbox import (
    audit_hook,
    landlock,
    namespaces,
    privileges,
    seccomp,
    sockets,
    syscalls,
)
from conveyor_sgl.runtime.sandbox import layers as switches
from conveyor_sgl.tools.limits import Limits

NPROC_MARGIN = 64  # RLIMIT_NPROC counts all tasks of the uid: a backstop, not a count

# Names a tool worker may inherit; anything else (and any name that looks like a secret,
# whatever the allow-list says) is dropped.
ENV_ALLOW = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH"}
    | {"PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONIOENCODING"}
    | {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"}
)
ENV_ALLOW_PREFIXES = ("LC_", "CONVEYOR_SGL_")
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE", re.IGNORECASE)


class SandboxError(ConveyorError, RuntimeError):
    """The executor could not be confined as a whole; no tool code runs."""


class CpuLimitExceeded(Exception):
    """Raised in the tool's code when the worker used up its CPU time."""


def scrub_env(env: dict[str, str]) -> dict[str, str]:
    """The part of ``env`` a tool may see: allow-listed names that do not look secret."""
    return {
        name: value
        for name, value in env.items()
        if (name in ENV_ALLOW or name.startswith(ENV_ALLOW_PREFIXES)) and not _SECRET.search(name)
    }


def workdir_for(endpoint: str) -> str | None:
    """The working directory of the worker on ``endpoint``: beside its ipc socket, inside the
    pool's private 0700 directory (None for a non-ipc endpoint: the worker makes its own)."""
    if not endpoint.startswith("ipc://"):
        return None
    return endpoint[len("ipc://") :] + ".work"


def remove_workdir(endpoint: str) -> None:
    """Runtime side: remove the worker's working directory once the worker is gone."""
    path = workdir_for(endpoint)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def forget_endpoint(endpoint: str) -> None:
    """Runtime side, once the worker connected: unlink the ipc socket file, so that nothing
    else (tool code of another session included) can connect to this channel."""
    if endpoint.startswith("ipc://"):
        try:
            os.unlink(endpoint[len("ipc://") :])
        except OSError:
            pass


_T = TypeVar("_T")
# Milliseconds each step of the last ``enter`` took (eval/sandbox_cost.py reads it).
TIMINGS: dict[str, float] = {}


@dataclass(frozen=True)
class Reach:
    """What the tool itself opens once confined (from its config, read before the sandbox):
    extra read-only and writable roots, and the TCP ports it connects to (None: any, where
    ``network`` allows; a tuple: only those, even where it does not)."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    tcp_ports: tuple[int, ...] | None = None


def enter(
    limits: Limits,
    workdir: str | None = None,
    reach: Reach = Reach(),
    own_pid_namespace: bool = False,
) -> list[str]:
    """Confine this process, which must have one thread (the executor, right after its fork);
    the names of the kernel layers in force. A layer the kernel lacks, or that is disabled, is
    skipped and not named; the audit hook (messages only, not a layer) is never named."""
    TIMINGS.clear()
    if namespaces.thread_count() > 1:
        raise SandboxError("the executor has more than one thread: refusing to confine it")
    off = switches.disabled()
    workdir = _timed("workdir", lambda: _make_workdir(workdir))
    layers = ["pidns"] if own_pid_namespace else []
    layers += _timed(
        "mounts", lambda: namespaces.private_mounts(workdir, limits.disk_bytes, own_pid_namespace)
    )
    _timed("env", lambda: _set_env(workdir, limits.confine))
    os.chdir(workdir)
    layers += _timed("rlimits", lambda: _set_rlimits(limits))
    network = limits.network or reach.tcp_ports is not None
    if not network and "netns" not in off and _timed("netns", namespaces.private_network):
        layers.append("netns")
    no_processes = limits.max_processes == 0 and "seccomp" not in off
    if no_processes and _timed("seccomp", seccomp.forbid_new_processes):
        layers.append("seccomp")
    if limits.confine:
        layers += _confine_kernel(workdir, network, reach, off)
    if "audit" not in off:
        policy = _policy(limits, workdir, network, reach)
        _timed("audit", lambda: audit_hook.install(policy))
    return layers


def _confine_kernel(workdir: str, network: bool, reach: Reach, off: frozenset[str]) -> list[str]:
    layers = []
    last_cap = privileges.last_cap()  # /proc/sys is out of reach once in Landlock
    if "landlock" not in off and _timed(
        "landlock",
        lambda: landlock.restrict(workdir, network, reach.read, reach.write, reach.tcp_ports),
    ):
        layers.append("landlock")
    families = (socket.AF_UNIX, *(() if network else sockets.NETWORK_FAMILIES))
    if "seccomp" not in off and _timed("sockets", lambda: sockets.refuse_families(families)):
        layers.append("sockets")
    if "seccomp" not in off and _timed("syscalls", syscalls.refuse_dangerous):
        layers.append("syscalls")
    if "caps" not in off and _timed("caps", lambda: privileges.drop_all(last_cap)):
        layers.append("caps")
    return layers


def _timed(step: str, apply: Callable[[], _T]) -> _T:
    start = time.perf_counter()
    try:
        return apply()
    finally:
        TIMINGS[step] = (time.perf_counter() - start) * 1000


def _policy(limits: Limits, workdir: str, network: bool, reach: Reach) -> audit_hook.Policy:
    return audit_hook.Policy(
        workdir=workdir,
        private_root=os.path.dirname(workdir) if workdir.endswith(".work") else None,
        network=network,
        confine=limits.confine,
        max_processes=limits.max_processes,
        writable=tuple(os.path.realpath(path) for path in reach.write),
    )


def _make_workdir(path: str | None) -> str:
    if path is None:
        return os.path.realpath(tempfile.mkdtemp(prefix="conveyor-tool-"))
    if not os.path.isdir(path):
        os.mkdir(path, 0o700)
    return os.path.realpath(path)


def _set_env(workdir: str, confine: bool) -> None:
    for name in set(os.environ) - set(scrub_env(dict(os.environ))):
        del os.environ[name]
    os.environ["TMPDIR"] = workdir
    tempfile.tempdir = workdir  # tempfile may have cached the runtime's choice already
    if confine:
        os.environ["HOME"] = workdir  # ~/.cache and friends land where writes are allowed


def _set_rlimits(limits: Limits) -> list[str]:
    layers = []
    if limits.cpu_s is not None:
        soft = max(1, math.ceil(limits.cpu_s))  # RLIMIT_CPU counts whole seconds
        signal.signal(signal.SIGXCPU, _cpu_exceeded(soft))
        _lower_limit(resource.RLIMIT_CPU, soft, soft + 1)  # SIGXCPU first, SIGKILL at hard
        layers.append("cpu")
    if limits.memory_bytes is not None:
        _lower_limit(resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes)
        layers.append("memory")
    if limits.file_bytes is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
        _lower_limit(resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes)
        layers.append("file_size")
    if limits.max_processes is not None and os.getuid() != 0:
        # Counts every task of this uid system-wide (runtime and server threads included), so
        # only a generous ceiling is safe; the exact count is the audit hook's.
        ceiling = _tasks_of_uid(os.getuid()) + limits.max_processes + NPROC_MARGIN
        _lower_limit(resource.RLIMIT_NPROC, ceiling, ceiling)
        layers.append("nproc")
    return layers


def _cpu_exceeded(soft_s: int):
    def handler(signum: int, frame: object) -> None:
        raise CpuLimitExceeded(f"CPU time limit of {soft_s} s exceeded")

    return handler


def _lower_limit(which: int, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def _tasks_of_uid(uid: int) -> int:
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass  # gone meanwhile
    return count
