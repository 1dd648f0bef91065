"""The operator's caps on a real server launched with --tool-partial-execution, on both
routes (direct, and carried through /v1/completions as sglang-router forwards it): a
session's wall time, sessions per client, and the size of a request body."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import pytest
import requests

from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer
from conveyor_sgl.runtime.server.protocol import (
    CARRIER_PATH,
    DECODE_END,
    EVENT_KEY,
    INFO_PATH,
    PARTIAL_TOOL_PATH,
    RESULT,
    carried,
)

pytestmark = pytest.mark.server

MAX_SESSION_S = 8
PER_CLIENT = 2
MAX_BODY = 64 << 10
CAP_WORDS = f"cap on a session's wall time, {MAX_SESSION_S}s (--tool-max-session-s)"
HANG = "tools_for_tests:HangTool"  # with hang_in_finish: a tool that never answers


@pytest.fixture(scope="module")
def capped():
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    flags = ["--tool-partial-execution", "--tool-allow-import-targets"]  # the test tools
    flags += ["--tool-max-session-s", str(MAX_SESSION_S)]
    flags += ["--tool-max-sessions-per-client", str(PER_CLIENT), "--tool-max-body-bytes", "64KiB"]
    with EmbeddedServer(extra_args=flags, env={"PYTHONPATH": tests_dir}) as server:
        yield server


def _body(tool: str = HANG, config: dict | None = None, tokens: int = 4, **extra) -> dict:
    if tool == HANG and config is None:
        config = {"hang_in_finish": True}
    sampling = {"max_new_tokens": tokens, "temperature": 0}
    if tokens > 64:
        sampling["ignore_eos"] = True
    generate = {"text": "Count:", "sampling_params": sampling}
    return {
        "tool": tool,
        "config": config or {},
        "generate": generate,
        "result_timeout": MAX_SESSION_S,
        **extra,
    }


def _post(url: str, body: dict, key: str, via: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"}  # the server has no --api-key: any key passes
    if via == "carried":
        url, body = url + CARRIER_PATH, carried(PARTIAL_TOOL_PATH, body, "Count:", "default")
    else:
        url = url + PARTIAL_TOOL_PATH
    return requests.post(url, json=body, headers=headers, stream=True, timeout=60)


def _events(response: requests.Response) -> list[dict[str, Any]]:
    out = []
    for line in response.iter_lines():
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            out.append(json.loads(line[5:]))
    return out


def _ours(events: list[dict[str, Any]]) -> tuple[dict, dict]:
    decode_end = next(e for e in events if e.get(EVENT_KEY) == DECODE_END)
    result = next(e for e in events if e.get(EVENT_KEY) == RESULT)
    return decode_end, result["tool"]


def _raw(server: EmbeddedServer, head: str, body: bytes) -> tuple[int, str]:
    """Send ``head`` and ``body`` (not the whole body its headers announce) and read the
    answer: it must come without the rest of the body."""
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in data[:head_end].split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(data) >= head_end + 4 + length:
                    break
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1].decode()


def test_info_reports_the_caps_on_both_routes(capped):
    direct = requests.get(capped.url + INFO_PATH, timeout=10).json()
    outer = carried(INFO_PATH, None, "hi", "default")
    through = requests.post(capped.url + CARRIER_PATH, json=outer, timeout=10).json()
    for info in (direct, through):
        policy = info["policy"]
        assert (policy["max_session_s"], policy["max_sessions_per_client"]) == (8, 2)
        assert policy["max_body_bytes"] == MAX_BODY
        # Each tool's session limits, the disk a session may fill among them.
        assert info["limits"]["python"]["disk_bytes"] == 256 << 20
        assert info["limits"]["sql"]["confine"] is True
        assert {"landlock", "pidns", "netns", "caps"} <= set(info["sandbox"]["kernel_layers"])


@pytest.mark.parametrize("via", ["direct", "carried"])
def test_a_longer_result_timeout_is_refused(capped, via):
    answer = _post(capped.url, _body("python", result_timeout=MAX_SESSION_S + 1), "t-" + via, via)
    assert answer.status_code == 403
    message = answer.json()["error"]["message"]
    assert f"result_timeout {MAX_SESSION_S + 1}s is above" in message and CAP_WORDS in message


def test_a_body_over_the_cap_is_refused_before_it_is_read(capped):
    base = f"Host: {capped.host}\nContent-Type: application/json\n"
    # Declared too large: refused on the headers, the body unsent.
    head = f"POST {PARTIAL_TOOL_PATH} HTTP/1.1\n{base}Content-Length: {10 << 20}\n"
    status, text = _raw(capped, head, b'{"tool": "python", "generate": {"text": "')
    assert status == 413 and f"cap of {MAX_BODY} bytes (--tool-max-body-bytes)" in text
    # No length (chunked): counted as it comes, refused before it ends.
    head = f"POST {PARTIAL_TOOL_PATH} HTTP/1.1\n{base}Transfer-Encoding: chunked\n"
    chunk = b"%x\r\n%s\r\n" % (16 << 10, b"x" * (16 << 10))
    status, text = _raw(capped, head, chunk * 5)  # 80 KiB, and no last chunk
    assert status == 413 and "(--tool-max-body-bytes)" in text
    # Carried: known to be ours from its first bytes, then refused on its length.
    head = f"POST {CARRIER_PATH} HTTP/1.1\n{base}Content-Length: {10 << 20}\n"
    prefix = json.dumps(carried(PARTIAL_TOOL_PATH, {"tool": "python"}, "x", "m"))[:40].encode()
    status, text = _raw(capped, head, prefix)
    assert status == 413 and "(--tool-max-body-bytes)" in text
    # An ordinary completion of that size is SGLang's, as before.
    ordinary = {"model": "default", "prompt": "Hi", "max_tokens": 1, "user": "u" * MAX_BODY}
    answer = requests.post(capped.url + CARRIER_PATH, json=ordinary, timeout=60)
    assert answer.status_code != 413, answer.text


@pytest.mark.parametrize("via", ["direct", "carried"])
def test_sessions_per_client_are_capped_until_one_ends(capped, via):
    key = "client-" + via
    held = [_post(capped.url, _body(), key, via) for _ in range(PER_CLIENT)]
    assert [r.status_code for r in held] == [200] * PER_CLIENT
    refused = _post(capped.url, _body(), key, via)
    assert refused.status_code == 429
    assert "(--tool-max-sessions-per-client)" in refused.json()["error"]["message"]
    other = _post(capped.url, _body(), key + "-other", via)  # another client is not held up
    assert other.status_code == 200
    other.close()
    held.pop().close()  # the client goes away: its place is given back
    deadline = time.monotonic() + 10
    while True:
        again = _post(capped.url, _body(), key, via)
        if again.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert again.status_code == 200, again.text
    for response in (again, *held):
        response.close()


@pytest.mark.timing
@pytest.mark.parametrize("via", ["direct", "carried"])
def test_the_server_ends_a_session_at_the_cap(capped, via):
    key = "cap-" + via
    # A tool that never answers: its wait ends at the cap.
    waiting = _post(capped.url, _body(), key, via)
    # A generation far longer than the cap: decoding is stopped at the cap.
    decoding = _post(capped.url, _body("tools_for_tests:EchoTool", tokens=4000), key, via)
    # Both held until the cap: the client is at its share.
    assert _post(capped.url, _body(), key, via).status_code == 429
    decode_end, tool = _ours(_events(waiting))
    assert decode_end["abort_reason"] is None
    _assert_ended_at_the_cap(tool)
    events = _events(decoding)
    decode_end, tool = _ours(events)
    assert CAP_WORDS in decode_end["abort_reason"]
    _assert_ended_at_the_cap(tool)
    tokens = max(e.get("meta_info", {}).get("completion_tokens", 0) for e in events)
    assert 0 < tokens < 4000
    # Their places are free again.
    again = _post(capped.url, _body("tools_for_tests:EchoTool"), key, via)
    assert again.status_code == 200
    assert _ours(_events(again))[1]["status"] == "ok"


def _assert_ended_at_the_cap(tool: dict) -> None:
    assert tool["status"] == "aborted" and CAP_WORDS in tool["error"]
    # On the server's own clock (seconds since it received the request): a loaded host may
    # delay when this client reads the stream, not when the server ended the session.
    # (The loop's timer may fire a fraction of a millisecond early: uvloop counts in ms.)
    assert MAX_SESSION_S - 0.01 <= tool["result_ready_at"] < MAX_SESSION_S + 3
