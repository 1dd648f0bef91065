"""``ServerToolCall`` against a real socket that answers like ``/conveyor/partial_tool``
and then never sends the result: a result timeout returns on time, wakes the thread that
reads the stream, and the server side sees the connection end at once (its cancel signal).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from conveyor_sgl.primitives.endpoint import Endpoint
from conveyor_sgl.primitives.server_mode import ServerToolCall
from conveyor_sgl.runtime.server.protocol import EVENT_KEY, TEXT_KEY

pytestmark = pytest.mark.timeout(30)


class SilentToolServer:
    """One connection: streams a generation and ``decode_end``, then waits for the client
    to go away and records when it did (``gone_at``)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.gone_at: float | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(20)  # a deadline: the test fails rather than hangs
            _read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
            conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
            # The server parsed the stream: what to show is its own text (TEXT_KEY).
            text, meta = "x = 1\n<END", {"finish_reason": {"type": "stop", "matched": "<END"}}
            events = [{"text": text, "meta_info": meta, TEXT_KEY: "x = 1\n"}]
            events.append({EVENT_KEY: "decode_end", "abort_reason": None})
            for event in events:
                data = b"data: " + json.dumps(event).encode() + b"\n\n"
                conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass
            self.gone_at = time.monotonic()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=25)


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(4096)


@pytest.fixture(name="server")
def _server() -> Iterator[SilentToolServer]:
    server = SilentToolServer()
    yield server
    server.close()


def test_a_result_timeout_returns_on_time_and_the_server_sees_the_client_go(server):
    call = ServerToolCall(Endpoint(server.url), {"tool": "python"}, tool="python")
    # The event as the server sent it (the ledger needs its text), with the text to show.
    assert [(e.text, shown) for e, shown in call.generation()] == [("x = 1\n<END", "x = 1\n")]
    start = time.monotonic()
    tool = call.finish(0.5).to_dict()
    returned = time.monotonic()
    assert returned - start < 1.0
    assert tool["status"] == "timeout" and tool["mode"] == "server"
    assert tool["error"] == "tool 'python' returned no result within 0.5s"
    assert tool["decode_finished_at"] <= tool["result_ready_at"]
    server.thread.join(timeout=5)
    assert server.gone_at is not None and server.gone_at - returned < 0.5
    reader = call._reader
    assert reader is not None
    reader.join(timeout=2)
    assert not reader.is_alive()  # woken by the shutdown, not by a read timeout


def test_closing_a_call_whose_result_was_never_asked_for_tells_the_server(server):
    call = ServerToolCall(Endpoint(server.url), {"tool": "python"}, tool="python")
    list(call.generation())
    closed = time.monotonic()
    call.close()  # what the end of a program does with a result it never took
    call.close()  # idempotent
    server.thread.join(timeout=5)
    assert server.gone_at is not None and server.gone_at - closed < 0.5
