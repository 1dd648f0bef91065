"""The search tool: one query per line; each query is sent the moment its line is decoded.

Queries run concurrently on threads inside the worker, so a generation that writes several
queries has the first ones answered while it still decodes the last. Retrieval is BM25
(``bm25s``) over the documentation of this Python and a few installed packages (see
``search_index``), either in the worker itself or behind a local HTTP service that stands
for a web search API.

Where latency is modelled, and only there (the output's first line says which applies):
- in process, ``delay_ms`` > 0: each query sleeps that long before it is answered;
- ``service_url``: the service (``python -m conveyor_sgl.tools.search_service --delay-ms D``)
  sleeps D ms per request before answering; the query also pays real loopback HTTP.
With neither, a query costs only the BM25 lookup (about a millisecond).

Config (the numbers bound a resource: a config may lower them, never raise them above their
maximum, ``option_limit``):
- ``service_url`` (str, optional): base URL of a search service; default: in process;
- ``delay_ms`` (number, default 0, at most 10000, the longest ``finish`` waits): modelled
  latency per query, in process only;
- ``top_k`` (int, default and maximum 3): results per query;
- ``concurrency`` (int, default and maximum 4): queries in flight at once (threads);
- ``timeout_s`` (number, default and maximum 10): how long ``finish`` waits for all answers.

Output: the header line, then per query ``[n] <query>`` and its ranked hits
(``1. json.dumps (score 5.9): Serialize obj to a JSON formatted str...``). A failed query
(service down, timeout) gives status ``error`` naming the query.
"""

from __future__ import annotations

import json
import textwrap
import time
import urllib.parse
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.base import (
    ConfigReferences,
    Tool,
    ToolConfigError,
    ToolOutput,
    UnitWork,
    check_known_options,
    option_limit,
)

if TYPE_CHECKING:
    from conveyor_sgl.tools.search_index import Hit


class SearchEngine(Protocol):
    def search(self, query: str, k: int) -> list[Hit]: ...

    def describe(self) -> str: ...


class LocalSearch:
    """BM25 in this process; ``delay_s`` models a remote API's latency with a sleep."""

    def __init__(self, delay_s: float = 0.0) -> None:
        from conveyor_sgl.tools.search_index import load_index  # bm25s is slow to import

        self.index = load_index()
        self.delay_s = delay_s

    def search(self, query: str, k: int) -> list[Hit]:
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        return self.index.search(query, k)

    def describe(self) -> str:
        latency = (
            f"modelled latency {self.delay_s * 1000:g} ms per query (a sleep in the tool)"
            if self.delay_s > 0
            else "no latency modelled"
        )
        return f"search: BM25 over {len(self.index)} local documents, in process; {latency}"


class ServiceSearch:
    """A search service over real HTTP; the service models the network latency."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        health = self._get("/health", {})
        self.docs, self.delay_ms = health["docs"], health["delay_ms"]

    def search(self, query: str, k: int) -> list[Hit]:
        from conveyor_sgl.tools.search_index import Hit

        reply = self._get("/search", {"q": query, "k": k})
        return [Hit(h["title"], h["text"], h["score"]) for h in reply["hits"]]

    def describe(self) -> str:
        return (
            f"search: service {self.url} (BM25 over {self.docs} documents); modelled network "
            f"latency {self.delay_ms:g} ms per query (added by the service)"
        )

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        query = urllib.parse.urlencode(params)
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        # service_url was checked to be http(s) (search_options), so no file: or custom scheme.
        with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310
            return json.loads(response.read())


OPTIONS = ("service_url", "delay_ms", "top_k", "concurrency", "timeout_s")
TOP_K, CONCURRENCY, TIMEOUT_S = 3, 4, 10.0  # the defaults, and the most a config may ask for
MAX_DELAY_MS = TIMEOUT_S * 1000  # a longer modelled latency only times out


@dataclass(frozen=True)
class SearchOptions:
    top_k: int
    concurrency: int
    timeout_s: float
    delay_ms: float
    service_url: str | None


def search_options(config: dict[str, Any]) -> SearchOptions:
    """Every option, checked, with its default (no service is contacted)."""
    check_known_options(config, OPTIONS)
    top_k = option_limit(config, "top_k", TOP_K, integer=True)
    concurrency = option_limit(config, "concurrency", CONCURRENCY, integer=True)
    timeout_s = float(option_limit(config, "timeout_s", TIMEOUT_S))
    delay_ms = option_limit(config, "delay_ms", 0.0, maximum=MAX_DELAY_MS, zero_ok=True)
    url = config.get("service_url")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise ToolConfigError(f"service_url must be an http(s) URL, got {url!r}")
    return SearchOptions(top_k, concurrency, timeout_s, delay_ms, url or None)


def check_search_config(config: dict[str, Any]) -> None:
    search_options(config)


def search_references(config: dict[str, Any]) -> ConfigReferences:
    """The URL a search config fetches from (none in process)."""
    url = config.get("service_url")
    return ConfigReferences(urls=(url,) if url else ())


def make_engine(config: dict[str, Any]) -> SearchEngine:
    """The engine a config asks for: the service at ``service_url``, else in process."""
    options = search_options(config)
    if options.service_url:
        return ServiceSearch(options.service_url, options.timeout_s)
    return LocalSearch(options.delay_ms / 1000)


def format_hits(hits: list[Hit]) -> str:
    if not hits:
        return "(no results)\n"
    return "".join(
        f"{rank}. {hit.title} (score {hit.score:.2f}): {hit.snippet()}\n"
        for rank, hit in enumerate(hits, 1)
    )


class SearchTool(Tool):
    parser = "line"
    partial = True

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_search_config(config)

    @classmethod
    def config_references(cls, config: dict[str, Any]) -> ConfigReferences:
        return search_references(config)

    @classmethod
    def preload(cls) -> None:
        # bm25s and the index take ~0.4 s to load: without this the first query waits for them.
        from conveyor_sgl.tools.search_index import load_index

        load_index()

    def start(self, config: dict[str, Any]) -> None:
        options = search_options(config)
        self._k, self._timeout_s = options.top_k, options.timeout_s
        self._concurrency = options.concurrency
        self._engine = make_engine(config)
        self._pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="search")
        self._queries: list[tuple[str, Future[list[Hit]]]] = []
        self._work: list[UnitWork] = []  # appended by the query threads (list.append is atomic)

    def feed(self, unit: Unit) -> None:
        query = unit.text.strip()
        position = len(self._queries)  # units are fed in order, one query per unit
        self._queries.append((query, self._pool.submit(self._search, position, query)))

    def _search(self, position: int, query: str) -> list[Hit]:
        started = time.monotonic()
        try:
            return self._engine.search(query, self._k)
        finally:
            # Queries are independent, but only ``concurrency`` run at once (first come,
            # first served): query i waits for a slot, the one query i - concurrency frees.
            waits = (position - self._concurrency,) if position >= self._concurrency else ()
            self._work.append(UnitWork(position, started, time.monotonic(), waits))

    def finish(self) -> ToolOutput:
        deadline = time.monotonic() + self._timeout_s
        parts = [self._engine.describe() + "\n"]
        error = None
        for n, (query, future) in enumerate(self._queries, 1):
            parts.append(f"[{n}] {query}\n")
            try:
                hits = future.result(max(0.0, deadline - time.monotonic()))
                parts.append(textwrap.indent(format_hits(hits), "   "))
            except FutureTimeout:
                error = error or f"query {n} ({query!r}): no answer within {self._timeout_s:g}s"
            except Exception as e:  # noqa: BLE001 - a failed query is reported, not raised
                error = error or f"query {n} ({query!r}): {type(e).__name__}: {e}"
        self._pool.shutdown(wait=False, cancel_futures=True)
        return ToolOutput("".join(parts), "error" if error else "ok", error, list(self._work))

    def cancel(self) -> None:
        # Queries not yet started are dropped; a running one ends with the worker process.
        self._pool.shutdown(wait=False, cancel_futures=True)
