"""Run sglang-router in front of running SGLang servers, as a child process group.

    with EmbeddedServer(...) as a, EmbeddedServer(...) as b, Router([a.url, b.url]) as router:
        sgl.RuntimeEndpoint(router.url)

The router is ready when it has registered every worker (it health-checks and registers
them in the background after it starts listening), not when its port first answers.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from conveyor_sgl.runtime.embedded.server_process import POLL_INTERVAL_S, EmbeddedServer


class Router(EmbeddedServer):
    def __init__(
        self,
        worker_urls: Sequence[str],
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 60,
        *,
        log_path: str | Path | None = None,
    ) -> None:
        super().__init__(
            extra_args=extra_args, startup_timeout_s=startup_timeout_s, log_path=log_path
        )
        self.worker_urls = list(worker_urls)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "sglang_router.launch_router",
            *("--host", self.host, "--port", str(self.port)),
            *("--worker-urls", *self.worker_urls),
            *("--log-level", "warn"),
            *self.extra_args,
        ]

    def workers(self) -> int:
        """How many workers the router has registered (0 while it is not answering)."""
        try:
            with urllib.request.urlopen(self.url + "/get_server_info", timeout=2) as res:  # noqa: S310 - our own local URL
                return int(json.loads(res.read()).get("workers_count", 0))
        except (OSError, ValueError, urllib.error.URLError):
            return 0

    def _healthy_soon(self, max_wait_s: float) -> bool:
        if self.workers() >= len(self.worker_urls):
            return True
        time.sleep(min(max_wait_s, POLL_INTERVAL_S))
        return False
