"""Prefix holds under memory pressure, on a server with a small KV pool (2048 tokens; holds
may take half): a held prefix survives a flood that evicts an unheld one, what is held stays
within its share, a request that needs the held memory still runs (the holds make way), and
the holds show in ``/metrics``.

Requests are plain ``/generate`` calls with token ids (exact lengths) and the hint a
program's tool call sends (``kv_hints``); the counters come from /server_info.
"""

from __future__ import annotations

import random
import time
import uuid

import pytest
import requests

from conveyor_sgl.runtime.server.protocol import (
    PREFIX_HOLD_RELEASE_PATH,
    PREFIX_HOLD_STATE_KEY,
    PrefixHold,
    prefix_hold_hints,
)

pytestmark = pytest.mark.server

POOL_TOKENS = 2048
SHARE = 0.5


@pytest.fixture(scope="module")
def url():
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    flags = ["--max-total-tokens", str(POOL_TOKENS), "--tool-prefix-hold-share", str(SHARE)]
    flags.append("--enable-metrics")
    with EmbeddedServer(extra_args=flags) as server:
        yield server.url


@pytest.fixture(autouse=True)
def empty_cache(url):
    """Each test starts from an empty tree and no hold."""
    keys = []
    yield keys
    if keys:
        requests.post(url + PREFIX_HOLD_RELEASE_PATH, json={"keys": keys}, timeout=30)
    deadline = time.monotonic() + 30
    while state(url)["holds"] and time.monotonic() < deadline:
        time.sleep(0.1)
    requests.post(url + "/flush_cache", timeout=30)


def ids(seed: str, n: int) -> list[int]:
    rng = random.Random(seed)  # noqa: S311 - token ids for a test prompt
    return [rng.randrange(300, 4000) for _ in range(n)]


def generate(url: str, input_ids: list[int], hint: PrefixHold | None = None) -> dict:
    body: dict = {"input_ids": input_ids, "sampling_params": {"max_new_tokens": 2}}
    if hint is not None:
        body["kv_hints"] = prefix_hold_hints(hint)
    res = requests.post(url + "/generate", json=body, timeout=120)
    assert res.status_code == 200, res.text
    return res.json()["meta_info"]


def state(url: str) -> dict:
    info = requests.get(url + "/server_info", timeout=30).json()
    return info["internal_states"][0][PREFIX_HOLD_STATE_KEY]


def hold(url: str, keys: list[str], input_ids: list[int]) -> None:
    keys.append(uuid.uuid4().hex)
    generate(url, input_ids, PrefixHold(hold=keys[-1]))


def test_a_held_prefix_survives_a_flood_that_evicts_an_unheld_one(url, empty_cache):
    held, unheld = ids("held", 400), ids("unheld", 400)
    hold(url, empty_cache, held)
    generate(url, unheld)
    for i in range(4):  # 1600 more tokens: the pool must evict to take them
        generate(url, ids(f"flood-{i}", 400))
    again = generate(url, held + ids("more", 8), PrefixHold(release=[empty_cache.pop()]))
    other = generate(url, unheld + ids("more", 8))
    assert again["cached_tokens"] >= 400, again
    assert other["cached_tokens"] < 400, other  # LRU took the prefix nobody held
    assert state(url)["released"]["continued"] >= 1


def test_what_is_held_stays_within_its_share_of_the_pool(url, empty_cache):
    before = state(url)
    for i in range(3):  # 3 x 402 tokens > 1024, the budget
        hold(url, empty_cache, ids(f"bound-{i}", 400))
    now = state(url)
    assert now["budget_tokens"] == int(POOL_TOKENS * SHARE)
    assert now["held_tokens"] <= now["budget_tokens"]
    assert (now["taken"] - before["taken"], now["refused"] - before["refused"]) == (2, 1)


def test_a_request_that_needs_the_held_memory_still_runs(url, empty_cache):
    before = state(url)
    for i in range(2):
        hold(url, empty_cache, ids(f"pressure-{i}", 400))
    big = generate(url, ids("big", 1500))  # more than the pool has beside the holds
    assert big["prompt_tokens"] == 1500
    now = state(url)
    assert now["released"]["pressure"] - before["released"]["pressure"] >= 1


def test_the_holds_are_metrics_beside_sglangs_eviction_metrics(url, empty_cache):
    hold(url, empty_cache, ids("metrics", 100))
    text = requests.get(url + "/metrics", timeout=30).text
    values = {
        line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("conveyor_sgl:prefix_")
    }
    assert values["conveyor_sgl:prefix_holds"] >= 1
    assert values["conveyor_sgl:prefix_held_tokens"] >= 100
    assert values["conveyor_sgl:prefix_holds_taken_total"] >= 1
    assert 'conveyor_sgl:prefix_holds_released_total{reason="pressure"}' in values
    assert any(line.startswith("sglang:evicted_tokens_total") for line in text.splitlines())


def test_a_cache_flush_gives_every_hold_up_and_the_server_goes_on(url, empty_cache):
    before = state(url)
    prompt = ids("flushed", 200)
    hold(url, empty_cache, prompt)
    res = requests.post(url + "/flush_cache", timeout=30)
    assert res.status_code == 200, res.text
    now = state(url)
    assert now["holds"] == 0
    assert now["released"]["released"] - before["released"]["released"] == 1
    assert generate(url, prompt)["cached_tokens"] == 0  # the tree is empty, and it works
