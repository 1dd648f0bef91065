"""Registering our hooks in SGLang's plugin registry (``HookRegistry``) once per process.

Several entry points may ask for the same hook (the plugin at load, the server-mode flag
once parsed, a second server started in one process): a hook registered twice would run
twice, so each registration first looks for itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

HookKind = Literal["BEFORE", "AFTER", "AROUND", "REPLACE"]


def is_registered(target: str, hook: Callable[..., Any]) -> bool:
    """Whether ``hook`` (that very function) is registered on ``target``."""
    from sglang.srt.plugins.hook_registry import HookRegistry

    return any(h is hook for _, h, _ in HookRegistry._hooks.get(target, []))


def register_once(target: str, hook: Callable[..., Any], kind: HookKind) -> None:
    """Register ``hook`` on ``target`` unless it already is."""
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    if not is_registered(target, hook):
        HookRegistry.register(target, hook, HookType[kind])
