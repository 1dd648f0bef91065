"""The carrier middleware alone: a carried request reaches our route as if called directly;
every other completion reaches SGLang's handler with its body intact."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from conveyor_sgl.runtime.server.carrier import CarrierMiddleware
from conveyor_sgl.runtime.server.protocol import (
    CARRIER_PATH,
    INFO_PATH,
    PARTIAL_TOOL_PATH,
    carried,
)


def _app() -> TestClient:
    app = FastAPI()

    @app.get(INFO_PATH)
    async def info() -> dict:
        return {"name": "conveyor_sgl"}

    @app.post(PARTIAL_TOOL_PATH)
    async def partial_tool(request: Request) -> dict:
        return {"route": "partial_tool", "body": await request.json()}

    @app.post(CARRIER_PATH)
    async def completions(request: Request) -> dict:
        return {"route": "completions", "body": await request.json()}

    app.add_middleware(CarrierMiddleware)
    return TestClient(app)


def test_a_carried_request_reaches_the_inner_route():
    client = _app()
    assert client.post(CARRIER_PATH, json=carried(INFO_PATH, None, "hi", "m")).json() == {
        "name": "conveyor_sgl"
    }
    inner = {"tool": "python", "generate": {"text": "x"}}
    res = client.post(CARRIER_PATH, json=carried(PARTIAL_TOOL_PATH, inner, "x", "m"))
    assert res.json() == {"route": "partial_tool", "body": inner}


def test_other_completions_pass_through_unchanged():
    client = _app()
    for body in (
        {"model": "m", "prompt": "hi"},
        {"model": "m", "prompt": 'say "conveyor"'},  # the word alone is not the field
        {"model": "m", "prompt": "hi", "conveyor": "not an object"},
    ):
        assert client.post(CARRIER_PATH, json=body).json() == {"route": "completions", "body": body}


def test_only_our_routes_can_be_carried():
    client = _app()
    body = {"model": "m", "prompt": "x", "conveyor": {"route": "/generate", "body": {}}}
    res = client.post(CARRIER_PATH, json=body)
    assert res.status_code == 400 and "route must be one of" in res.text
