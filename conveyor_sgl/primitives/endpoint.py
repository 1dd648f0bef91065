"""A small HTTP client for the SGLang server's ``/generate``, with deadlines and token ids.

The stock ``RuntimeEndpoint`` sends text and yields text; partial tools need the token ids
(to reuse the prefix exactly, see ``token_ledger.py``) and a deadline on every read.

Behind sglang-router the same client works with what the router forwards: it has no
``/tokenize`` (its ``/v1/tokenize`` uses the servers' tokenizer instead), no
``/abort_request`` (closing the stream aborts: the router drops the upstream request), and it
drops ``return_prompt_token_ids``, so a first prompt goes as token ids we tokenized ourselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from sglang.lang.backend.runtime_endpoint import RuntimeEndpoint
from sglang.lang.global_config import global_config
from sglang.lang.ir import SglSamplingParams

from conveyor_sgl.errors import ConveyorError

# Longest silence tolerated between two streamed tokens (queueing included).
READ_TIMEOUT_S = float(os.environ.get("CONVEYOR_SGL_HTTP_TIMEOUT", "300"))
CONNECT_TIMEOUT_S = 10.0
_LOGPROB_FIELDS = (
    "return_logprob",
    "logprob_start_len",
    "top_logprobs_num",
    "return_text_in_logprobs",
)


class EndpointError(ConveyorError, RuntimeError):
    """The server refused or broke a request; the message carries its answer."""


class BackendError(ConveyorError, TypeError):
    """A program with a partial tool run on a backend that is no SGLang server."""


def check_backend(backend: Any) -> None:
    """Raise ``BackendError`` unless ``backend`` is an SGLang server's."""
    if not isinstance(backend, RuntimeEndpoint):
        raise BackendError(
            "partial_tool needs an SGLang server backend (sgl.RuntimeEndpoint), "
            f"got {type(backend).__name__}: run the program with "
            "backend=sgl.RuntimeEndpoint(url), or sgl.set_default_backend(...) first"
        )


@dataclass
class GenerateEvent:
    """One response (or one SSE event): text and ids are cumulative for the request."""

    text: str
    output_ids: list[int]
    meta_info: dict[str, Any]
    prompt_token_ids: list[int] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.meta_info.get("finish_reason") is not None


class Endpoint:
    def __init__(self, base_url: str, api_key: str | None = None, verify: Any = None):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.verify = True if verify is None else verify
        if api_key is not None:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self._router: bool | None = None  # asked once: is this URL sglang-router?
        self._model: str | None = None  # the served model's id (the router's routes need it)

    @classmethod
    def of_backend(cls, backend: Any) -> Endpoint:
        check_backend(backend)
        cached = getattr(backend, "_conveyor_endpoint", None)
        if cached is None:
            cached = cls(backend.base_url, backend.api_key, backend.verify)
            backend._conveyor_endpoint = cached
        return cached

    def generate(self, payload: dict[str, Any]) -> GenerateEvent:
        res = self.post("/generate", {**payload, "stream": False}, stream=False)
        return generate_event(res.json())

    def generate_stream(self, payload: dict[str, Any]) -> Generator[GenerateEvent, None, None]:
        """Yield one event per SSE message; closing the generator drops the connection,
        which makes the server abort the request."""
        res = self.post("/generate", {**payload, "stream": True}, stream=True)
        with res:
            for obj in sse_objects(res):
                yield generate_event(obj)

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        body: dict[str, Any] = {"prompt": text, "add_special_tokens": add_special_tokens}
        if self.behind_router():
            res = self.post("/v1/tokenize", {**body, "model": self.model_id()})
        else:
            res = self.post("/tokenize", body)
        return list(res.json()["tokens"])

    def prompt_of(self, text: str) -> dict[str, Any]:
        """A request's prompt for ``text`` when no ledger covers it: the text; behind a
        router the ids, tokenized as the server would (the router drops the flag that
        would have sent them back)."""
        if self.behind_router():
            return {"input_ids": self.tokenize(text, add_special_tokens=True)}
        return {"text": text}

    def abort(self, rid: str) -> None:
        """Stop a generation now; behind a router the caller's closing of the stream does."""
        if not self.behind_router():
            self.post("/abort_request", {"rid": rid})

    def behind_router(self) -> bool:
        """sglang-router answers ``/get_server_info`` itself, with ``router_manager``."""
        if self._router is None:
            try:
                res = self.session.get(
                    self.base_url + "/get_server_info", timeout=(CONNECT_TIMEOUT_S, 60)
                )
                info = res.json() if res.status_code == 200 else {}
            except (requests.RequestException, ValueError):
                return False  # not remembered: a later call asks again
            self._router = isinstance(info, dict) and bool(info.get("router_manager"))
        return self._router

    def model_id(self) -> str:
        if self._model is None:
            res = self.session.get(self.base_url + "/v1/models", timeout=CONNECT_TIMEOUT_S)
            if res.status_code != 200:
                raise EndpointError(f"GET /v1/models returned {res.status_code}: {res.text[:200]}")
            self._model = str(res.json()["data"][0]["id"])
        return self._model

    def post(self, path: str, body: dict[str, Any], stream: bool = False) -> requests.Response:
        """POST ``body`` to ``path`` of this server (one retry on a dropped connection); an
        ``EndpointError`` unless it answers 200."""
        for attempt in (1, 2):
            try:
                res = self.session.post(
                    self.base_url + path,
                    json=body,
                    stream=stream,
                    timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                )
                break
            except requests.ConnectionError as exc:
                # A pooled keep-alive connection the server had already closed fails before
                # the request is read (RemoteDisconnected): once, on a fresh connection.
                if attempt == 1 and _stale_connection(exc):
                    continue
                raise EndpointError(f"POST {path} to {self.base_url} failed: {exc}") from exc
            except requests.RequestException as exc:
                raise EndpointError(f"POST {path} to {self.base_url} failed: {exc}") from exc
        if res.status_code != 200:
            raise EndpointError(f"POST {path} returned {res.status_code}: {res.text[:500]}")
        return res


def _stale_connection(exc: requests.ConnectionError) -> bool:
    """The server dropped a reused connection without an answer (not: refused, timed out)."""
    text = repr(exc)
    return "RemoteDisconnected" in text or "ConnectionResetError" in text


def sse_objects(res: requests.Response) -> Iterator[dict[str, Any]]:
    """The JSON objects of an SSE response up to ``[DONE]``; an error object raises."""
    for line in res.iter_lines(decode_unicode=False):
        if not line.startswith(b"data:"):
            continue
        body = line[5:].strip()
        if body == b"[DONE]":
            return
        obj = json.loads(body)
        if "error" in obj:
            raise EndpointError(f"server error while streaming: {obj['error']}")
        yield obj


def generate_event(obj: dict[str, Any]) -> GenerateEvent:
    """One ``/generate`` output object as the executor reads it."""
    return GenerateEvent(
        text=obj.get("text", ""),
        output_ids=list(obj.get("output_ids") or []),
        meta_info=dict(obj.get("meta_info") or {}),
        prompt_token_ids=obj.get("prompt_token_ids")
        or (obj.get("meta_info") or {}).get("prompt_token_ids"),
        raw=obj,
    )


def build_payload(
    backend: RuntimeEndpoint, params: SglSamplingParams, prompt: dict[str, Any]
) -> dict[str, Any]:
    """The body stock ``RuntimeEndpoint.generate`` would send, with ``prompt`` in place of
    ``text``, asking for the prompt's token ids and the untrimmed stop string (so the ids
    and the text they cover stay in step)."""
    backend._handle_dtype_to_regex(params)
    data: dict[str, Any] = {
        **prompt,
        "sampling_params": {
            "skip_special_tokens": global_config.skip_special_tokens_in_output,
            "spaces_between_special_tokens": global_config.spaces_between_special_tokens_in_out,
            **params.to_srt_kwargs(),
            "no_stop_trim": True,
        },
        "return_prompt_token_ids": True,
    }
    for item in _LOGPROB_FIELDS:
        value = getattr(params, item, None)
        if value is not None:
            data[item] = value
    return data
