"""The SGLang plugin behind ``--tool-partial-execution`` (entry point ``sglang.srt.plugins``).

SGLang runs every plugin of that group early in each of its processes (launcher/HTTP,
scheduler, detokenizer). This one is inert unless the server was launched with the flag:
``launch_server`` sets ``ENABLE_ENV``, which the spawned SGLang processes inherit. With
the flag, and only in the process that will serve HTTP (the one that is not a
multiprocessing child), it registers two hooks with SGLang's ``HookRegistry``:

- BEFORE ``http_server.launch_server``: add the ``/conveyor/*`` routes (``routes``)
  to SGLang's FastAPI app, under the operator's policy the launcher put in ``POLICY_ENV``
  (``policy``), and start the tool worker pool;
- AROUND ``TokenizerManager._wait_one_response`` (the per-request output stream that
  ``/generate`` and our route both read): stamp each output's ``meta_info`` with
  ``SERVER_TIME_KEY``, the moment the HTTP process has the token (``time.monotonic()``),
  so that dispatch latency is measured from the same point in client and server mode.

This module must stay cheap to import: every SGLang process imports it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from conveyor_sgl.runtime.server.protocol import SERVER_TIME_KEY

ENABLE_ENV = "CONVEYOR_SGL_TOOL_PARTIAL_EXECUTION"
HTTP_LAUNCH = "sglang.srt.entrypoints.http_server.launch_server"
OUTPUT_STREAM = "sglang.srt.managers.tokenizer_manager.TokenizerManager._wait_one_response"

_server_mode: Any = None  # the ServerMode of this process, once the routes are added


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(ENABLE_ENV) == "1"


def register() -> None:
    """The entry point SGLang calls in each of its processes."""
    if not enabled() or multiprocessing.parent_process() is not None:
        return
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(HTTP_LAUNCH, _add_routes, HookType.BEFORE)
    HookRegistry.register(OUTPUT_STREAM, _stamp_outputs, HookType.AROUND)


def _add_routes(*args: Any, **kwargs: Any) -> None:
    global _server_mode
    if _server_mode is None:
        from sglang.srt.entrypoints.http_server import app

        from conveyor_sgl.runtime.server.policy import ServerPolicy
        from conveyor_sgl.runtime.server.routes import ServerMode, install_routes

        # The launcher's policy (POLICY_ENV); a broken one stops the launch here, loudly.
        _server_mode = install_routes(app, ServerMode(policy=ServerPolicy.from_env()))
    # A BEFORE hook that returns None leaves launch_server's arguments as they are.


def _stamp_outputs(original: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
    return _stamped(original(*args, **kwargs))


async def _stamped(outputs: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async with aclosing(outputs):  # type: ignore[type-var]
        async for out in outputs:
            meta = out.get("meta_info") if isinstance(out, dict) else None
            if isinstance(meta, dict):
                meta[SERVER_TIME_KEY] = time.monotonic()
            yield out
