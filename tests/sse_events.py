"""Reading a /conveyor/partial_tool SSE answer (direct or carried) in the server tests."""

from __future__ import annotations

import json
from typing import Any

import requests


def sse_events(response: requests.Response) -> list[dict[str, Any]]:
    """Every JSON event of the stream, in order (the final ``[DONE]`` left out)."""
    return [
        json.loads(line[5:])
        for line in response.iter_lines()
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]"
    ]


def tool_result_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The one ``result`` event's tool dict."""
    results = [e["tool"] for e in events if e.get("conveyor") == "result"]
    assert len(results) == 1, events[-3:]
    return results[0]
