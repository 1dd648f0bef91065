"""Run `python -m conveyor_sgl.launch_server` as a child process group, for tests and eval.

    with EmbeddedServer() as server:
        requests.post(server.url + "/generate", json={...})

The server runs in its own process group (SGLang starts a scheduler and a detokenizer
process beside the HTTP process), so shutdown can reach all of them: SIGTERM to the group,
a grace period, then SIGKILL, and it returns only when no process of the group is left.
"""

from __future__ import annotations

import os
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

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.process_group import (
    ProcessStartError,
    end_groups,
    group_pids,
    start_group,
    wait_ready,
)

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; only type checkers need it

PACKAGE_ROOT = Path(__file__).resolve().parents[3]
POLL_INTERVAL_S = 0.5


class ServerStartError(ConveyorError, RuntimeError):
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
            # Its own process group, which stop() ends as one.
            self._proc = start_group(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self._child_env()
            )
        try:
            wait_ready(self._proc, self._healthy_soon, self.startup_timeout_s, "the server")
        except ProcessStartError as e:
            self.stop()
            raise ServerStartError(self._failure(str(e))) from None
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End every process of the server's group: SIGTERM, wait, then SIGKILL; it returns
        when no process of the group is left."""
        if self._proc is None:
            return
        end_groups([self._proc], self.stop_grace_s, members=True)
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

    def _healthy_soon(self, max_wait_s: float) -> bool:
        # SGLang answers /health with a one-token generation: give it seconds, not a poll.
        if _healthy(self.url + "/health", timeout_s=min(5.0, max(max_wait_s, 0.1))):
            return True
        time.sleep(min(max_wait_s, POLL_INTERVAL_S))
        return False

    def _failure(self, what: str) -> str:
        return f"SGLang server on {self.url}: {what}; log {self.log_path}:\n{self.log_tail()}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _healthy(url: str, timeout_s: float) -> bool:
    # SGLang answers /health with 503 until its warm-up request is done.
    try:
        # An http URL built by this module from host and port: no file: or custom scheme.
        with urllib.request.urlopen(url, timeout=max(timeout_s, 0.1)) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _new_log_path(port: int) -> Path:
    handle, path = tempfile.mkstemp(prefix=f"conveyor-sglang-{port}-", suffix=".log")
    os.close(handle)
    return Path(path)
