"""Streamed chat-completion chunks as the OpenAI SDK parses them, for the tool-call tests."""

from __future__ import annotations

from openai.types.chat import ChatCompletionChunk


def chunk(index: int, arguments: str = "", name: str | None = None, finish: str | None = None):
    """One ChatCompletionChunk as the SDK parses it from the server's stream."""
    function = {"arguments": arguments, **({"name": name} if name else {})}
    delta = {"tool_calls": [{"index": index, "id": f"call_{index}", "function": function}]}
    return ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )
