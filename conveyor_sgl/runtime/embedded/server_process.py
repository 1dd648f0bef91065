"""Run `python -m conveyor_sgl.launch_server` as a child process group, for tests and eval.

    with EmbeddedServer() as server:
        requests.post(server.url + "/generate", json={...})

The server runs in its own process group (SGLang starts a scheduler and a detokenizer
process beside the HTTP process), so shutdown can reach all of them: SIGTERM to the group,
a grace period, then SIGKILL, and it returns only when no process of the group is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; only type checkers need it

PACKAGE_ROOT = Path(__file__).resolve().parents[3]
POLL_INTERVAL_S = 0.5


class ServerStartError(RuntimeError):
    """The server exited or did not become healthy in time; the message ends with its log."""


class EmbeddedServer:
    def __init__(
        self,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 180,
        *,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
        stop_grace_s: float = 15,
    ) -> None:
        self.port = port or free_port(host)
        self.host = host
        self.extra_args = list(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.env = dict(env or {})
        self.log_path = Path(log_path) if log_path else _new_log_path(self.port)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the server is not running")
        return self._proc.pid

    def command(self) -> list[str]:
        args = ["--port", str(self.port), "--host", self.host, *self.extra_args]
        return [sys.executable, "-m", "conveyor_sgl.launch_server", *args]

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("the server is already started")
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._child_env(),
                start_new_session=True,  # its own process group, which stop() ends as one
            )
        try:
            self._wait_until_healthy(time.monotonic() + self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End every process of the server's group: SIGTERM, wait, then SIGKILL."""
        if self._proc is None:
            return
        pgid = self._proc.pid  # the leader of a new session: its pid is the group id
        _signal_group(pgid, signal.SIGTERM)
        if not _wait_group_gone(self._proc, pgid, time.monotonic() + self.stop_grace_s):
            _signal_group(pgid, signal.SIGKILL)
            _wait_group_gone(self._proc, pgid, time.monotonic() + 10)
        self._proc = None

    def group_pids(self) -> list[int]:
        """Pids of the live processes in the server's process group (leader included)."""
        return group_pids(self.pid)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _child_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        # So that `-m conveyor_sgl...` resolves from a source checkout that is not installed.
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(PACKAGE_ROOT)])
        return env

    def _wait_until_healthy(self, deadline: float) -> None:
        assert self._proc is not None
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise ServerStartError(self._failure(f"exited with code {code} during startup"))
            if _healthy(self.url + "/health", timeout_s=min(5.0, deadline - time.monotonic())):
                return
            time.sleep(POLL_INTERVAL_S)
        raise ServerStartError(self._failure(f"not healthy after {self.startup_timeout_s:.0f} s"))

    def _failure(self, what: str) -> str:
        return f"SGLang server on {self.url} {what}; log {self.log_path}:\n{self.log_tail()}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def group_pids(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is `pgid`."""
    return sorted(pid for pid, group, state in _proc_table() if group == pgid and state != "Z")


def _proc_table() -> list[tuple[int, int, str]]:
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        rows.append((int(entry.name), int(fields[2]), fields[0]))
    return rows


def _healthy(url: str, timeout_s: float) -> bool:
    # SGLang answers /health with 503 until its warm-up request is done.
    try:
        with urllib.request.urlopen(url, timeout=max(timeout_s, 0.1)) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _wait_group_gone(leader: subprocess.Popen[bytes], pgid: int, deadline: float) -> bool:
    while True:
        leader.poll()  # reap the leader, or its zombie would keep the group alive
        if not _group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    # Zombies do not count: where PID 1 does not reap orphans, they would never go away.
    return bool(group_pids(pgid))


def _new_log_path(port: int) -> Path:
    handle, path = tempfile.mkstemp(prefix=f"conveyor-sglang-{port}-", suffix=".log")
    os.close(handle)
    return Path(path)
