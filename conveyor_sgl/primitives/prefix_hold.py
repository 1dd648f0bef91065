"""A program's prefix holds, as its requests ask for them (both modes).

A generation that feeds a tool asks the server to keep its tokens cached under a fresh key
while the tool runs (``hold``); the program's next generation names the keys it continues
(``release``: given up when it finishes, its own lock on the same path having taken over);
a program that ends or fails with keys still open gives them up
(``PREFIX_HOLD_RELEASE_PATH``). The ask rides on ``/generate``'s ``kv_hints``, which a
server without conveyor_sgl ignores. ``CONVEYOR_SGL_PREFIX_HOLD_S=0`` in the program's
environment stops asking (the server has its own switch, ``--tool-prefix-hold-s 0``).

Each generation after a tool reports whether it found its program's prefix in the cache:
``meta_info["prefix_reuse"]`` (``reused``: its cached tokens cover at least the prompt of
the tool call before it).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from conveyor_sgl.primitives.endpoint import Endpoint, EndpointError
from conveyor_sgl.runtime.server.protocol import (
    PREFIX_HOLD_RELEASE_PATH,
    PrefixHold,
    prefix_hold_hints,
)

HOLD_S_ENV = "CONVEYOR_SGL_PREFIX_HOLD_S"  # the same variable the server reads
_OPEN_ATTR = "_conveyor_open_holds"  # keys this program's next generation continues
_PREFIX_ATTR = "_conveyor_tool_prompt_tokens"  # the last tool call's prompt, in tokens


def enabled() -> bool:
    return os.environ.get(HOLD_S_ENV, "").strip() not in ("0", "0.0")


def ask(s: Any, payload: dict[str, Any], *, hold: bool) -> bool:
    """Add the hold hints to this generation's ``payload``: hold its prefix if it feeds a
    tool, and continue (release) the holds still open; whether it continues any."""
    open_keys: list[str] = getattr(s, _OPEN_ATTR, [])
    key = uuid.uuid4().hex if hold and enabled() else None
    if key is None and not open_keys:
        return False
    payload["kv_hints"] = prefix_hold_hints(PrefixHold(hold=key, release=list(open_keys)))
    setattr(s, _OPEN_ATTR, [key] if key else [])
    return bool(open_keys)


def note_tool_call(s: Any, meta_info: dict[str, Any]) -> None:
    """The tool call's generation ended: its prompt is the prefix the next one should find."""
    prompt_tokens = meta_info.get("prompt_tokens")
    if isinstance(prompt_tokens, int):
        setattr(s, _PREFIX_ATTR, prompt_tokens)


def report_reuse(s: Any, meta_info: dict[str, Any], held: bool) -> None:
    """``meta_info["prefix_reuse"]`` of a generation after a tool call."""
    prefix = getattr(s, _PREFIX_ATTR, None)
    cached = meta_info.get("cached_tokens")
    if not isinstance(prefix, int) or not isinstance(cached, int):
        return
    meta_info["prefix_reuse"] = {
        "held": held,
        "prefix_tokens": prefix,
        "cached_tokens": cached,
        "reused": cached >= prefix,
    }


def release_open(s: Any) -> None:
    """The program is over: give up the holds no generation continued (best effort: a
    server without the route, or gone, keeps them until their deadline)."""
    open_keys: list[str] = getattr(s, _OPEN_ATTR, [])
    if not open_keys:
        return
    setattr(s, _OPEN_ATTR, [])
    try:
        Endpoint.of_backend(s.backend).post(PREFIX_HOLD_RELEASE_PATH, {"keys": open_keys})
    except (EndpointError, OSError, ValueError):
        pass  # the deadline gives them up
