"""The tool sandbox: limits from YAML, the scrubbed environment, and each layer in real workers."""

from __future__ import annotations

import os
import platform
import sys
import textwrap
import time

import msgspec
import pytest
from worker_fixtures import fresh_pool, no_leaked_workers

from conveyor_sgl import run_tool
from conveyor_sgl.runtime.sandbox.confine import scrub_env
from conveyor_sgl.runtime.sandbox.layers import kernel_layers
from conveyor_sgl.runtime.workers.pool import WorkerPool
from conveyor_sgl.tools.limits import ENV_VAR, Limits, LimitsError, limits_for, parse_size

pytestmark = pytest.mark.timeout(60)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

SMALL = {"cpu_s": 2, "memory_bytes": 512 << 20}  # small limits keep the tests fast


def run_python(pool: WorkerPool, code: str, timeout: float = 15.0, **limits: object):
    return run_tool(
        "python", textwrap.dedent(code), pool=pool, timeout=timeout, limits={**SMALL, **limits}
    )


def outcomes(code: str) -> str:
    """Wrap each line of ``code`` so that the tool prints what it did or why it was refused."""
    lines = [line for line in textwrap.dedent(code).splitlines() if line.strip()]
    return "import os, socket, sqlite3, subprocess, sys\n" + "".join(
        f"try:\n    {line}\n    print('ok:', {line!r})\n"
        f"except Exception as e:\n    print('refused:', {line!r}, '->', e)\n"
        for line in lines
    )


def verdicts(output: str) -> list[str]:
    """ "ok" or "refused" for each wrapped line, in order."""
    return [
        line.split(":", 1)[0]
        for line in output.splitlines()
        if line.startswith(("ok:", "refused:"))
    ]


# --- limits from YAML ---------------------------------------------------------------------


def test_packaged_limits_confine_the_python_tool_only():
    python = limits_for("python")
    assert (python.network, python.confine, python.max_processes) == (False, True, 0)
    assert python.memory_bytes == parse_size("2 GiB") == 2 << 30
    other = limits_for("some_trusted_tool")
    assert (other.network, other.confine, other.max_processes) == (True, False, None)


def test_user_file_and_overrides_win_field_by_field(tmp_path, monkeypatch):
    user = tmp_path / "limits.yaml"
    user.write_text("default:\n  cpu_s: 7\ntools:\n  python:\n    memory_bytes: 256 MiB\n")
    monkeypatch.setenv(ENV_VAR, str(user))
    limits = limits_for("python", {"file_bytes": "1 KiB"})
    assert (limits.cpu_s, limits.memory_bytes, limits.file_bytes) == (7, 256 << 20, 1024)
    assert limits.confine  # untouched fields keep the packaged value
    assert limits_for("python", Limits(cpu_s=1)) == Limits(cpu_s=1)  # a Limits replaces all


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tools:\n  python:\n    cpu_sec: 3\n", "section tools.python: .*unknown field `cpu_sec`"),
        ("default:\n  memory_bytes: lots\n", "not a size: 'lots'"),
        ("default:\n  cpu_s: -1\n", "cpu_s must be positive"),
        ("default: [1, 2]\n", "section default must be a mapping"),
        ("python:\n  cpu_s: 1\n", "expected the keys 'default' and 'tools'"),
        ("default: {cpu_s: 1\n", "cannot read limits file"),
    ],
)
def test_a_bad_limits_file_names_the_file_and_the_problem(tmp_path, monkeypatch, content, message):
    user = tmp_path / "mine.yaml"
    user.write_text(content)
    monkeypatch.setenv(ENV_VAR, str(user))
    with pytest.raises(LimitsError, match=message) as info:
        limits_for("python")
    assert "mine.yaml" in str(info.value)


def test_limits_check_their_own_values():
    with pytest.raises(ValueError, match="max_processes must be >= 0"):
        Limits(max_processes=-1)
    with pytest.raises(msgspec.ValidationError, match="memory_bytes must be positive"):
        msgspec.convert({"memory_bytes": 0}, Limits)
    with pytest.raises(LimitsError, match=r"limits of tool 'python': .*unknown field `wall_s`"):
        limits_for("python", {"wall_s": 1})


# --- the environment ------------------------------------------------------------------------


def test_scrub_env_keeps_the_allow_list_and_drops_secrets():
    env = {
        "PATH": "/bin",
        "LC_ALL": "C",
        "CONVEYOR_SGL_CACHE": "/c",
        "OPENAI_API_KEY": "k",
        "CONVEYOR_SGL_TOKEN": "t",  # allowed prefix, secret-looking name: dropped
        "AWS_SECRET_ACCESS_KEY": "s",
        "DB_PASSWORD": "p",
        "SOME_OTHER_VAR": "x",
    }
    assert scrub_env(env) == {"PATH": "/bin", "LC_ALL": "C", "CONVEYOR_SGL_CACHE": "/c"}


def test_tool_code_sees_no_secret_of_the_runtime(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "hunter2-secret")
    monkeypatch.setenv("UNLISTED_SETTING", "hunter2-unlisted")
    with WorkerPool(size=1) as pool:  # spawned after the secret was set
        result = run_python(
            pool,
            """\
            import os
            print(sorted(os.environ))
            print(open('/proc/self/environ', 'rb').read())
            """,
        )
    assert result.status == "ok", result.error
    assert "hunter2" not in result.output and "MY_SERVICE_API_KEY" not in result.output
    assert "'PATH'" in result.output and "'HOME'" in result.output


# --- the working directory ------------------------------------------------------------------


def test_a_private_workdir_is_cwd_home_and_temp_and_is_removed_afterwards(pool):
    result = run_python(
        pool,
        """\
        import os, tempfile
        print(os.getcwd())
        print(os.environ['HOME'] == os.getcwd() == tempfile.gettempdir() == os.environ['TMPDIR'])
        with open('notes.txt', 'w') as f:
            print(f.write('kept'))
        with tempfile.NamedTemporaryFile(dir=None) as f:
            print(os.path.dirname(f.name) == os.getcwd())
        print(oct(os.stat('.').st_mode & 0o777))
        """,
    )
    assert result.status == "ok", result.output
    workdir, same, wrote, temp_inside, mode = result.output.splitlines()
    assert (same, wrote, temp_inside, mode) == ("True", "4", "True", "0o700")
    assert workdir.startswith(os.path.realpath(pool._dir)) and workdir.endswith(".work")
    assert not os.path.exists(workdir)


def test_the_runtime_removes_the_workdir_of_a_killed_worker(pool):
    result = run_python(
        pool, "open('big', 'w').write('x' * 1000)\nimport os\nos.kill(os.getpid(), 9)\n"
    )
    assert result.status == "error" and "killed by SIGKILL" in result.error
    assert [name for name in os.listdir(pool._dir) if name.endswith(".work")] == []


def test_file_size_limit(pool):
    result = run_python(pool, "open('f', 'wb').write(b'x' * (2 << 20))\n", file_bytes=1 << 20)
    assert (result.status, result.error) == ("error", "OSError: [Errno 27] File too large")


# --- what tool code may not do --------------------------------------------------------------


def test_writes_outside_the_workdir_are_refused(pool, tmp_path):
    outside = str(tmp_path / "outside.txt")
    (tmp_path / "outside.txt").write_text("original")
    expected = {
        f"open({outside!r}, 'a').write('x')": "refused",
        f"os.remove({outside!r})": "refused",
        f"os.rename({outside!r}, 'stolen')": "refused",
        f"os.link({outside!r}, 'hardlink')": "refused",  # then writing it would write outside
        f"os.symlink({outside!r}, 'symlink')": "ok",
        "open('symlink', 'w').write('through a link')": "refused",
        f"os.mkdir({str(tmp_path / 'd')!r})": "refused",
        f"os.chmod({outside!r}, 0o777)": "refused",
        f"sqlite3.connect({str(tmp_path / 'x.db')!r})": "refused",
        # Reading outside the allow-list: the kernel's refusal (Landlock), where it has one.
        f"open({outside!r}).read()": "refused" if "landlock" in kernel_layers() else "ok",
        "os.mkdir('mine')": "ok",
        "os.rename('mine', 'ours')": "ok",
        "os.makedirs('ours/a/b'); open('ours/a/b/f', 'w').close()": "ok",
        "__import__('shutil').rmtree('ours')": "ok",  # fd-relative removals inside
        "sqlite3.connect(':memory:')": "ok",
    }
    result = run_python(pool, outcomes("\n".join(expected)))
    assert result.status == "ok", result.output
    assert verdicts(result.output) == list(expected.values()), result.output
    assert "sandbox: writing" in result.output
    assert "only inside the working directory" in result.output
    assert os.listdir(tmp_path) == ["outside.txt"]
    assert (tmp_path / "outside.txt").read_text() == "original"


def test_network_is_refused_in_the_interpreter(pool):
    code = outcomes(
        """\
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        socket.getaddrinfo('localhost', 80)
        socket.gethostbyname('localhost')
        socket.socketpair()
        """
    )
    result = run_python(pool, code)
    assert verdicts(result.output) == ["refused"] * 4 + ["ok"], result.output
    assert "sandbox: opening a network socket" in result.output


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs CAP_SYS_ADMIN")
def test_a_private_network_namespace(pool):
    code = (
        "import os, socket\nprint(os.readlink('/proc/self/ns/net'))\nprint(socket.if_nameindex())\n"
    )
    result = run_python(pool, code)
    namespace, interfaces = result.output.splitlines()
    assert namespace != os.readlink("/proc/self/ns/net")
    assert interfaces == "[(1, 'lo')]"  # nothing to route through, even with ctypes


def test_processes_beyond_the_budget_are_refused(pool):
    code = outcomes(
        """\
        subprocess.run([sys.executable, '-c', 'pass'], check=True)
        subprocess.run([sys.executable, '-c', 'pass'], check=True)
        os.system('true')
        """
    )
    result = run_python(pool, code, max_processes=1)
    assert verdicts(result.output) == ["ok", "refused", "refused"], result.output
    assert "sandbox: starting a process (limit: 1)" in result.output


def test_escape_hatches_of_the_interpreter_are_refused(pool):
    code = outcomes(
        """\
        __import__('resource').setrlimit(__import__('resource').RLIMIT_CPU, (100, 100))
        __import__('ctypes').CDLL('libc.so.6')
        __import__('ctypes').pythonapi.Py_GetVersion
        __import__('gc').get_objects()
        open(f'/proc/{os.getppid()}/cmdline').read()
        os.listdir(os.path.dirname(os.getcwd()))
        open('/proc/self/status').read()
        """
    )
    result = run_python(pool, code)
    assert verdicts(result.output) == ["refused"] * 6 + ["ok"], result.output


def test_an_unconfined_tool_keeps_its_freedom(pool):
    # Trusted tools (the default section) keep network and writes: only python is confined.
    code = outcomes("socket.socket().close()\nopen('/dev/shm/conveyor-h5-probe', 'w').close()\n")
    try:
        result = run_python(pool, code, network=True, confine=False, max_processes=None)
        assert verdicts(result.output) == ["ok", "ok"], result.output
    finally:
        if os.path.exists("/dev/shm/conveyor-h5-probe"):
            os.remove("/dev/shm/conveyor-h5-probe")


def test_a_limit_is_enforced_within_its_deadline(pool):
    start = time.monotonic()
    result = run_python(pool, "while True:\n    pass\n", cpu_s=1, timeout=20)
    assert result.status == "error"
    assert result.error.endswith("CpuLimitExceeded: CPU time limit of 1 s exceeded")
    assert time.monotonic() - start < 15  # 1 s of CPU, however loaded the machine


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="no seccomp table")
@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="fork_exec's signature is 3.11's")
def test_no_process_even_through_a_c_entry_point_without_an_audit_event(pool, tmp_path):
    # _posixsubprocess.fork_exec raises no audit event: only the seccomp filter stops it.
    target = tmp_path / "escaped"
    code = f"""\
        import _posixsubprocess, os
        r, w = os.pipe()
        argv = [b"/bin/sh", b"-c", b"echo escaped > {target}"]
        _posixsubprocess.fork_exec(argv, argv[:1], True, (w,), None, None, -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1, None, False)
        """  # noqa: E501 - fork_exec's 23 arguments, as the program would write them
    result = run_python(pool, code)
    assert (result.status, result.error) == (
        "error",
        "PermissionError: [Errno 1] Operation not permitted",
    )
    assert not target.exists()
    threads = run_python(
        pool,
        "from concurrent.futures import ThreadPoolExecutor\n"
        "print(list(ThreadPoolExecutor(4).map(abs, [-1, -2])))\n",
    )
    assert (threads.status, threads.output) == ("ok", "[1, 2]\n")  # threads still work
