"""The parser's share of the client's CPU time.

How it is measured: ``ParserMeter.install()`` wraps the parser factory the tool sessions use
(``conveyor_sgl.runtime.session.make_parser``) so that every ``feed``/``close`` call adds
the CPU time of the calling thread (``time.thread_time()``, CLOCK_THREAD_CPUTIME_ID) spent
inside it. The runner takes ``time.process_time()`` (CPU of every thread of the client
process: the SGLang frontend, HTTP streaming, sessions, parser) before and after each run.
Share = parser CPU / client process CPU, over the runs where the client parses (sequential
and client modes). Tool workers and the server are other processes and are not counted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from conveyor_sgl.runtime import session as session_module


class TimedParser:
    """A parser that adds its own CPU time to a meter; otherwise the parser itself."""

    def __init__(self, inner: Any, meter: ParserMeter) -> None:
        self._inner = inner
        self._meter = meter

    def feed(self, delta: str) -> list[Any]:
        start = time.thread_time()
        try:
            return self._inner.feed(delta)
        finally:
            self._meter.add(time.thread_time() - start)

    def close(self) -> list[Any]:
        start = time.thread_time()
        try:
            return self._inner.close()
        finally:
            self._meter.add(time.thread_time() - start)

    @property
    def wake(self) -> re.Pattern[str] | None:
        return getattr(self._inner, "wake", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ParserMeter:
    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.calls = 0
        self._lock = threading.Lock()  # sessions of concurrent programs parse on other threads
        self._original: Callable[[str], Any] | None = None

    def add(self, seconds: float) -> None:
        with self._lock:
            self.cpu_s += seconds
            self.calls += 1

    def install(self) -> ParserMeter:
        if self._original is None:
            self._original = session_module.make_parser
            original = self._original
            session_module.make_parser = lambda name: TimedParser(original(name), self)
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            session_module.make_parser = self._original
            self._original = None

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


def parser_share(parser_cpu_s: float, process_cpu_s: float) -> float | None:
    """Parser CPU as a share of the process's CPU (None when nothing was measured)."""
    return parser_cpu_s / process_cpu_s if process_cpu_s > 0 else None
