"""How many tool sessions one client holds at once: at most the operator's
``max_sessions_per_client`` (``--tool-max-sessions-per-client``); one more is a 429.

A client is its API key (``Authorization: Bearer KEY``), else its peer address. Keys are
kept as a digest, never as sent. A request takes a ``Slot`` before anything is admitted,
imported or started, and gives it back when its session ends in any way: a refusal after
the slot was taken, the result, an error, the client going away, or the session's wall
time cap (``ServerToolRun``); ``Slot.release`` is idempotent, so every one of those paths may
call it.

What identifies a client is only as good as what the server sees: without ``--api-key``
any request may name any key, so the cap is fairness between honest clients, while the
pool's ``max_workers`` bounds all of them together; with SGLang's single ``--api-key`` every
client that sends it is one client; behind a proxy or sglang-router that sends no key,
every client of the proxy shares its address.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

from conveyor_sgl.runtime.server.admission import PolicyError

_BEARER = "bearer "


class TooManySessions(PolicyError):
    """A client that already holds its share of sessions (429)."""

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"policy: this client already holds {cap} tool session{'s' if cap != 1 else ''}, "
            "the most one client may hold at once (--tool-max-sessions-per-client); try "
            "again when one of them has ended",
            429,
            "client_sessions",
        )


def client_of(headers: Mapping[str, str] | None, peer: str | None) -> str:
    """The client a request counts for: ``key:<digest>`` or ``addr:<peer address>``."""
    auth = (headers or {}).get("authorization") or ""
    if auth[: len(_BEARER)].lower() == _BEARER and auth[len(_BEARER) :].strip():
        token = auth[len(_BEARER) :].strip()
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"addr:{peer or 'unknown'}"


def client_of_request(request: Any) -> str:
    """``client_of`` for a Starlette request (or anything with ``headers`` and ``client``)."""
    peer = getattr(request, "client", None)
    return client_of(getattr(request, "headers", None), getattr(peer, "host", None))


class Slot:
    """One session's place in its client's count; ``release`` gives it back once."""

    def __init__(self, owner: ClientSessions, client: str) -> None:
        self._owner = owner
        self.client = client
        self._released = False

    def release(self) -> None:
        self._owner._give_back(self)

    @property
    def released(self) -> bool:
        return self._released


class ClientSessions:
    """Sessions held per client, under one cap; safe from any thread (sessions end on the
    event loop and in the session threads)."""

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"the cap on sessions per client must be >= 1, got {cap}")
        self.cap = cap
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> Slot:
        """A slot for one more session of ``client``, or ``TooManySessions``."""
        with self._lock:
            held = self._held.get(client, 0)
            if held >= self.cap:
                raise TooManySessions(self.cap)
            self._held[client] = held + 1
        return Slot(self, client)

    def held(self, client: str) -> int:
        with self._lock:
            return self._held.get(client, 0)

    def _give_back(self, slot: Slot) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            left = self._held.get(slot.client, 0) - 1
            if left > 0:
                self._held[slot.client] = left
            else:
                self._held.pop(slot.client, None)  # no client is remembered for nothing
