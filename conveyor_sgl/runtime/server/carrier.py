"""Server mode through sglang-router: unwrap a request carried on ``/v1/completions``.

The router forwards SGLang's own routes only, so a client behind it sends ``POST
/v1/completions`` with a ``conveyor`` field (``protocol.carried``); the router keeps unknown
fields of completion requests and passes the response stream through byte for byte. This
ASGI middleware sees such a request before SGLang's OpenAI handler does and replays its
inner body to the inner route, as if the client had called that route itself: the same
admission, policy and stream. Every other request passes through untouched (a completion
body is only parsed when it names the field at all).

SGLang adds its ``--api-key`` middleware after this one, so that one wraps this one: the key
is checked on the outer ``/v1/completions`` request, as on any other.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from conveyor_sgl.runtime.server.protocol import (
    CARRIED_ROUTES,
    CARRIER_KEY,
    CARRIER_PATH,
    INFO_PATH,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_MARK = f'"{CARRIER_KEY}"'.encode()


class CarrierMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_carrier(scope):
            await self.app(scope, receive, send)
            return
        body, disconnected = await _read_body(receive)
        inner = _unwrap(body) if not disconnected else None
        if inner is None:  # an ordinary completion (or a client already gone): SGLang's
            await self.app(scope, _replay(body, receive), send)
            return
        route, inner_body = inner
        if route not in CARRIED_ROUTES:
            await _reply_error(send, 400, f"{CARRIER_KEY}.route must be one of {CARRIED_ROUTES}")
            return
        method = "GET" if route == INFO_PATH else "POST"
        payload = json.dumps(inner_body).encode() if inner_body is not None else b""
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(payload)).encode()))
        inner_scope = {
            **scope,
            "path": route,
            "raw_path": route.encode(),
            "method": method,
            "headers": headers,
        }
        await self.app(inner_scope, _replay(payload, receive), send)


def _is_carrier(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == CARRIER_PATH


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _unwrap(body: bytes) -> tuple[Any, Any] | None:
    """(route, inner body) if this completion carries a request of ours, else None."""
    if _MARK not in body:
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        return None  # SGLang's handler answers a malformed body as it always does
    carried = obj.get(CARRIER_KEY) if isinstance(obj, dict) else None
    if not isinstance(carried, dict):
        return None
    return carried.get("route"), carried.get("body")


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then the real channel: a disconnect still reaches the route."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _reply_error(send: Send, status: int, message: str) -> None:
    payload = json.dumps({"error": {"message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
