"""Confining a tool worker before any tool code runs (``enter``), and cleaning up after it.

Layers, kernel first (a layer the kernel refuses is skipped, the others still apply):
- resource limits: RLIMIT_CPU (SIGXCPU becomes ``CpuLimitExceeded`` in the tool, SIGKILL one
  second later), RLIMIT_AS, RLIMIT_FSIZE (writes past it fail with EFBIG instead of killing),
  RLIMIT_NPROC as a backstop (it counts every process of the real uid and does not bind root);
- a private working directory, which becomes cwd, HOME and the temp dir; the runtime removes it
  when it ends the worker (``remove_workdir``), even if the worker was killed;
- a scrubbed environment: only allow-listed names, never anything that looks like a secret
  (applied by the runtime when it spawns the worker, so even /proc/self/environ is clean);
- ``network: false``: a new, empty network namespace (unshare(CLONE_NEWNET), needs
  CAP_SYS_ADMIN) and, in the interpreter, no inet sockets or name lookups;
- ``max_processes: 0``: a seccomp filter (``seccomp.py``) on every thread: no
  fork, no exec, whatever the route (C entry points that raise no audit event included);
- ``confine``, kernel side, on the main thread where tool code runs and inherited by every
  thread and process it starts: Landlock (``landlock.py``: reads only beneath an
  allow-list, writes only in the working directory, no TCP without ``network``, no signals or
  ptrace outside the sandbox), no new unix sockets, nor inet ones without ``network``
  (``sockets.py``, a seccomp filter on that thread, switched with ``seccomp``) and
  no capabilities (``privileges.py``: root's powers dropped for good);
- ``confine``, interpreter side: an audit hook (``audit_hook.py``) refusing writes
  outside the working directory, signals outside the worker's process group, other
  processes' /proc entries, ctypes, and process creation beyond ``max_processes``, with a
  message naming the rule.
Order matters: rlimits and the namespace need root's capabilities, Landlock needs the
capability limit read first, and dropping capabilities comes last of the kernel layers.
``CONVEYOR_SGL_SANDBOX_DISABLE`` switches layers off (``switches.py``). See README
"Sandbox" for what holds and what does not.
"""

from __future__ import annotations

import ctypes
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
from typing import TypeVar

from conveyor_sgl.runtime.sandbox import audit_hook, landlock, privileges, seccomp, sockets
from conveyor_sgl.runtime.sandbox import layers as switches
from conveyor_sgl.tools.limits import Limits

CLONE_NEWNET = 0x40000000
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


def enter(limits: Limits, workdir: str | None = None) -> list[str]:
    """Confine this process (its calling thread, for the per-thread layers); the names of the
    layers in force. A layer the kernel lacks, or that is disabled, is skipped and not named."""
    TIMINGS.clear()
    off = switches.disabled()
    workdir = _timed("workdir", lambda: _make_workdir(workdir))
    layers = ["workdir", "env"]
    _timed("env", lambda: _set_env(workdir, limits.confine))
    os.chdir(workdir)
    layers += _timed("rlimits", lambda: _set_rlimits(limits))
    if not limits.network and "netns" not in off and _timed("netns", _unshare_network):
        layers.append("netns")
    no_processes = limits.max_processes == 0 and "seccomp" not in off
    if no_processes and _timed("seccomp", seccomp.forbid_new_processes):
        layers.append("seccomp")
    if limits.confine:
        layers += _confine_kernel(workdir, limits.network, off)
    if "audit" not in off:
        layers += _timed("audit", lambda: audit_hook.install(_policy(limits, workdir)))
    return layers


def _confine_kernel(workdir: str, network: bool, off: frozenset[str]) -> list[str]:
    layers = []
    last_cap = privileges.last_cap()  # /proc/sys is out of reach once in Landlock
    if "landlock" not in off and _timed("landlock", lambda: landlock.restrict(workdir, network)):
        layers.append("landlock")
    families = (socket.AF_UNIX, *(() if network else sockets.NETWORK_FAMILIES))
    if "seccomp" not in off and _timed("sockets", lambda: sockets.refuse_families(families)):
        layers.append("sockets")
    if "caps" not in off and _timed("caps", lambda: privileges.drop_all(last_cap)):
        layers.append("caps")
    return layers


def _timed(step: str, apply: Callable[[], _T]) -> _T:
    start = time.perf_counter()
    try:
        return apply()
    finally:
        TIMINGS[step] = (time.perf_counter() - start) * 1000


def _policy(limits: Limits, workdir: str) -> audit_hook.Policy:
    return audit_hook.Policy(
        workdir=workdir,
        private_root=os.path.dirname(workdir) if workdir.endswith(".work") else None,
        network=limits.network,
        confine=limits.confine,
        max_processes=limits.max_processes,
    )


def _make_workdir(path: str | None) -> str:
    if path is None:
        return os.path.realpath(tempfile.mkdtemp(prefix="conveyor-tool-"))
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


def _unshare_network() -> bool:
    # os.unshare is Python 3.12+. unshare acts on the calling (main) thread, where tool code
    # runs and from which its threads and children inherit; the ZeroMQ I/O thread keeps the
    # runtime's namespace, and its ipc socket does not depend on one anyway.
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(CLONE_NEWNET) == 0
