"""Shared fixtures: one real SGLang CPU server per test session, and a leak check."""

from __future__ import annotations

import os

import psutil
import pytest


@pytest.fixture(scope="session")
def server_url():
    """The embedded default model on the stock SGLang server (CPU), started once."""
    url = os.environ.get("CONVEYOR_SGL_TEST_SERVER")
    if url:  # reuse a server the developer already runs
        yield url
        return
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    with EmbeddedServer() as server:
        yield server.url


@pytest.fixture(scope="session")
def flagged_server():
    """A server launched with ``--tool-partial-execution`` (both modes), started once; the
    tests/ directory is on its path for the test tools."""
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    tests_dir = os.path.dirname(os.path.abspath(__file__))
    flags = ["--tool-partial-execution", "--tool-allow-import-targets"]  # the test tools
    with EmbeddedServer(extra_args=flags, env={"PYTHONPATH": tests_dir}) as server:
        yield server


@pytest.fixture(scope="session")
def backend(server_url):
    import sglang as sgl

    runtime = sgl.RuntimeEndpoint(server_url)
    sgl.set_default_backend(runtime)
    return runtime


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_suite():
    """After the whole suite, nothing this test run started may still be running."""
    yield
    from conveyor_sgl.runtime.workers.pool import shutdown_default_pool

    shutdown_default_pool()
    leftover = [p for p in psutil.Process().children(recursive=True) if _alive(p)]
    for proc in leftover:
        proc.kill()
    assert not leftover, f"processes left running by the test suite: {leftover}"


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
