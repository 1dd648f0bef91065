"""The HTTP client of the primitives: a stale pooled connection is retried once, not more."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conveyor_sgl.primitives.endpoint import Endpoint, EndpointError

pytestmark = pytest.mark.timeout(30)


class DropFirst(BaseHTTPRequestHandler):
    """Drops the first ``drops`` requests without a byte of answer, then answers."""

    protocol_version = "HTTP/1.1"
    drops = 1
    seen = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen += 1
        if type(self).seen <= type(self).drops:
            self.close_connection = True  # closes without a status line: RemoteDisconnected
            return
        body = json.dumps({"tokens": [1, 2, 3]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    DropFirst.seen = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), DropFirst)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_a_dropped_connection_is_retried_once(server):
    DropFirst.drops = 1
    assert Endpoint(server).tokenize("abc") == [1, 2, 3]
    assert DropFirst.seen == 2


def test_a_server_that_keeps_dropping_is_an_error(server):
    DropFirst.drops = 5
    with pytest.raises(EndpointError, match=r"POST /tokenize to http://127\.0\.0\.1:.* failed"):
        Endpoint(server).tokenize("abc")
    assert DropFirst.seen == 2  # one retry, not a loop


def test_a_refused_connection_is_not_retried():
    with pytest.raises(EndpointError, match="failed"):
        Endpoint("http://127.0.0.1:9").tokenize("abc")
