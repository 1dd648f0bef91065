"""The SGLang plugin behind ``--tool-partial-execution`` (entry point ``sglang.srt.plugins``).

SGLang runs every plugin of that group early in each of its processes (the CLI/HTTP process,
scheduler, detokenizer, and the child that ``sgl.Runtime`` spawns). In every process this
one registers the CLI hooks of ``cli_flags`` (so ``sglang serve --tool-partial-execution``
parses) and, unless ``--tool-prefix-hold-s 0``, the prefix holds' scheduler hooks
(``prefix_hold_hooks``: both modes keep a program's prefix cached while its tool runs) and
their release route; where our launch plans asked for it (CPU), ``fork_start``'s hooks. The
rest is inert unless server mode is on: ``ENABLE_ENV`` is "1" in the
environment (set by our launcher, by ``cli_flags`` from SGLang's parsed flags, or by the
user, e.g. around ``sgl.Runtime``; SGLang's children inherit it). Then ``activate()``
registers two hooks with SGLang's ``HookRegistry``:

- BEFORE ``http_server._setup_and_run_http_server``: add the ``/conveyor/*`` routes
  (``routes``) to SGLang's FastAPI app, under the operator's policy in ``POLICY_ENV``
  (``policy``). SGLang calls it in exactly one process, the one about to serve HTTP,
  after its own ``load_plugins()`` (so the hook is in place whoever started that process:
  a CLI, or ``sgl.Runtime``'s child, where ``launch_server`` is already running by the
  time plugins load); schedulers and detokenizers never call it.
- AROUND ``TokenizerManager._wait_one_response`` (the per-request output stream that
  ``/generate`` and our route both read): stamp each output's ``meta_info`` with
  ``SERVER_TIME_KEY``, the moment the HTTP process has the token (``time.monotonic()``),
  so that dispatch latency is measured from the same point in client and server mode.

This module must stay cheap to import: every SGLang process imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from conveyor_sgl.runtime.server import fork_start
from conveyor_sgl.runtime.server.cli_flags import ENABLE_ENV, register_cli_hooks
from conveyor_sgl.runtime.server.prefix_holds import HoldSettings
from conveyor_sgl.runtime.server.protocol import SERVER_TIME_KEY
from conveyor_sgl.runtime.server.sglang_hooks import register_once

__all__ = ["ENABLE_ENV", "activate", "enabled", "register"]
HTTP_SERVE = "sglang.srt.entrypoints.http_server._setup_and_run_http_server"
OUTPUT_STREAM = "sglang.srt.managers.tokenizer_manager.TokenizerManager._wait_one_response"

_server_mode: Any = None  # the ServerMode of this process, once the routes are added
_release_route = False  # the prefix holds' release route is on this process's app


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(ENABLE_ENV) == "1"


def register() -> None:
    """The entry point SGLang calls in each of its processes (inside its load_plugins)."""
    register_cli_hooks(on_server_mode=activate)
    _register_prefix_holds()
    if fork_start.wanted():
        fork_start.register()
    if enabled():
        activate(apply=False)  # load_plugins applies every registered hook right after


def activate(apply: bool = True) -> None:
    """Register the server-mode hooks, once per process; `apply` patches them in now (for a
    flag parsed after load_plugins had applied the others)."""
    from sglang.srt.plugins.hook_registry import HookRegistry

    _hook_http_serve()
    register_once(OUTPUT_STREAM, _stamp_outputs, "AROUND")
    if apply:
        HookRegistry.apply_hooks()  # skips targets already patched


def _hook_http_serve() -> None:
    """One hook on the HTTP server's start, whoever needs it first (prefix holds at load,
    server mode at load or once its flag is parsed): SGLang patches a target once, so a
    second hook registered after that would never run. It decides when it runs."""
    register_once(HTTP_SERVE, _on_http_serve, "BEFORE")


def _register_prefix_holds() -> None:
    """Prefix holds are on without server mode (client-mode programs ask for them too):
    the scheduler's hooks, and the release route in the process that serves HTTP."""
    from conveyor_sgl.runtime.server import prefix_hold_hooks

    settings = HoldSettings.from_env()
    if settings.enabled and not prefix_hold_hooks.registered():
        prefix_hold_hooks.register(settings)
        _hook_http_serve()


def _on_http_serve(*args: Any, **kwargs: Any) -> None:
    global _server_mode, _release_route
    from sglang.srt.entrypoints.http_server import app

    if not _release_route and HoldSettings.from_env().enabled:
        from conveyor_sgl.runtime.server.prefix_hold_route import add_release_route

        _release_route = add_release_route(app)
    if _server_mode is None and enabled():
        from conveyor_sgl.runtime.server.policy import ServerPolicy
        from conveyor_sgl.runtime.server.routes import ServerMode, install_routes

        # The operator's policy (POLICY_ENV); a broken one stops the launch here, loudly.
        _server_mode = install_routes(app, ServerMode(policy=ServerPolicy.from_env()))
        print(f"conveyor_sgl server mode: /conveyor/ routes on (pid {os.getpid()})", flush=True)
    # A BEFORE hook that returns None leaves SGLang's arguments as they are.


def _stamp_outputs(original: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
    return _stamped(original(*args, **kwargs))


async def _stamped(outputs: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async with aclosing(outputs):  # type: ignore[type-var]
        async for out in outputs:
            meta = out.get("meta_info") if isinstance(out, dict) else None
            if isinstance(meta, dict):
                meta[SERVER_TIME_KEY] = time.monotonic()
            yield out
