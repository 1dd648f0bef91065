"""Escapes an attacker would try from inside the executor, in pure Python, and how to tell
whether one worked. Shared by the client-mode tests (``test_executor_escapes.py``) and the
server-mode ones (``test_adversarial_modes.py``, direct and carried).

Every program first switches off what Python-level defences it can reach (it rebinds the audit
hook module's helpers, which the hook looks up at call time), then tries each escape and
prints one line per attempt; nothing raises, so one refusal does not hide the next attempt.
The tests then look for the *effects* outside the sandbox, never at the messages.
"""

from __future__ import annotations

import textwrap

# Rebind every module-level helper of the audit hook to a no-op: what is left of it is
# the checks it closed over, which these programs then simply try to get past.
SWITCH_OFF_HOOK = """\
import sys
try:
    import conveyor_sgl.runtime.sandbox.audit_hook as _h
    for _name in ("_require_inside", "_check_readable", "_group_of"):
        setattr(_h, _name, lambda *a, **k: None)
    _h._inside = lambda *a, **k: True
except Exception as e:
    print("HOOK", type(e).__name__)
"""

TRY = """\
def attempt(name, fn):
    try:
        print(name, "OK", repr(fn())[:300])
    except BaseException as e:
        print(name, "REFUSED", type(e).__name__, str(e)[:120])
"""


def threads_and_memory() -> str:
    """Look for any thread to borrow and any runtime object left in memory."""
    return (
        SWITCH_OFF_HOOK
        + TRY
        + textwrap.dedent(
            """\
        import gc, os, threading
        attempt("THREADS", lambda: open("/proc/self/status").read().split("Threads:")[1].split()[0])
        attempt("PYTHREADS", lambda: [t.name for t in threading.enumerate()])
        def runtime_objects():
            found = []
            for obj in gc.get_objects():
                kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
                if kind.startswith(("zmq.", "conveyor_sgl.runtime.workers.")):
                    found.append(kind)
            return sorted(set(found))
        attempt("GC", runtime_objects)
        def module_globals():
            found = []
            for name, module in list(sys.modules.items()):
                for value in list(getattr(module, "__dict__", {}).values()):
                    kind = f"{type(value).__module__}.{type(value).__qualname__}"
                    if kind.startswith(("zmq.sugar.context", "zmq.sugar.socket")):
                        found.append(f"{name}:{kind}")
            return found
        attempt("GLOBALS", module_globals)
        attempt("ZMQINSTANCE", lambda: __import__("zmq").Context._instance)
        """
        )
    )


def reach_outside(secret_path: str, outside: str, port: int, victim_pid: int) -> str:
    """Read, write, connect, signal and look at processes outside the session."""
    return (
        SWITCH_OFF_HOOK
        + TRY
        + textwrap.dedent(
            f"""\
        import os, socket, signal
        attempt("READ", lambda: open({secret_path!r}).read())
        attempt("WRITE", lambda: open({outside!r}, "w").write("pwned"))
        def connect():
            s = socket.socket()
            s.settimeout(2)
            s.connect(("127.0.0.1", {port}))
            return "CONNECTED"
        attempt("CONNECT", connect)
        attempt("SIGNAL", lambda: os.kill({victim_pid}, 0) or "SIGNALLED")
        attempt("ENVIRON", lambda: open("/proc/{victim_pid}/environ").read())
        attempt("PROCS", lambda: sorted(p for p in os.listdir("/proc") if p.isdigit()))
        attempt("PARENT", lambda: os.getppid())
        """
        )
    )


def forge_messages(flood: bool) -> str:
    """Write forged frames on every descriptor: a result naming made-up layers, or (``flood``)
    a frame announcing 400 MiB, then 400 MiB."""
    return (
        SWITCH_OFF_HOOK
        + TRY
        + textwrap.dedent(
            """\
        import os, struct
        from conveyor_sgl.runtime.workers.messages import Envelope, Result
        from conveyor_sgl.runtime.workers.pipe_frames import frame
        forged = frame(Envelope("", Result("ok", "FORGED", None, ["made-up"])))
        def forge():
            wrote = []
            for fd in range(3, 64):
                try:
                    os.write(fd, forged)
                    wrote.append(fd)
                except OSError:
                    pass
            return wrote
        def flood():
            header = struct.pack(">I", 400 << 20)
            chunk = b"x" * (1 << 20)
            for fd in range(3, 64):
                try:
                    os.write(fd, header)
                    for _ in range(400):
                        os.write(fd, chunk)
                except OSError:
                    pass
        """
        )
        + ('attempt("FLOOD", flood)\n' if flood else 'attempt("FORGE", forge)\n')
    )


def syscalls() -> str:
    """Ask the kernel for what the baseline refuses (ctypes: the hook is off)."""
    return (
        SWITCH_OFF_HOOK
        + TRY
        + textwrap.dedent(
            """\
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def call(nr, *args):
            r = libc.syscall(nr, *args)
            return "ALLOWED" if r >= 0 else "errno %d" % ctypes.get_errno()
        attempt("USERNS", lambda: call(272, 0x10000000))  # unshare(CLONE_NEWUSER)
        attempt("MOUNT", lambda: call(165, b"none", b"/tmp", b"tmpfs", 0, None))
        attempt("IOURING", lambda: call(425, 1, ctypes.create_string_buffer(120)))
        attempt("PTRACE", lambda: call(101, 16, 1, 0, 0))  # PTRACE_ATTACH to pid 1
        attempt("BPF", lambda: call(321, 0, None, 0))
        """
        )
    )
