"""Which kernel confinement layers this host can enforce, and which ones are switched off.

``CONVEYOR_SGL_SANDBOX_DISABLE`` (comma-separated layer names: ``landlock``, ``caps``,
``netns``, ``pidns`` (with it the private /proc), ``seccomp`` (every seccomp filter: no new
processes, no new sockets, the syscall baseline), ``audit`` (messages only, not a layer))
switches layers off in the workers: to test each layer on
its own, and to simulate a kernel without one. ``kernel_layers()`` is the runtime's cheap
probe (no process started, no namespace entered) for the launcher and the server to report,
and for server mode to refuse untrusted code where confinement is missing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

from conveyor_sgl.runtime.sandbox import landlock, seccomp

DISABLE_ENV = "CONVEYOR_SGL_SANDBOX_DISABLE"
KERNEL_LAYERS = ("landlock", "caps", "netns", "seccomp", "pidns")
LAYERS = (*KERNEL_LAYERS, "audit")
_PR_GET_SECCOMP = 21
_CAP_SYS_ADMIN = 21


def disabled(raw: str | None = None) -> frozenset[str]:
    """The layer names switched off by the environment (unknown names are ignored)."""
    raw = os.environ.get(DISABLE_ENV, "") if raw is None else raw
    return frozenset(name.strip().lower() for name in raw.split(",") if name.strip())


def kernel_layers() -> list[str]:
    """The kernel layers this host can enforce on a confined worker, minus disabled ones."""
    return list(_probe(os.environ.get(DISABLE_ENV, "")))


def report() -> dict[str, object]:
    """What holds for a confined worker on this host: for /conveyor/info and start-up logs."""
    active = kernel_layers()
    return {
        "kernel_layers": active,
        "missing": [name for name in KERNEL_LAYERS if name not in active],
        "disabled": sorted(disabled() & set(LAYERS)),
        "landlock_abi": landlock.abi_version(),
    }


def describe_layers() -> str:
    facts = report()
    missing = ", ".join(facts["missing"]) or "none"  # type: ignore[arg-type]
    return (
        f"kernel layers for confined tools: {', '.join(kernel_layers()) or 'none'} "
        f"(Landlock ABI {facts['landlock_abi']}); missing or disabled: {missing}"
    )


@functools.lru_cache(maxsize=8)
def _probe(disable_value: str) -> tuple[str, ...]:
    off = disabled(disable_value)
    found = {
        "landlock": landlock.abi_version() >= 1,
        "caps": platform.system() == "Linux",  # capset() to empty sets needs no privilege
        "netns": os.path.exists("/proc/self/ns/net") and _has_sys_admin(),
        "pidns": os.path.exists("/proc/self/ns/pid") and _has_sys_admin(),
        "seccomp": _has_seccomp(),
    }
    return tuple(name for name in KERNEL_LAYERS if found[name] and name not in off)


def _has_sys_admin() -> bool:
    try:
        with open("/proc/self/status") as f:
            eff = next(line for line in f if line.startswith("CapEff:"))
        return bool(int(eff.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    except (OSError, StopIteration, ValueError):
        return os.geteuid() == 0


def _has_seccomp() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return seccomp.supported() and libc.prctl(_PR_GET_SECCOMP, 0, 0, 0, 0) >= 0
