"""A local search service standing for a web search API, with a stated network latency.

    python -m conveyor_sgl.tools.search_service --port 8765 --delay-ms 200

Real HTTP over loopback (stdlib ``http.server``, one thread per request). The latency is
modelled here and only here: every request sleeps ``--delay-ms`` before it is answered, and
``/health`` and every ``/search`` reply state that delay. Endpoints:
- ``GET /search?q=<query>&k=<n>``: ``{"hits": [{"title", "text", "score"}], "delay_ms": D}``;
- ``GET /health``: ``{"docs": N, "delay_ms": D}``.
With ``--port 0`` a free port is chosen; the first line on stdout is always
``serving on http://HOST:PORT`` (printed once the index is loaded). ``SearchService`` starts
and ends one as a subprocess, for tests and the evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Self

from conveyor_sgl.process_group import end_groups, start_group, wait_ready
from conveyor_sgl.tools.search_index import SearchIndex, load_index

_READY_PREFIX = "serving on "


class _Handler(BaseHTTPRequestHandler):
    server: SearchServer

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(url.query)
        time.sleep(self.server.delay_ms / 1000)  # the modelled network latency
        if url.path == "/health":
            self._reply(200, {"docs": len(self.server.index), "delay_ms": self.server.delay_ms})
        elif url.path == "/search" and params.get("q"):
            try:
                k = int(params.get("k", ["3"])[0])
            except ValueError:
                self._reply(400, {"error": "k must be an integer"})
                return
            hits = self.server.index.search(params["q"][0], max(1, min(k, 50)))
            body = [{"title": h.title, "text": h.text, "score": h.score} for h in hits]
            self._reply(200, {"hits": body, "delay_ms": self.server.delay_ms})
        else:
            self._reply(404, {"error": "use GET /search?q=...&k=... or GET /health"})

    def _reply(self, code: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would flood the evaluation's logs


class SearchServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, index: SearchIndex, delay_ms: float) -> None:
        super().__init__((host, port), _Handler)
        self.index = index
        self.delay_ms = delay_ms

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]  # = server_address, which the stubs type loosely
        return f"http://{host}:{port}"


class SearchService:
    """``python -m conveyor_sgl.tools.search_service`` as a subprocess; ``url`` once ready."""

    def __init__(self, delay_ms: float = 0.0, port: int = 0, start_timeout_s: float = 120.0):
        command = [sys.executable, "-m", __name__, "--port", str(port), "--delay-ms", str(delay_ms)]
        self.proc = start_group(command, stdout=subprocess.PIPE)
        self._said = b""
        try:
            wait_ready(self.proc, self._read_ready_line, start_timeout_s, "search service")
        except BaseException:
            self.close()
            raise
        text = self._said.split(b"\n")[0].decode().strip()
        if not text.startswith(_READY_PREFIX):
            self.close()
            raise RuntimeError(f"search service said {text!r}, not {_READY_PREFIX!r}...")
        self.url = text[len(_READY_PREFIX) :]

    def close(self, grace_s: float = 5.0) -> None:
        """SIGTERM, wait, then SIGKILL: the service never outlives its owner."""
        end_groups([self.proc], grace_s)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read_ready_line(self, max_wait_s: float) -> bool:
        assert self.proc.stdout is not None  # noqa: S101 - started with stdout=PIPE
        fd = self.proc.stdout.fileno()
        readable, _, _ = select.select([fd], [], [], min(max_wait_s, 0.5))
        if readable:
            self._said += os.read(fd, 4096)  # "" at its exit: wait_ready then sees the code
        return self._said.endswith(b"\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="modelled latency per request")
    args = parser.parse_args(argv)
    if args.delay_ms < 0:
        parser.error("--delay-ms must be >= 0")
    server = SearchServer(args.host, args.port, load_index(), args.delay_ms)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever, which runs on this thread: ask from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"{_READY_PREFIX}{server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
