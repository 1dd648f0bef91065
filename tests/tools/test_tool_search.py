"""The search tool: BM25 over local docs, concurrent queries, the HTTP service with latency."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from tool_drive import drive, first_started_before_last_decoded
from worker_fixtures import fresh_pool, no_leaked_workers

from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.tools.search import SearchTool
from conveyor_sgl.tools.search_index import CorpusConfig, build_documents, index_key, load_index
from conveyor_sgl.tools.search_service import SearchService

pytestmark = pytest.mark.timeout(120)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

QUERIES = ["deserialize a json document\n", "compile a regular expression pattern\n"]


@pytest.fixture(scope="module")
def index():
    """The real default index (built into the project cache once, seconds)."""
    return load_index()


@pytest.fixture(scope="module")
def service(index):
    with SearchService(delay_ms=200) as running:
        yield running


def test_the_corpus_is_the_interpreters_own_documentation(index):
    assert len(index) > 3000
    assert {"topic: for", "json.loads", "re.compile", "builtins.sorted"} <= set(index.titles)
    assert index.texts[index.titles.index("json.loads")].startswith("Deserialize ``s``")


def test_queries_rank_the_matching_docstring_first(index):
    assert index.search("deserialize a json document", 3)[0].title.startswith("json.")
    assert "re.compile" in [hit.title for hit in index.search("compile regular expression", 3)]
    assert index.search("zzzqqqxxy", 3) == []


def test_a_small_corpus_is_built_once_then_read_from_the_cache(tmp_path):
    config = CorpusConfig(max_files=3, max_docs=150, packages=())
    first = load_index(config, root=tmp_path)
    directory = tmp_path / "search" / index_key(config)
    stamp = (directory / "docs.json").stat().st_mtime_ns
    second = load_index(config, root=tmp_path)
    assert len(first) == len(second) == 150
    assert first.titles == second.titles == build_documents(config)[0]
    assert (directory / "docs.json").stat().st_mtime_ns == stamp  # not rebuilt
    assert index_key(config).startswith("py3.")
    assert index_key(config) != index_key(CorpusConfig(max_files=4, max_docs=150, packages=()))


def test_tool_output_says_no_latency_is_modelled_and_lists_hits(index):
    out = drive(SearchTool, QUERIES, {"top_k": 2}).out
    lines = out.output.splitlines()
    assert out.status == "ok"
    assert (
        lines[0]
        == f"search: BM25 over {len(index)} local documents, in process; no latency modelled"
    )
    assert lines[1] == "[1] deserialize a json document"
    assert lines[2].startswith("   1. json.")
    assert lines[4] == "[2] compile a regular expression pattern"
    assert len(lines) == 7


def test_in_process_latency_is_stated_when_modelled():
    out = drive(SearchTool, "json\n", {"delay_ms": 50}).out
    assert "modelled latency 50 ms per query (a sleep in the tool)" in out.output.splitlines()[0]


@pytest.mark.parametrize(
    ("config", "message"),
    [({"top_k": 0}, "top_k must be a positive integer"), ({"service_url": "ftp://x"}, "http")],
)
def test_bad_config_is_an_error_at_start(config, message):
    with pytest.raises(ValueError, match=message):
        SearchTool().start(config)


@pytest.mark.timing
def test_in_a_worker_queries_start_while_later_ones_decode(pool, index):
    # Long intervals: the worker first imports bm25s (about 1.5 s, more on a busy machine).
    lines = [*QUERIES, "sort a list\n", "read a file\n"]
    result = run_tool("search", lines, pool=pool, chunk_interval=1.0)
    assert result.status == "ok"
    assert first_started_before_last_decoded(result.units)
    assert [line[:3] for line in result.output.splitlines() if line.startswith("[")] == [
        "[1]",
        "[2]",
        "[3]",
        "[4]",
    ]


def test_in_a_worker_queries_run_concurrently(pool, index):
    lines = [f"query number {i} about json\n" for i in range(4)]
    config = {"delay_ms": 1000, "concurrency": 4}
    result = run_tool("search", lines, pool=pool, config=config)
    # From the first query's submission (after the worker loaded the index) to the result.
    took = result.to_dict()["result_ready_at"] - result.units[0]["started_at"]
    assert result.status == "ok"
    assert 1.0 <= took < 3.0, took  # one after another would take at least 4 s


@pytest.mark.timing
def test_the_timeline_shows_when_each_query_really_ran(pool, index):
    lines = [f"query number {i} about json\n" for i in range(3)]
    result = run_tool("search", lines, pool=pool, config={"delay_ms": 500, "concurrency": 2})
    assert result.status == "ok"
    for unit in result.units:  # the query's thread, not feed() that only submitted it
        assert unit["finished_at"] - unit["started_at"] >= 0.5
    # Two at once: the third query waits for a slot (modelled as the first one's).
    assert [unit["after"] for unit in result.units] == [[], [], [0]]
    first_free = min(unit["finished_at"] for unit in result.units[:2])
    assert result.units[2]["started_at"] >= first_free - 0.01


def test_a_query_that_outlives_the_timeout_is_an_error(pool, index):
    config = {"delay_ms": 3000, "timeout_s": 0.5}
    result = run_tool("search", "slow one\n", pool=pool, config=config)
    assert result.status == "error"
    assert result.error == "query 1 ('slow one'): no answer within 0.5s"


def test_the_service_answers_over_http_and_states_its_delay(service, index):
    with urllib.request.urlopen(f"{service.url}/health", timeout=10) as reply:
        assert json.loads(reply.read()) == {"docs": len(index), "delay_ms": 200.0}
    t = time.monotonic()
    with urllib.request.urlopen(f"{service.url}/search?q=json+loads&k=2", timeout=10) as reply:
        body = json.loads(reply.read())
    assert time.monotonic() - t >= 0.2  # the modelled latency is really paid
    assert body["delay_ms"] == 200.0
    assert [h["title"] for h in body["hits"]] == [h.title for h in index.search("json loads", 2)]
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"{service.url}/nothing", timeout=10)
    with pytest.raises(urllib.error.HTTPError, match="400"):
        urllib.request.urlopen(f"{service.url}/search?q=x&k=many", timeout=10)


def test_in_a_worker_the_service_gives_the_in_process_results(pool, service):
    config = {"service_url": service.url, "top_k": 2}
    remote = run_tool("search", QUERIES, pool=pool, config=config)
    local = drive(SearchTool, QUERIES, {"top_k": 2}).out
    assert remote.status == "ok"
    header, *rest = remote.output.splitlines()
    assert header.startswith(f"search: service {service.url} (BM25 over ")
    assert header.endswith("modelled network latency 200 ms per query (added by the service)")
    assert rest == local.output.splitlines()[1:]


def test_an_unreachable_service_is_an_error(pool, index):
    with SearchService() as gone:
        url = gone.url
    result = run_tool("search", "json\n", pool=pool, config={"service_url": url})
    assert result.status == "error" and "Connection refused" in result.error


def test_the_service_process_ends_with_its_owner(index):
    service = SearchService()
    service.close()
    assert service.proc.poll() is not None


def test_preload_loads_bm25s_without_numba_and_the_index_once_per_process():
    import bm25s

    SearchTool.preload()
    assert load_index() is load_index()  # the worker's sessions reuse what preload loaded
    assert not bm25s.NUMBA_AVAILABLE  # its numpy backend: no 0.7 s numba import per worker


def test_the_default_index_stays_the_one_loaded_before_the_sandbox(monkeypatch, tmp_path):
    """A confined worker's HOME is its workdir (another cache root): the default index it
    preloaded before the sandbox must still be the one it searches, not a rebuild."""
    from conveyor_sgl.cache import CACHE_ENV
    from conveyor_sgl.tools.search_index import load_index

    before = load_index()
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_index() is before
    assert not any(tmp_path.iterdir())  # nothing was built under the new HOME
