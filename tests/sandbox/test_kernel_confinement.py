"""Kernel-enforced confinement of the Python tool: each kernel layer holds on its own.

Tool code starts child processes (``max_processes: 8``), which run without the interpreter's
audit hook, and tries to read a secret outside the allow-list, write outside its directory,
connect to a listener of the test, kill a process of the test, and read the runtime's
/proc/<pid>/environ. ``CONVEYOR_SGL_SANDBOX_DISABLE`` (read by the workers, which a fresh pool
spawns after the test set it) leaves one layer on at a time; with every layer off the same
attacks succeed, which shows that the test detects them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from worker_fixtures import no_leaked_workers, pid_gone, wait_until

from conveyor_sgl import run_tool
from conveyor_sgl.runtime.sandbox.layers import DISABLE_ENV, KERNEL_LAYERS, kernel_layers
from conveyor_sgl.runtime.workers.pool import WorkerPool

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.platform != "linux", reason="Linux kernel layers"),
]
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)

ROOT = os.geteuid() == 0
NOBODY = 65534
LIMITS = {"cpu_s": 10, "memory_bytes": 1 << 30, "max_processes": 8}
SECRET = "hunter2-kernel-confinement"
ATTACKS = ("read", "write", "connect", "kill", "environ")


@dataclass
class Target:
    """What the attacks aim at, all outside the worker's sandbox."""

    secret: str  # a file outside the allow-list (owned by nobody, 0600, when we are root)
    written: str  # a path the attack tries to create
    port: int  # a listener on 127.0.0.1
    victim: subprocess.Popen  # a process of the test (nobody's, when we are root)
    listener: socket.socket

    def attack_code(self) -> str:
        connect = f"import socket; socket.create_connection(('127.0.0.1', {self.port}), 3)"
        return textwrap.dedent(
            f"""\
            import subprocess, sys
            def run(name, argv):
                try:
                    p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                    verdict, said = ('ok' if p.returncode == 0 else 'refused'), p.stdout + p.stderr
                except OSError as e:
                    verdict, said = 'refused', str(e)
                print(name, verdict, said.strip().replace(chr(10), ' ')[:300])
            run('read', ['cat', {self.secret!r}])
            run('write', ['sh', '-c', 'echo x > {self.written}'])
            run('connect', [sys.executable, '-c', {connect!r}])
            run('kill', ['kill', '-9', '{self.victim.pid}'])
            run('environ', ['cat', '/proc/{os.getpid()}/environ'])
            """
        )

    def leaked(self, output: str) -> list[str]:
        """Attacks whose effect is visible from outside the sandbox."""
        effects = {
            "read": SECRET in output,
            "write": os.path.exists(self.written),
            "connect": _accepted(self.listener),
            "kill": wait_until(lambda: pid_gone(self.victim.pid), 0.5),
            "environ": _first_environ_entry() in output,
        }
        return [name for name, happened in effects.items() if happened]


@pytest.fixture(name="target")
def _target(tmp_path) -> Iterator[Target]:
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    secret = vault / "secret.txt"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    if ROOT:  # another user's files: only capabilities let uid 0 read them
        os.chown(secret, NOBODY, NOBODY)
        os.chown(vault, NOBODY, NOBODY)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0)
    victim = subprocess.Popen(["sleep", "60"], user=NOBODY if ROOT else None)
    try:
        yield Target(
            str(secret), str(vault / "written"), listener.getsockname()[1], victim, listener
        )
    finally:
        victim.kill()
        victim.wait(5)
        listener.close()


def _first_environ_entry() -> str:
    with open("/proc/self/environ", "rb") as f:  # the runtime's, as the kernel shows it
        return f.read().split(b"\0")[0].decode(errors="replace")


def _accepted(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def pool_with_only(monkeypatch, *kept: str) -> WorkerPool:
    """A pool whose workers enforce only the kernel layers ``kept`` (no audit hook either)."""
    monkeypatch.setenv(DISABLE_ENV, ",".join([*(set(KERNEL_LAYERS) - set(kept)), "audit"]))
    return WorkerPool(size=1)


def attack(pool: WorkerPool, target: Target, **limits: object) -> tuple[dict[str, str], object]:
    with pool:
        result = run_tool(
            "python", target.attack_code(), pool=pool, timeout=40, limits={**LIMITS, **limits}
        )
    assert result.status == "ok", (result.error, result.output)
    lines = [line.split(" ", 2) for line in result.output.splitlines()]
    return {fields[0]: fields[1] for fields in lines if fields[0] in ATTACKS}, result


def needs(layer: str, root: bool = False):
    return pytest.mark.skipif(
        layer not in kernel_layers() or (root and not ROOT),
        reason=f"this host cannot enforce {layer}" + (" (or we are not root)" if root else ""),
    )


# --- each layer on its own -----------------------------------------------------------------


@pytest.mark.skipif(not ROOT, reason="the planted files and the victim are another user's")
def test_with_every_layer_off_the_attacks_succeed(monkeypatch, target):
    verdicts, result = attack(pool_with_only(monkeypatch), target)
    assert verdicts == dict.fromkeys(ATTACKS, "ok"), result.output
    assert target.leaked(result.output) == list(ATTACKS)
    assert not {"landlock", "caps", "netns", "seccomp", "confine"} & set(result.sandbox)


@needs("landlock")
def test_landlock_alone_refuses_reads_writes_tcp_signals_and_ptrace(monkeypatch, target):
    verdicts, result = attack(pool_with_only(monkeypatch, "landlock"), target)
    assert verdicts == dict.fromkeys(ATTACKS, "refused"), result.output
    assert target.leaked(result.output) == [], result.output
    assert "landlock" in result.sandbox and "caps" not in result.sandbox


@needs("caps", root=True)
def test_dropped_capabilities_alone_make_root_an_ordinary_user(monkeypatch, target):
    verdicts, result = attack(pool_with_only(monkeypatch, "caps"), target)
    # Another user's files, processes and a more privileged process's /proc: refused; TCP
    # and writes to root's own files are not this layer's business.
    expected = dict.fromkeys(["read", "write", "kill", "environ"], "refused")
    assert {k: verdicts[k] for k in expected} == expected, result.output
    assert target.leaked(result.output) == ["connect"], result.output
    assert "caps" in result.sandbox and "landlock" not in result.sandbox


@needs("netns", root=True)
def test_the_network_namespace_alone_refuses_the_connection(monkeypatch, target):
    verdicts, result = attack(pool_with_only(monkeypatch, "netns"), target)
    assert verdicts["connect"] == "refused", result.output
    assert "connect" not in target.leaked(result.output)
    assert "netns" in result.sandbox


@needs("seccomp")
def test_seccomp_alone_refuses_every_child_process(monkeypatch, target):
    verdicts, result = attack(pool_with_only(monkeypatch, "seccomp"), target, max_processes=0)
    assert verdicts == dict.fromkeys(ATTACKS, "refused"), result.output
    assert target.leaked(result.output) == []
    assert "Operation not permitted" in result.output


def test_all_layers_together_refuse_every_attack(target):
    with WorkerPool(size=1) as pool:
        verdicts, result = attack(pool, target)
    assert verdicts["read"] == verdicts["write"] == verdicts["connect"] == "refused", result.output
    assert target.leaked(result.output) == [], result.output
    assert set(kernel_layers()) - {"seccomp"} <= set(result.sandbox)  # seccomp: max_processes 0


# --- ordinary code still runs ----------------------------------------------------------------

ORDINARY = """\
import decimal, json, os, sqlite3, tempfile, threading
from concurrent.futures import ThreadPoolExecutor
print(json.dumps({'a': [1, 2]}), decimal.Decimal('0.1') + decimal.Decimal('0.2'))
db = sqlite3.connect(':memory:')
db.execute('create table t (x)'); db.executemany('insert into t values (?)', [(1,), (2,)])
print(db.execute('select sum(x) from t').fetchone()[0])
os.makedirs('data/sub'); open('data/sub/f.txt', 'w').write('kept')
print(open('data/sub/f.txt').read(), os.listdir('data'))
with tempfile.NamedTemporaryFile('w+') as f:
    f.write('tmp'); f.seek(0); print(f.read())
os.rename('data/sub/f.txt', 'g.txt'); os.remove('g.txt')
print(list(ThreadPoolExecutor(4).map(abs, [-1, -2, -3])))
try:
    import numpy
    print('numpy', numpy.arange(10).reshape(2, 5).sum(axis=1).tolist())
except ImportError:
    print('numpy', [10, 35])
"""


def test_ordinary_code_runs_under_every_layer():
    with WorkerPool(size=1) as pool:
        result = run_tool("python", ORDINARY, pool=pool, timeout=40, limits=LIMITS)
    assert result.status == "ok", (result.error, result.output)
    assert result.output.splitlines() == [
        '{"a": [1, 2]} 0.3',
        "3",
        "kept ['sub']",
        "tmp",
        "[1, 2, 3]",
        "numpy [10, 35]",
    ]
    assert set(kernel_layers()) - {"seccomp"} <= set(result.sandbox)
    assert result.to_dict()["sandbox"] == result.sandbox


def test_kernel_layers_follow_the_disable_variable(monkeypatch):
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    everything = kernel_layers()
    assert set(everything) <= set(KERNEL_LAYERS) and "caps" in everything
    monkeypatch.setenv(DISABLE_ENV, "landlock, caps")
    assert kernel_layers() == [layer for layer in everything if layer not in ("landlock", "caps")]
    monkeypatch.setenv(DISABLE_ENV, "")
    assert kernel_layers() == everything


def test_a_trusted_tool_gets_no_kernel_confinement():
    with WorkerPool(size=1) as pool:
        result = run_tool(
            "python",
            "print(1)\n",
            pool=pool,
            timeout=40,
            limits={"confine": False, "network": True},
        )
    assert result.status == "ok", result.error
    assert not {"landlock", "caps", "netns", "confine"} & set(result.sandbox)


SOCKET_PROBES = """\
import subprocess, sys
probes = {
    'AF_UNIX': 'import socket; socket.socket(socket.AF_UNIX).connect("SOCKET_PATH")',
    'AF_INET': 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(("127.0.0.1", 9))',
}
for family, probe in probes.items():
    p = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True)
    print(family, p.returncode, p.stderr.strip().splitlines()[-1:])
"""  # noqa: E501 - a probe script: its lines are the program the tool runs


@needs("seccomp")
@pytest.mark.parametrize("kept", [("seccomp",), ()], ids=["seccomp", "nothing"])
def test_no_unix_or_udp_sockets_even_with_processes_allowed(monkeypatch, tmp_path, kept):
    # Landlock does not mediate pathname unix sockets nor UDP: the tool thread's socket filter
    # (switched with seccomp) does, for the tool and its children.
    path = str(tmp_path / "service.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        os.chmod(path, 0o777)  # noqa: S103 - any sandboxed uid may try: the filter must stop it
        server.listen()
        code = SOCKET_PROBES.replace("SOCKET_PATH", path)
        with pool_with_only(monkeypatch, *kept) as pool:
            result = run_tool("python", code, pool=pool, timeout=40, limits=LIMITS)
        assert result.status == "ok", (result.error, result.output)
        unix, inet = result.output.splitlines()
        server.settimeout(0)
        if not kept:  # the probes work: what the filter refuses is really reachable
            assert (unix, inet) == ("AF_UNIX 0 []", "AF_INET 0 []")
            server.accept()[0].close()
            return
        assert "sockets" in result.sandbox
        assert unix.startswith("AF_UNIX 1") and "PermissionError" in unix, unix
        assert inet.startswith("AF_INET 1") and "PermissionError" in inet, inet
        with pytest.raises(BlockingIOError):
            server.accept()


def test_without_landlock_client_mode_still_runs_and_says_so(monkeypatch, caplog):
    # A kernel without Landlock, simulated: the tool runs, its result lists the layers that
    # held (no landlock), and the runtime warns once. (Server mode refuses instead: see
    # tests/server/test_server_policy.py.)
    from conveyor_sgl.runtime import session as session_module

    monkeypatch.setenv(DISABLE_ENV, "landlock")
    session_module._warn_if_unconfined.cache_clear()
    with caplog.at_level("WARNING"), WorkerPool(size=1) as pool:
        result = run_tool("python", "print(6 * 7)\n", pool=pool, timeout=20)
    assert (result.status, result.output.strip()) == ("ok", "42")
    assert "landlock" not in result.sandbox and "seccomp" in result.sandbox
    assert "without kernel filesystem confinement (missing or disabled: landlock)" in caplog.text
