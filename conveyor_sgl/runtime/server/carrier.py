"""Server mode through sglang-router: unwrap a request carried on ``/v1/completions``; and
the operator's cap on the size of the bodies of our requests, direct or carried.

The router forwards SGLang's own routes only, so a client behind it sends ``POST
/v1/completions`` with a ``conveyor`` field (``protocol.carried``); the router keeps unknown
fields of completion requests and passes the response stream through byte for byte. This
ASGI middleware sees such a request before SGLang's OpenAI handler does and replays its
inner body to the inner route, as if the client had called that route itself: the same
admission, policy and stream. Every other request passes through untouched (a completion
body is only parsed when it names the field at all).

The body cap (``max_body_bytes``, ``--tool-max-body-bytes``) is a 413 before the body is
parsed or read in full: on ``/conveyor/*`` a ``content-length`` over the cap is refused
before anything is read, and a body without one is counted as it arrives (the cap plus one
chunk at most is held). A completion is only ours once it names the ``conveyor`` field, which
may come anywhere in its JSON: its chunks are searched for the key as they arrive, and a
body over the cap that names it is refused as soon as both are known (at once where the key
comes first, as ``protocol.carried`` writes it); an ordinary completion, whatever its size,
reaches SGLang's handler as before.

SGLang adds its ``--api-key`` middleware after this one, so that one wraps this one: the key
is checked on the outer ``/v1/completions`` request, as on any other, and before any cap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from conveyor_sgl.runtime.server.metrics import record_refusal
from conveyor_sgl.runtime.server.policy import DEFAULT_MAX_BODY_BYTES
from conveyor_sgl.runtime.server.protocol import (
    CARRIED_ROUTES,
    CARRIER_KEY,
    CARRIER_PATH,
    INFO_PATH,
)

OUR_PREFIX = "/conveyor/"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_MARK = f'"{CARRIER_KEY}"'.encode()
# The field as a key: in valid JSON a '"' inside a string is escaped, so this is a key.
_KEY = re.compile(rb'"' + CARRIER_KEY.encode() + rb'"\s*:')
_KEY_TAIL = 64  # the last bytes read, kept to find a key cut between two chunks


class BodyTooLarge(Exception):
    """Raised inside the middleware only; answered with a 413."""


class CarrierMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(OUR_PREFIX):
            await self._ours(scope, receive, send)
        elif _is_carrier(scope):
            await self._completion(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _ours(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A direct request to one of our routes: its body within the cap, then the route."""
        cap = self.max_body_bytes
        try:
            if (_content_length(scope) or 0) > cap:
                raise BodyTooLarge
            body, disconnected = await read_body(receive, cap)
        except BodyTooLarge:
            await _reply_too_large(send, cap)
            return
        if not disconnected:  # else nobody is left to answer
            await self.app(scope, _replay(body, receive), send)

    async def _completion(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self.max_body_bytes
        try:
            body, disconnected = await _read_completion(receive, cap, _content_length(scope))
        except BodyTooLarge:
            await _reply_too_large(send, cap)
            return
        inner = _unwrap(body) if not disconnected else None
        if inner is None:  # an ordinary completion (or a client already gone): SGLang's
            await self.app(scope, _replay(body, receive), send)
            return
        if len(body) > cap:  # ours, though the key was not seen while reading (spaced out)
            await _reply_too_large(send, cap)
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


def _content_length(scope: Scope) -> int | None:
    """The declared body size, if one (the HTTP server has checked that it is a number)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(receive: Receive, cap: int) -> tuple[bytes, bool]:
    """(the body, whether the client went away); ``BodyTooLarge`` as soon as it passes
    ``cap``, with the rest unread."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


async def _read_completion(receive: Receive, cap: int, declared: int | None) -> tuple[bytes, bool]:
    """A completion's body, read in full unless it names our key and is (or says it will
    be) over ``cap``: then ``BodyTooLarge`` at once, with the rest unread."""
    chunks: list[bytes] = []
    size, tail, ours = 0, b"", False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not ours:
            window = tail + chunk
            ours = _KEY.search(window) is not None
            tail = window[-_KEY_TAIL:]
        if ours and max(size, declared or 0) > cap:
            raise BodyTooLarge
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


async def _reply_too_large(send: Send, cap: int) -> None:
    record_refusal("body_size")
    message = (
        f"policy: the request body is larger than this server's cap of {cap} bytes "
        "(--tool-max-body-bytes)"
    )
    # The rest of the body stays unread: this connection cannot carry another request.
    await _reply_error(send, 413, message, close=True)


async def _reply_error(send: Send, status: int, message: str, close: bool = False) -> None:
    payload = json.dumps({"error": {"message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
