"""Prefix holds inside SGLang's scheduler: the hooks that take, keep and give them up.

Registered by the plugin in every SGLang process (on by default; ``--tool-prefix-hold-s 0``
turns them off); only the scheduler ever calls the hooked code:

- AROUND the tree cache's ``on_release`` (the last step of ``release_kv_cache``, right after
  the finished request's own lock is dropped): a request whose kv_hints carry our action
  (``protocol.PrefixHold``) gives up the holds it continues and takes its own;
- AROUND the tree cache's ``reset`` (``/flush_cache``): every hold is released first, while
  its nodes are still in the tree;
- AROUND ``Scheduler.get_next_batch_to_run`` (every loop): holds past their deadline go;
  running requests short of room to decode take the newest hold; requests that wait while
  nothing runs get the held memory they need, newest holds first (``_make_way``: the
  scheduler never stalls on a hold), and with the ``start-first`` policy (the default) so
  does the first in line whenever it cannot start for want of room;
- AROUND ``Scheduler.abort_request``: an abort with rid ``RELEASE_RID_PREFIX + key`` (sent by
  ``release_holds`` from the HTTP process: the release route, a server-mode client gone; no
  request has such a rid) releases that hold; an abort of every request releases every hold;
- AFTER the scheduler's internal state (``/server_info``): the holds' state under
  ``PREFIX_HOLD_STATE_KEY``;
- with ``--enable-metrics``, gauges and counters beside SGLang's eviction metrics.
"""

from __future__ import annotations

import logging
from typing import Any

from conveyor_sgl.runtime.server.prefix_holds import (
    REASONS,
    START_FIRST,
    HoldSettings,
    PrefixHolds,
)
from conveyor_sgl.runtime.server.protocol import PREFIX_HOLD_STATE_KEY, prefix_hold_of
from conveyor_sgl.runtime.server.sglang_hooks import is_registered

logger = logging.getLogger(__name__)

ON_RELEASE = (
    "sglang.srt.mem_cache.unified_radix_cache.UnifiedRadixCache.on_release",
    "sglang.srt.mem_cache.radix_cache.RadixCache.on_release",
)
RESET = (
    "sglang.srt.mem_cache.unified_radix_cache.UnifiedRadixCache.reset",
    "sglang.srt.mem_cache.radix_cache.RadixCache.reset",
)
NEXT_BATCH = "sglang.srt.managers.scheduler.Scheduler.get_next_batch_to_run"
ABORT = "sglang.srt.managers.scheduler.Scheduler.abort_request"
INTERNAL_STATE = (
    "sglang.srt.managers.scheduler_components.internal_state."
    "SchedulerInternalStateController.get_internal_state"
)
RELEASE_RID_PREFIX = "conveyor-prefix-hold-release:"
HOLDS_ATTR = "_conveyor_prefix_holds"  # on the scheduler and on its tree cache
METRICS_ATTR = "_conveyor_prefix_hold_metrics"  # likewise, with --enable-metrics
CLIP_NEW_TOKENS = 4096  # SGLang's default clip of max_new_tokens when it reserves room
# Room each running request needs to go on decoding before holds must make way.
DECODE_RESERVE_TOKENS = 16


def registered() -> bool:
    return is_registered(NEXT_BATCH, _next_batch)


def register(settings: HoldSettings) -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    if not settings.enabled:
        return
    for target in ON_RELEASE:
        HookRegistry.register(target, _on_release, HookType.AROUND)
    for target in RESET:
        HookRegistry.register(target, _before_reset, HookType.AROUND)
    HookRegistry.register(NEXT_BATCH, _next_batch, HookType.AROUND)
    HookRegistry.register(ABORT, _abort, HookType.AROUND)
    HookRegistry.register(INTERNAL_STATE, _internal_state, HookType.AROUND)


def holds_of(scheduler: Any) -> PrefixHolds:
    """The scheduler's table, made on its first loop (before any request finished)."""
    holds = getattr(scheduler, HOLDS_ATTR, None)
    if holds is None:
        settings = HoldSettings.from_env()
        holds = PrefixHolds(scheduler.tree_cache, scheduler.max_total_num_tokens, settings)
        reporter = getattr(scheduler, "metrics_reporter", None)
        metrics = HoldMetrics() if getattr(reporter, "enable_metrics", False) else None
        for owner in (scheduler, scheduler.tree_cache):
            setattr(owner, HOLDS_ATTR, holds)
            setattr(owner, METRICS_ATTR, metrics)
        logger.info("conveyor_sgl prefix holds: %s", holds.state())
    return holds


def _on_release(original: Any, cache: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
    result = original(cache, req, *args, **kwargs)
    holds: PrefixHolds | None = getattr(cache, HOLDS_ATTR, None)
    hint = prefix_hold_of(getattr(req, "kv_hints", None)) if holds is not None else None
    # Only a finished request: a retracted one is released too, and comes back later.
    if holds is None or hint is None or not req.finished():
        return result
    for key in hint.release:
        holds.release(key, "continued")
    node = getattr(req, "last_node", None)
    # An aborted request (a client gone, a tool that stopped it) keeps nothing.
    aborted = type(req.finished_reason).__name__ == "FINISH_ABORT"
    if hint.hold is not None and kwargs.get("checkpointed") and node is not None and not aborted:
        holds.take(hint.hold, node, int(req.kv.cache_protected_len), hint.hold_s)
    _sync(cache, holds)
    return result


def _before_reset(original: Any, cache: Any, *args: Any, **kwargs: Any) -> Any:
    holds: PrefixHolds | None = getattr(cache, HOLDS_ATTR, None)
    if holds:
        holds.release_all("released")  # unlocked while their nodes are still in the tree
        _sync(cache, holds)
    return original(cache, *args, **kwargs)


def _next_batch(original: Any, scheduler: Any, *args: Any, **kwargs: Any) -> Any:
    holds = holds_of(scheduler)
    if holds:
        holds.release_expired()
        if _short_of_decode_room(scheduler):
            holds.give_up_newest()
    plan = original(scheduler, *args, **kwargs)
    if holds and scheduler.waiting_queue:
        _make_way(scheduler, plan, holds)
    _sync(scheduler, holds)
    return plan


def _make_way(scheduler: Any, plan: Any, holds: PrefixHolds) -> None:
    """Requests wait. With nothing running and nothing started (either policy), the holds
    make way for all that stock admission would start with the held memory evictable
    (together, not one by one), at least one per loop. With ``start-first``, also when the
    first in line cannot start for want of room: a hold never delays a start."""
    idle = plan.batch_to_run is None and plan.running_batch.is_empty()
    if not idle and (holds.settings.policy != START_FIRST or _prefilling(plan.batch_to_run)):
        return  # requests are starting, or wait for running ones (hold-first)
    room = _admission_room(scheduler, plan)
    if idle:
        short = _kept_out(scheduler, room, room + holds.held_tokens) - room
    else:
        short = _needs(scheduler.waiting_queue[0]) - room
        if short <= 0:
            return
    holds.give_up_newest_for(short, keep=_continued(scheduler.waiting_queue))


def _prefilling(batch: Any) -> bool:
    return batch is not None and batch.forward_mode.is_extend()


def _kept_out(scheduler: Any, room: int, room_without_holds: int) -> int:
    """Room the waiting requests would take, in line, up to what stock admission had:
    ``room_without_holds``, and one prefill batch's worth of tokens."""
    taken = prompt = 0
    for req in scheduler.waiting_queue:
        needs = _needs(req)
        prompt += len(req.origin_input_ids) - int(req.prefix_len)
        if taken + needs > room_without_holds or prompt > scheduler.max_prefill_tokens:
            break
        taken += needs
    return max(taken, room)


def _admission_room(scheduler: Any, plan: Any) -> int:
    """What admission counts as room: free slots and what the tree can evict, less what
    it keeps for the running requests' remaining tokens (as SGLang's PrefillAdder does)."""
    ratio = scheduler.new_token_ratio_tracker.current
    reserved = sum(
        min(r.sampling_params.max_new_tokens - len(r.output_ids), CLIP_NEW_TOKENS)
        * (1.0 if r.sampling_params.ignore_eos else ratio)
        for r in plan.running_batch.reqs
    )
    return _free_tokens(scheduler) - int(reserved)


def _needs(req: Any) -> int:
    """Room a waiting request needs to start, as admission counts it: its prompt past the
    cached prefix the scheduler matched for it, and its new tokens (clipped as SGLang does)."""
    new_tokens = getattr(req.sampling_params, "max_new_tokens", None) or DECODE_RESERVE_TOKENS
    return len(req.origin_input_ids) - int(req.prefix_len) + min(new_tokens, CLIP_NEW_TOKENS)


def _continued(waiting: Any) -> set[str]:
    """The holds that waiting requests continue: about to be used, kept to the last."""
    keys: set[str] = set()
    for req in waiting:
        hint = prefix_hold_of(getattr(req, "kv_hints", None))
        if hint is not None:
            keys.update(hint.release)
    return keys


def _short_of_decode_room(scheduler: Any) -> bool:
    running = scheduler.running_batch
    if running is None or running.is_empty():
        return False
    return bool(_free_tokens(scheduler) < running.batch_size() * DECODE_RESERVE_TOKENS)


def _free_tokens(scheduler: Any) -> int:
    """Room for new KV now: free slots and what the tree can evict."""
    free = scheduler.token_to_kv_pool_allocator.available_size()
    return int(free + scheduler.tree_cache.evictable_size())


def _abort(original: Any, scheduler: Any, recv_req: Any) -> Any:
    holds = holds_of(scheduler)
    rid = recv_req.rid or ""
    if isinstance(rid, str) and rid.startswith(RELEASE_RID_PREFIX):
        holds.release(rid[len(RELEASE_RID_PREFIX) :], "released")
        _sync(scheduler, holds)
        return None  # no request has this rid: nothing else to abort
    if recv_req.abort_all:
        holds.release_all("released")
        _sync(scheduler, holds)
    return original(scheduler, recv_req)


def _internal_state(original: Any, controller: Any, *args: Any, **kwargs: Any) -> Any:
    out = original(controller, *args, **kwargs)
    holds = getattr(controller.scheduler, HOLDS_ATTR, None)
    if holds is not None and isinstance(out.internal_state, dict):
        out.internal_state[PREFIX_HOLD_STATE_KEY] = holds.state()
    return out


def release_holds(tokenizer_manager: Any, keys: list[str]) -> None:
    """From the HTTP process: give these holds up now (an abort no request answers to)."""
    from sglang.srt.managers.io_struct import AbortReq

    for key in keys:
        tokenizer_manager._dispatch_to_scheduler(AbortReq(rid=RELEASE_RID_PREFIX + key))


class HoldMetrics:
    """``conveyor_sgl:prefix_*`` in SGLang's multiprocess registry (scheduler process)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge

        prefix = "conveyor_sgl:prefix_"
        self.holds = Gauge(prefix + "holds", "Prefix holds now", multiprocess_mode="mostrecent")
        self.tokens = Gauge(
            prefix + "held_tokens", "Tokens kept by holds now", multiprocess_mode="mostrecent"
        )
        taken = Counter(prefix + "holds_taken", "Prefix holds taken")
        refused = Counter(prefix + "holds_refused", "Holds not taken: over the budget")
        released = Counter(prefix + "holds_released", "Holds given up", ["reason"])
        self.counters = {"taken": taken, "refused": refused}
        self.counters |= {reason: released.labels(reason=reason) for reason in REASONS}
        self.seen = dict.fromkeys(self.counters, 0)
        self.version = 0

    def sync(self, holds: PrefixHolds) -> None:
        if holds.version == self.version:
            return
        self.version = holds.version
        self.holds.set(len(holds))
        self.tokens.set(holds.held_tokens)
        now = {"taken": holds.taken, "refused": holds.refused, **holds.released}
        for name, value in now.items():
            if value > self.seen[name]:
                self.counters[name].inc(value - self.seen[name])
        self.seen = now


def _sync(owner: Any, holds: PrefixHolds) -> None:
    metrics: HoldMetrics | None = getattr(owner, METRICS_ATTR, None)
    if metrics is not None:
        metrics.sync(holds)
