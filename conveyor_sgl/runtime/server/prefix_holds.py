"""Prefix holds: a program's tokens stay in the radix cache while its tool runs.

A program decodes a tool call, its request finishes, and the tool runs for seconds; then the
program comes back with the result appended. RadixAttention finds the prefix again only if
nobody needed the memory meanwhile: under pressure plain LRU evicts exactly the prefixes of
programs waiting on tools (each one's re-prefill evicts the next). A hold is one more tree
lock on the node the finished request ended on, taken the moment its own lock is dropped
(nothing can run in between), so the path cannot be evicted until it is given up:

- ``continued``: a request that names the hold in ``release`` finishes (its own lock on the
  same path took over while it ran);
- ``released``: the program ended or failed, or server mode saw its client go
  (``PREFIX_HOLD_RELEASE_PATH``, an abort of every request also releases every hold);
- ``deadline``: ``hold_s`` passed (the request's, at most the server's);
- ``pressure``: requests wait while nothing runs (the newest holds go, as many as what stock
  admission would start needs: the scheduler never stalls on a hold); with the
  ``start-first`` policy (the default) also whenever the first request in line cannot start
  for want of room (a hold never delays a start; ``hold-first`` lets new requests wait for
  running ones to end, keeping more prefixes where a re-prefill costs more than the wait);
  running requests short of room to decode take one too. The newest goes first: its tool
  has the most time left to run; a hold a waiting request continues goes last;
- ``replaced``: the same key held again.

What is held is bounded: at most ``share`` of the KV pool; a hold that would pass it is not
taken (``refused``). The table lives in the scheduler process (``prefix_hold_hooks``) and is
plain Python over two calls of the tree cache, ``lock(node)`` and ``unlock(lock)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

HOLD_S_ENV = "CONVEYOR_SGL_PREFIX_HOLD_S"  # the longest hold, seconds; 0 turns holds off
SHARE_ENV = "CONVEYOR_SGL_PREFIX_HOLD_SHARE"  # the share of the KV pool holds may take
POLICY_ENV = "CONVEYOR_SGL_PREFIX_HOLD_POLICY"  # what gives way under pressure
START_FIRST = "start-first"  # a hold never delays a request's start (the default)
HOLD_FIRST = "hold-first"  # holds give way only when nothing could run otherwise
POLICIES = (START_FIRST, HOLD_FIRST)
DEFAULT_HOLD_S = 60.0
DEFAULT_SHARE = 0.9
REASONS = ("continued", "released", "deadline", "pressure", "replaced")


class HoldSettingsError(ValueError):
    """A prefix-hold setting out of range (the flag or environment variable is named)."""


@dataclass(frozen=True)
class HoldSettings:
    hold_s: float = DEFAULT_HOLD_S
    share: float = DEFAULT_SHARE
    policy: str = START_FIRST

    @property
    def enabled(self) -> bool:
        return self.hold_s > 0 and self.share > 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> HoldSettings:
        hold_s = _number(environ, HOLD_S_ENV, DEFAULT_HOLD_S)
        share = _number(environ, SHARE_ENV, DEFAULT_SHARE)
        if hold_s < 0:
            raise HoldSettingsError(f"{HOLD_S_ENV}={hold_s:g}: must be >= 0 (0 turns holds off)")
        if not 0 <= share <= 1:
            raise HoldSettingsError(f"{SHARE_ENV}={share:g}: must be between 0 and 1")
        policy = environ.get(POLICY_ENV, "").strip() or START_FIRST
        if policy not in POLICIES:
            raise HoldSettingsError(f"{POLICY_ENV}={policy!r}: one of {', '.join(POLICIES)}")
        return cls(hold_s=hold_s, share=share, policy=policy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "hold_s": self.hold_s,
            "share": self.share,
            "policy": self.policy,
        }


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise HoldSettingsError(f"{name}={value!r}: not a number") from None


class TreeLocks(Protocol):
    """The two calls of SGLang's tree cache a hold needs."""

    def lock(self, node: Any) -> Any: ...

    def unlock(self, lock: Any) -> None: ...


@dataclass
class Hold:
    key: str
    lock: Any
    tokens: int
    deadline: float


class PrefixHolds:
    """The holds of one scheduler (one tree cache), newest last."""

    def __init__(
        self,
        cache: TreeLocks,
        pool_tokens: int,
        settings: HoldSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.budget = int(pool_tokens * settings.share)
        self.settings = settings
        self.clock = clock
        self.holds: dict[str, Hold] = {}
        self.taken = 0
        self.refused = 0
        self.released = dict.fromkeys(REASONS, 0)
        self.version = 0  # counts changes: a reader (metrics) skips a table that has none

    def __len__(self) -> int:
        return len(self.holds)

    @property
    def held_tokens(self) -> int:
        return sum(hold.tokens for hold in self.holds.values())

    def take(self, key: str, node: Any, tokens: int, hold_s: float | None) -> bool:
        """Hold the path to ``node`` (``tokens`` long) under ``key``; False if the budget
        has no room for it."""
        self.release(key, "replaced")
        self.version += 1
        if self.held_tokens + tokens > self.budget:
            self.refused += 1
            return False
        limit = self.settings.hold_s if hold_s is None else min(hold_s, self.settings.hold_s)
        self.holds[key] = Hold(key, self.cache.lock(node), tokens, self.clock() + limit)
        self.taken += 1
        return True

    def release(self, key: str, reason: str) -> bool:
        hold = self.holds.pop(key, None)
        if hold is None:
            return False
        self.cache.unlock(hold.lock)
        self.released[reason] += 1
        self.version += 1
        return True

    def release_expired(self) -> None:
        now = self.clock()
        for key in [k for k, hold in self.holds.items() if hold.deadline <= now]:
            self.release(key, "deadline")

    def give_up_newest(self) -> bool:
        """Under pressure: give up the hold taken last; False if there is none."""
        if not self.holds:
            return False
        return self.release(next(reversed(self.holds)), "pressure")

    def give_up_newest_for(self, tokens: int, keep: Collection[str] = ()) -> None:
        """Under pressure: give up holds, newest first and those in ``keep`` last, until
        ``tokens`` more are free (or none is left); at least one."""
        order = [k for k in reversed(self.holds) if k not in keep]
        order += [k for k in reversed(self.holds) if k in keep]
        freed = 0
        for key in order:
            if freed and freed >= tokens:
                break
            freed += self.holds[key].tokens
            self.release(key, "pressure")

    def release_all(self, reason: str) -> None:
        for key in list(self.holds):
            self.release(key, reason)

    def state(self) -> dict[str, Any]:
        return {
            **self.settings.to_dict(),
            "holds": len(self.holds),
            "held_tokens": self.held_tokens,
            "budget_tokens": self.budget,
            "taken": self.taken,
            "refused": self.refused,
            "released": dict(self.released),
        }
