"""The carrier middleware alone: a carried request reaches our route as if called directly;
every other completion reaches SGLang's handler with its body intact; our bodies, direct or
carried, are capped before they are read in full."""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from conveyor_sgl.runtime.server.carrier import CarrierMiddleware
from conveyor_sgl.runtime.server.protocol import (
    CARRIER_PATH,
    INFO_PATH,
    PARTIAL_TOOL_PATH,
    carried,
)


def _app() -> TestClient:
    app = FastAPI()

    @app.get(INFO_PATH)
    async def info() -> dict:
        return {"name": "conveyor_sgl"}

    @app.post(PARTIAL_TOOL_PATH)
    async def partial_tool(request: Request) -> dict:
        return {"route": "partial_tool", "body": await request.json()}

    @app.post(CARRIER_PATH)
    async def completions(request: Request) -> dict:
        return {"route": "completions", "body": await request.json()}

    app.add_middleware(CarrierMiddleware)
    return TestClient(app)


def test_a_carried_request_reaches_the_inner_route():
    client = _app()
    assert client.post(CARRIER_PATH, json=carried(INFO_PATH, None, "hi", "m")).json() == {
        "name": "conveyor_sgl"
    }
    inner = {"tool": "python", "generate": {"text": "x"}}
    res = client.post(CARRIER_PATH, json=carried(PARTIAL_TOOL_PATH, inner, "x", "m"))
    assert res.json() == {"route": "partial_tool", "body": inner}


def test_other_completions_pass_through_unchanged():
    client = _app()
    for body in (
        {"model": "m", "prompt": "hi"},
        {"model": "m", "prompt": 'say "conveyor"'},  # the word alone is not the field
        {"model": "m", "prompt": "hi", "conveyor": "not an object"},
    ):
        assert client.post(CARRIER_PATH, json=body).json() == {"route": "completions", "body": body}


def test_only_our_routes_can_be_carried():
    client = _app()
    body = {"model": "m", "prompt": "x", "conveyor": {"route": "/generate", "body": {}}}
    res = client.post(CARRIER_PATH, json=body)
    assert res.status_code == 400 and "route must be one of" in res.text


# --- the body cap -------------------------------------------------------------------------

CAP = 1000


class _Inner:
    """The app behind the middleware: records what reached it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _call(path: str, chunks: list[bytes], length: int | None = None):
    """(status, answer, what reached the app, chunks the middleware read)."""
    inner = _Inner()
    middleware = CarrierMiddleware(inner, max_body_bytes=CAP)
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        if read > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    status = sent[0]["status"]
    answer = b"".join(m.get("body", b"") for m in sent[1:])
    return status, answer, inner.calls, read


def _too_large(status: int, answer: bytes) -> bool:
    message = json.loads(answer)["error"]["message"]
    return status == 413 and f"cap of {CAP} bytes (--tool-max-body-bytes)" in message


def test_a_body_over_the_cap_is_refused_before_it_is_read():
    big = [b"x" * 600] * 10
    # Its declared length is enough: nothing is read.
    status, answer, calls, read = _call(PARTIAL_TOOL_PATH, big, length=6000)
    assert _too_large(status, answer) and calls == [] and read == 0
    # Without one, it is counted as it comes: refused at the chunk that passes the cap.
    status, answer, calls, read = _call(PARTIAL_TOOL_PATH, big)
    assert _too_large(status, answer) and calls == [] and read == 2
    # Within the cap: the route gets it whole.
    body = [b'{"tool": ', b'"python"}']
    status, _, calls, _ = _call(PARTIAL_TOOL_PATH, body, length=len(b"".join(body)))
    assert status == 200 and calls == [(PARTIAL_TOOL_PATH, b"".join(body))]
    assert _call(INFO_PATH, [b"y" * (CAP + 1)])[0] == 413


def test_a_carried_body_over_the_cap_is_refused_once_it_names_our_field():
    inner = {"tool": "python", "generate": {"text": "z" * 3000}}
    body = json.dumps(carried(PARTIAL_TOOL_PATH, inner, "p", "m")).encode()
    assert body.startswith(b'{"conveyor":')  # the field comes first
    chunks = [body[i : i + 500] for i in range(0, len(body), 500)]
    status, answer, calls, read = _call(CARRIER_PATH, chunks, length=len(body))
    assert _too_large(status, answer) and calls == [] and read == 1
    status, answer, calls, read = _call(CARRIER_PATH, chunks)  # no length: counted
    assert _too_large(status, answer) and calls == [] and read == 3
    # The field last (another client's order), the key cut between two chunks: seen.
    late = json.dumps({"model": "m", "prompt": "q" * 3000, "conveyor": {"route": INFO_PATH}})
    cut = late.encode().index(b'"conveyor"') + 4
    status, answer, calls, _ = _call(CARRIER_PATH, [late.encode()[:cut], late.encode()[cut:]])
    assert _too_large(status, answer) and calls == []
    # Spaced out past what the search keeps: found when the whole body is parsed.
    spaced = b'{"prompt": "' + b"q" * 2000 + b'", "conveyor"' + b" " * 200 + b': {"route": "x"}}'
    status, answer, calls, _ = _call(CARRIER_PATH, [spaced[:2010], spaced[2010:]])
    assert _too_large(status, answer) and calls == []


def test_an_ordinary_completion_of_any_size_is_not_ours_to_cap():
    for prompt in ("q" * 5000, 'say "conveyor" ' * 400):  # the word in a string is no key
        body = json.dumps({"model": "m", "prompt": prompt}).encode()
        status, answer, calls, _ = _call(CARRIER_PATH, [body[:3000], body[3000:]], len(body))
        assert (status, answer, calls) == (200, b"ok", [(CARRIER_PATH, body)])
    small = json.dumps(carried(INFO_PATH, None, "hi", "m")).encode()
    assert _call(CARRIER_PATH, [small])[2] == [(INFO_PATH, b"")]  # within the cap: carried
