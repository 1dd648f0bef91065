"""``POST PREFIX_HOLD_RELEASE_PATH``: a program gives up the prefix holds it will not continue.

Added to SGLang's app by the plugin whenever holds are on (server mode or not: a client-mode
program asks for holds on plain ``/generate`` requests), behind SGLang's ``--api-key`` if
one is set. The body is ``{"keys": [...]}``; a key no hold has is no error. A hold is only a
cache hint: releasing another program's (by guessing its random key) costs it a re-prefill.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from conveyor_sgl.runtime.server.carrier import BodyTooLarge, read_body
from conveyor_sgl.runtime.server.prefix_hold_hooks import release_holds
from conveyor_sgl.runtime.server.protocol import PREFIX_HOLD_RELEASE_PATH, WireError, decode_release

MAX_RELEASE_BODY_BYTES = 4096


def add_release_route(app: Any) -> bool:
    """``POST PREFIX_HOLD_RELEASE_PATH`` on SGLang's app (behind its ``--api-key``, if any):
    a program that ended or failed without continuing its holds gives them up."""
    from sglang.srt.entrypoints.http_server import get_global_state  # the HTTP process's
    from sglang.srt.utils.json_response import orjson_response

    async def release(request: Request) -> Any:
        try:
            body, _ = await read_body(request.receive, MAX_RELEASE_BODY_BYTES)
        except BodyTooLarge:
            message = f"{PREFIX_HOLD_RELEASE_PATH}: a body over {MAX_RELEASE_BODY_BYTES} bytes"
            return orjson_response({"error": {"message": message}}, status_code=413)
        try:
            keys = decode_release(body).keys
        except WireError as e:
            message = f"bad {PREFIX_HOLD_RELEASE_PATH} request: {e}"
            return orjson_response({"error": {"message": message}}, status_code=400)
        release_holds(get_global_state().tokenizer_manager, keys)
        return {"released": keys}

    app.add_api_route(PREFIX_HOLD_RELEASE_PATH, release, methods=["POST"])
    return True
